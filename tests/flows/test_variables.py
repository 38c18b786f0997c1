"""Flow variables: references, Java-style formats, offsets, resolution and rendering."""

import copy
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.variables import (
    BUILTIN_NAMES,
    REF_RE,
    UndefinedVariables,
    VariableError,
    apply_offset,
    builtin_values,
    find_references,
    java_format,
    render,
    render_config,
    resolve,
    validate_definitions,
    variable_value,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


# --------------------------------------------------------------------------- references


def test_find_references_in_nested_config():
    config = {
        "sql": "insert into t select * from s where ds = '${bizdate}' and h = ${hour}",
        "params": [{"value": "${a.b}"}, ["${c}", 3, None], ("${d}",)],
        "${not_a_key_ref}": "plain",
        "count": 5,
    }

    assert find_references(config) == {"bizdate", "hour", "a.b", "c", "d"}
    assert find_references("no refs, $x, ${ spaced }, ${1bad}, ${}") == set()
    assert find_references(None) == set()
    assert REF_RE.findall("${x}${y}") == ["x", "y"]


# --------------------------------------------------------------------------- java_format

MOMENT = datetime(2024, 3, 5, 14, 7, 9, 123456, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("yyyy-MM-dd", "2024-03-05"),
        ("yyyy-MM-dd HH:mm:ss", "2024-03-05 14:07:09"),
        ("yyyyMMdd", "20240305"),
        ("yyMMdd", "240305"),
        ("M/d", "3/5"),
        ("H:m:s", "14:7:9"),
        ("hh a", "02 PM"),
        ("HH:mm:ss.SSS", "14:07:09.123"),
        ("EEE", "Tue"),
        ("'T'HH", "T14"),
        ("yyyy'年'MM'月'", "2024年03月"),
        ("HH''mm", "14'07"),
        ("'it''s' HH", "it's 14"),
        ("yyyy_MM/dd.HH-mm", "2024_03/05.14-07"),
        ("", ""),
    ],
)
def test_java_format(fmt, expected):
    assert java_format(MOMENT, fmt) == expected


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(0, "12 AM"), (1, "01 AM"), (11, "11 AM"), (12, "12 PM"), (23, "11 PM")],
)
def test_java_format_twelve_hour_clock(hour, expected):
    assert java_format(datetime(2024, 1, 1, hour), "hh a") == expected


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("yyyyQ", "unknown pattern letter 'Q' in 'yyyyQ'"),
        ("uu", "unknown pattern letter 'u'"),
        ("yyyyy", "unsupported pattern 'yyyyy' in 'yyyyy'; use y, yy, yyy, yyyy"),
        ("MMMMM", "unsupported pattern 'MMMMM'"),
        ("www", "unsupported pattern 'www' in 'www'; use w, ww"),
        ("WW", "unsupported pattern 'WW' in 'WW'; use W"),
        ("DDDD", "unsupported pattern 'DDDD'"),
        ("eeeee", "unsupported pattern 'eeeee'"),
        ("kkk", "unsupported pattern 'kkk'"),
        ("'abc", "unterminated quote"),
    ],
)
def test_java_format_errors(fmt, words):
    with pytest.raises(VariableError) as info:
        java_format(MOMENT, fmt)

    assert info.value.field == "format"
    assert words in str(info.value)


JAVA_OUTPUTS = Path(__file__).parent / "data" / "java_patterns.tsv"


def _java_cases():
    lines = JAVA_OUTPUTS.read_text().splitlines()
    pattern = lines[0].removeprefix("# ")
    for line in lines[1:]:
        moment, expected = line.split("\t")
        yield pytest.param(moment, pattern, expected, id=moment)


@pytest.mark.parametrize(("moment", "pattern", "expected"), list(_java_cases()))
def test_java_format_matches_java_for_every_letter_dms_documents(moment, pattern, expected):
    # The reference outputs are Java's own (tests/flows/data/JavaPatterns.java): every day
    # around ten year ends (week-of-year, week-year) and the first and last day of each month.
    assert java_format(datetime.fromisoformat(moment), pattern) == expected


@pytest.mark.parametrize(
    ("moment", "fmt", "expected"),
    [
        # 2021-12-27 is a Monday: the week that ends on Sunday 2022-01-02 is week 1 of 2022.
        ((2021, 12, 27, 9), "YYYY-'W'ww-e", "2022-W01-1"),
        ((2021, 12, 26, 9), "YYYY-'W'ww-e", "2021-W52-7"),
        # 2024-12-30 (Monday) is already week 1 of 2025, while its year is 2024.
        ((2024, 12, 30, 12), "yyyy Y w W", "2024 2025 1 6"),
        ((2024, 12, 29, 12), "yyyy Y w W", "2024 2024 52 5"),
        ((2020, 12, 31, 18), "Gyyyy D EEEE e MMM", "AD2020 366 Thursday 4 Dec"),
        ((2024, 3, 31, 0), "k:mm K a, DDD, EEE, MMMM", "24:00 0 AM, 091, Sun, March"),
    ],
)
def test_java_week_and_name_letters(moment, fmt, expected):
    assert java_format(datetime(*moment, tzinfo=SHANGHAI), fmt) == expected


# --------------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("start", "offset", "expected"),
    [
        ((2024, 3, 31, 10), "-1d", (2024, 3, 30, 10)),
        ((2024, 3, 31, 10), "+2h", (2024, 3, 31, 12)),
        ((2024, 3, 31, 10), "-30m", (2024, 3, 31, 9, 30)),
        ((2024, 3, 31, 10), "1w", (2024, 4, 7, 10)),
        ((2024, 3, 31, 10), "-1M", (2024, 2, 29, 10)),  # clamped to the month's end
        ((2023, 3, 31, 10), "-1M", (2023, 2, 28, 10)),
        ((2024, 1, 31, 10), "+1M", (2024, 2, 29, 10)),
        ((2024, 2, 29, 10), "+1y", (2025, 2, 28, 10)),
        ((2024, 1, 1, 0), "-1d", (2023, 12, 31, 0)),
        ((2024, 3, 31, 10), "-1d+2h", (2024, 3, 30, 12)),
        ((2024, 3, 31, 10), " -1d + 2h ", (2024, 3, 30, 12)),
        # terms apply left to right: Mar 30 -> Mar 31 -> Apr 30
        ((2024, 3, 30, 10), "+1d+1M", (2024, 4, 30, 10)),
        ((2024, 3, 31, 10), "", (2024, 3, 31, 10)),
        ((2024, 3, 31, 10), None, (2024, 3, 31, 10)),
    ],
)
def test_apply_offset(start, offset, expected):
    assert apply_offset(datetime(*start, tzinfo=SHANGHAI), offset) == datetime(
        *expected, tzinfo=SHANGHAI
    )


def test_apply_offset_is_wall_clock_across_dst():
    before = datetime(2024, 3, 31, 0, 0, tzinfo=BERLIN)

    after = apply_offset(before, "+1d")

    assert after.isoformat() == "2024-04-01T00:00:00+02:00"


@pytest.mark.parametrize(
    "offset",
    ["-1D", "1x", "-1", "d", "abc", "+", "1d2h", "-1d 2h", "--1d", "1.5d", "9999999999d", "-9999y"],
)
def test_apply_offset_errors(offset):
    with pytest.raises(VariableError) as info:
        apply_offset(datetime(2024, 3, 31, tzinfo=SHANGHAI), offset)

    assert info.value.field == "offset"


# --------------------------------------------------------------------------- built-ins


def test_builtin_values_reference_example():
    values = builtin_values(datetime(2024, 1, 15, 0, 0, tzinfo=SHANGHAI), flow_id=7, run_id=42)

    assert values == {
        "bizdate": "2024-01-14",
        "cyctime": "2024-01-15 00:00:00",
        "flow_id": "7",
        "run_id": "42",
    }
    assert set(values) == BUILTIN_NAMES


def test_builtin_values_omit_missing_ids_and_cross_the_year():
    values = builtin_values(datetime(2024, 1, 1, 23, 59, 59, tzinfo=SHANGHAI))

    assert values == {"bizdate": "2023-12-31", "cyctime": "2024-01-01 23:59:59"}


# --------------------------------------------------------------------------- resolve


def test_resolve_precedence_builtins_then_outputs_then_definitions():
    definitions = [
        {"name": "bizdate", "type": "constant", "value": "overridden"},
        {"name": "last_month", "type": "time", "format": "yyyyMM", "offset": "-1M"},
        {"name": "hour_ago", "type": "time", "format": "yyyy-MM-dd HH", "offset": "-1h"},
        {"name": "today", "type": "time", "format": "yyyyMMdd", "offset": ""},
        {"name": "shared", "type": "constant", "value": "from flow"},
    ]
    outputs = {"shared": "from node", "load.rows": 12, "load.note": None, "cyctime": "x"}

    values = resolve(
        definitions,
        datetime(2024, 3, 31, 0, 30, tzinfo=SHANGHAI),
        flow_id=3,
        run_id=9,
        outputs=outputs,
    )

    assert values == {
        "bizdate": "overridden",
        "cyctime": "x",  # an upstream output beats a built-in
        "flow_id": "3",
        "run_id": "9",
        "shared": "from flow",  # a flow definition beats an upstream output
        "load.rows": "12",
        "load.note": "",
        "last_month": "202402",
        "hour_ago": "2024-03-30 23",
        "today": "20240331",
    }


def test_time_variables_count_from_the_business_time_or_from_the_bizdate():
    # A run at 2024-01-15 10:00: the bizdate time point is 2024-01-14 10:00 (DMS: "the data
    # timestamp is the run time minus one day").
    definitions = [
        {"name": "bt_day", "type": "time", "format": "yyyy-MM-dd HH", "offset": ""},
        {"name": "biz_day", "type": "time", "format": "yyyy-MM-dd HH", "base": "bizdate"},
        {
            "name": "biz_prev",
            "type": "time",
            "format": "yyyyMMdd",
            "offset": "-1d",
            "base": "bizdate",
        },
        {
            "name": "bt_prev",
            "type": "time",
            "format": "yyyyMMdd",
            "offset": "-1d",
            "base": "business_time",
        },
        {
            "name": "biz_month",
            "type": "time",
            "format": "yyyyMM",
            "offset": "-1M",
            "base": "bizdate",
        },
    ]

    values = resolve(definitions, datetime(2024, 1, 15, 10, 0, tzinfo=SHANGHAI))

    assert values["bt_day"] == "2024-01-15 10"
    assert values["biz_day"] == "2024-01-14 10"
    assert values["biz_prev"] == "20240113"
    assert values["bt_prev"] == "20240114"
    assert values["biz_month"] == "202312"
    # With the bizdate base and no offset a yyyy-MM-dd variable equals ${bizdate}.
    same = resolve(
        [{"name": "d", "type": "time", "format": "yyyy-MM-dd", "base": "bizdate"}],
        datetime(2024, 3, 1, 0, 0, tzinfo=SHANGHAI),
    )
    assert same["d"] == same["bizdate"] == "2024-02-29"


def test_an_unknown_base_is_refused_naming_the_variable():
    errors = validate_definitions(
        [{"name": "d", "type": "time", "format": "yyyy", "base": "fire_time"}]
    )

    assert len(errors) == 1
    assert errors[0].startswith("variables[0].base: 'fire_time' is not a base")


def test_node_definitions_override_the_flows_and_everything_below():
    flow_defs = [
        {"name": "ds", "type": "time", "format": "yyyyMMdd", "offset": "-1d"},
        {"name": "region", "type": "constant", "value": "eu"},
    ]
    node_defs = [
        {"name": "ds", "type": "time", "format": "yyyy-MM-dd", "base": "bizdate"},
        {"name": "cyctime", "type": "constant", "value": "node's own"},
    ]

    values = resolve(
        flow_defs,
        datetime(2024, 1, 15, 0, 30, tzinfo=SHANGHAI),
        outputs={"ds": "from upstream"},
        node_definitions=node_defs,
    )

    assert values["ds"] == "2024-01-14"
    assert values["region"] == "eu"
    assert values["cyctime"] == "node's own"


def test_invalid_node_definitions_are_refused():
    with pytest.raises(VariableError) as info:
        resolve([], datetime(2024, 1, 1), node_definitions=[{"name": "x", "type": "time"}])

    assert "node variables: variables[0].format" in str(info.value)


def test_list_values_render_as_comma_separated_items():
    values = resolve([], datetime(2024, 1, 15), outputs={"ids": [3, 5, None, "x"], "none": []})

    assert render("id IN (${ids}) -- '${none}'", values) == "id IN (3,5,,x) -- ''"
    assert variable_value([1, "a", None, 2.5, True])
    assert not variable_value([[1, 2]]) and not variable_value({"a": 1})


def test_resolve_refuses_invalid_definitions():
    with pytest.raises(VariableError) as info:
        resolve([{"name": "x", "type": "time", "format": "yyyyQ"}], datetime(2024, 1, 1))

    assert "variables[0].format" in str(info.value)


def test_resolve_without_definitions():
    assert resolve(None, datetime(2024, 1, 15)) == {
        "bizdate": "2024-01-14",
        "cyctime": "2024-01-15 00:00:00",
    }


# --------------------------------------------------------------------------- definitions


def test_valid_definitions_have_no_errors():
    assert (
        validate_definitions(
            [
                {"name": "ds", "type": "time", "format": "yyyy-MM-dd", "offset": "-1d"},
                {"name": "ts", "type": "time", "format": "HH"},
                {"name": "env.region", "type": "constant", "value": "eu"},
                {"name": "bizdate", "type": "constant", "value": ""},
                {"name": "_" + "x" * 63, "type": "constant", "value": "64 chars"},
            ]
        )
        == []
    )


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"name": "ds", "type": "time", "format": "yyyyQ", "offset": ""},
            "variables[1].format: unknown pattern letter 'Q' in 'yyyyQ'",
        ),
        ({"name": "ds", "type": "time", "format": "", "offset": ""}, "variables[1].format:"),
        ({"name": "ds", "type": "time", "offset": "-1d"}, "variables[1].format:"),
        ({"name": "ds", "type": "time", "format": "dd", "offset": "-1D"}, "variables[1].offset:"),
        ({"name": "ds", "type": "time", "format": "dd", "offset": 1}, "variables[1].offset:"),
        ({"name": "c", "type": "constant", "value": 5}, "variables[1].value:"),
        ({"name": "c", "type": "constant"}, "variables[1].value:"),
        ({"name": "c", "type": "secret", "value": "x"}, "variables[1].type:"),
        ({"name": "1st", "type": "constant", "value": "x"}, "variables[1].name: '1st'"),
        ({"name": "a-b", "type": "constant", "value": "x"}, "variables[1].name:"),
        ({"name": "x" * 65, "type": "constant", "value": "x"}, "variables[1].name:"),
        ({"name": "ok\n", "type": "constant", "value": "x"}, "variables[1].name:"),
        ({"type": "constant", "value": "x"}, "variables[1].name:"),
        ({"name": "first", "type": "constant", "value": "x"}, "variables[1].name: duplicate"),
        ("first", "variables[1]: must be an object"),
    ],
)
def test_invalid_definitions_name_the_variable_and_field(definition, message):
    defs = [{"name": "first", "type": "constant", "value": "1"}, definition]

    errors = validate_definitions(defs)

    assert len(errors) == 1
    assert errors[0].startswith(message)


def test_validate_definitions_reports_every_error():
    errors = validate_definitions(
        [
            {"name": "a", "type": "time", "format": "yyyyQ", "offset": "+1q"},
            {"name": "a", "type": "nope"},
        ]
    )

    assert [e.split(":")[0] for e in errors] == [
        "variables[0].format",
        "variables[0].offset",
        "variables[1].name",
        "variables[1].type",
    ]
    assert validate_definitions("nope") == ["variables: must be a list of variable definitions"]


# --------------------------------------------------------------------------- rendering


def test_render_replaces_references():
    assert render("ds=${bizdate}/${bizdate} n=${n}", {"bizdate": "2024-01-14", "n": 3}) == (
        "ds=2024-01-14/2024-01-14 n=3"
    )


def test_render_is_single_pass():
    # A value that looks like a reference is inserted as is, not expanded again.
    assert render("${a}", {"a": "${b}", "b": "no"}) == "${b}"


def test_render_lists_every_undefined_variable():
    with pytest.raises(UndefinedVariables) as info:
        render("${zeta} ${alpha} ${known} ${alpha}", {"known": "1"})

    assert info.value.names == ["alpha", "zeta"]
    assert isinstance(info.value, VariableError)
    assert "${alpha}, ${zeta}" in str(info.value)


def test_render_config_renders_nested_strings_into_a_new_structure():
    config = {
        "sql": "select '${bizdate}'",
        "targets": [{"table": "t_${ds}"}, "${ds}", 7, None, True],
        "retries": 3,
    }
    original = copy.deepcopy(config)

    rendered = render_config(config, {"bizdate": "2024-01-14", "ds": "20240114"})

    assert rendered == {
        "sql": "select '2024-01-14'",
        "targets": [{"table": "t_20240114"}, "20240114", 7, None, True],
        "retries": 3,
    }
    assert config == original
    assert rendered["targets"] is not config["targets"]


def test_render_config_lists_undefined_variables_across_the_whole_config():
    config = {"a": "${x}", "b": ["${y}", {"c": "${x} ${z}"}], "d": "${ok}"}

    with pytest.raises(UndefinedVariables) as info:
        render_config(config, {"ok": "1"})

    assert info.value.names == ["x", "y", "z"]
