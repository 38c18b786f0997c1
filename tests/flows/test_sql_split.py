"""Splitting a node's SQL into statements: one lexing pass, as strict as formatting each piece.

`split_statements` once dropped a comment-only piece by formatting it with sqlparse's
strip_comments, which cost twice the split itself; it now reads the splitter's own tokens.
The property below holds it to the old rule on text built from the awkward parts of SQL
(comments, quotes, semicolons, dollar quoting, blocks). One difference is deliberate: a piece
holding only an optimizer hint (`/*+ … */`) was kept, as strip_comments keeps hints; it has
nothing to run and is dropped like any comment. Telling a statement's type reads the
tokens too (statement_kind), held to sqlparse's parse tree by a second property.
"""

import sqlparse
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.nodes._support import single_read_problems, split_statements, statement_kind


def formatted_split(sql: str) -> list[str]:
    """The previous rule: split, then drop a piece that strip_comments reduces to nothing."""
    out = []
    for piece in sqlparse.split(sql or ""):
        stripped = piece.strip()
        if not sqlparse.format(stripped, strip_comments=True).strip().strip(";").strip():
            continue
        if stripped.endswith(";"):
            stripped = stripped[:-1].rstrip()
        out.append(stripped)
    return out


FRAGMENTS = [
    "select 1",
    "insert into t values (1, 'a')",
    "delete from t",
    "with a as (select 1) ",
    ";",
    " ",
    "\n",
    "\t",
    "-- note\n",
    "-- note",
    "# note\n",
    "/* note */",
    "/* a; b */",
    "'a;b'",
    '"x;y"',
    "`z`",
    "(",
    ")",
    "begin ",
    " end",
    "$$ select 1; $$",
    "$$",
    "'",
    "--",
    "/*",
    "*/",
    "${biz_date}",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_split_drops_exactly_what_stripping_comments_empties(sql):
    assert split_statements(sql) == formatted_split(sql)


def test_comment_only_pieces_are_dropped_an_optimizer_hint_included():
    assert split_statements("select 1;\n-- done\n/* tail */;") == ["select 1"]
    assert split_statements("select 1; select 2;") == ["select 1", "select 2"]
    assert split_statements("  ;  ; ") == []
    # strip_comments kept a hint, so a hint alone counted as a statement (unless another
    # comment came first); it is a comment like any other: nothing to run.
    assert split_statements("/*+ hint */") == []
    assert split_statements("select /*+ index(t) */ * from t") == [
        "select /*+ index(t) */ * from t"
    ]


STATEMENT_PARTS = [
    "with a as (select 1) ",
    "with recursive r (n) as (select 1 union all select n + 1 from r) ",
    ", b as (delete from t returning *) ",
    "select * from a",
    "insert into t select * from a",
    "update t set x = (select 1)",
    "delete from t",
    "create table t (x int)",
    "drop table t",
    "truncate t",
    "grant select on t to u",
    "merge into t using s on (1 = 1) when matched then delete",
    "values (1)",
    "explain select 1",
    "/* c */ ",
    "-- c\n",
    "/*+ hint */ ",
    "(",
    ")",
    "'(' ",
    " ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(STATEMENT_PARTS), min_size=1, max_size=6).map("".join))
def test_statement_kind_names_what_the_parse_tree_names(text):
    for statement in split_statements(text):  # what a node's validation asks about
        assert statement_kind(statement) == sqlparse.parse(statement)[0].get_type()


def test_a_write_after_common_table_expressions_is_refused():
    assert statement_kind("with a as (select 1) delete from t") == "DELETE"
    assert statement_kind("/* c */ delete from t") == "DELETE"
    assert single_read_problems("with a as (select 1) update t set x = 1", "sql")
    assert not single_read_problems("with a as (select 1) select * from a", "sql")


def test_validating_plain_statements_builds_no_parse_tree(monkeypatch):
    # Formatting and the parse tree were the cost of validating a graph of SQL nodes (about
    # 30 ms a node): splitting and telling a read from a write need neither.
    def costly(*_args, **_kwargs):
        raise AssertionError("built sqlparse's parse tree to validate a plain statement")

    monkeypatch.setattr(sqlparse, "format", costly)
    monkeypatch.setattr(sqlparse, "parse", costly)
    assert split_statements("insert into t_tree_a values (1); delete from t_tree_b") == [
        "insert into t_tree_a values (1)",
        "delete from t_tree_b",
    ]
    assert not single_read_problems("select count(*) from t_tree_c", "sql")
    assert single_read_problems("update t_tree_d set x = 1", "sql")
