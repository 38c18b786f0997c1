"""condition: takes the `true` or `false` branch from a SQL check or a safe expression."""

from __future__ import annotations

import ast
import operator

from ._support import (
    DATASOURCE_PROPERTY,
    SQL_PROPERTY,
    VAR_RE,
    datasource_problems,
    run_single_read,
    schema_problems,
    shorten,
    single_read_problems,
    truthy,
)
from .base import ExecutionContext, NodeFailed, NodeResult, NodeType, ValidationContext, register

MAX_EXPRESSION_LENGTH = 2000
MAX_DEPTH = 40
MAX_STRING = 10_000


class ExpressionError(ValueError):
    """The expression is not allowed or cannot be evaluated."""


@register
class Condition(NodeType):
    type = "condition"
    label = "Condition"
    has_branches = True
    schema = {
        "type": "object",
        "title": "Condition",
        "description": (
            "sql: the first value of the first row decides (non-zero, non-empty, not 'false' is true). "
            "expression: literals, comparisons, and/or/not and arithmetic over ${variables}."
        ),
        "properties": {
            "mode": {
                "type": "string",
                "enum": ["sql", "expression"],
                "x-enum-labels": [
                    "the first value a SQL query returns",
                    "an expression over variables",
                ],
                "default": "expression",
                "title": "Check",
            },
            # The form shows each field only for the mode that uses it.
            "datasource": {**DATASOURCE_PROPERTY, "x-show-when": {"mode": "sql"}},
            "sql": {**SQL_PROPERTY, "x-show-when": {"mode": "sql"}},
            "expression": {
                "x-show-when": {"mode": "expression"},
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_EXPRESSION_LENGTH,
                "title": "Expression",
                "examples": ["${row_count} > 0", "'${status}' == 'ok' and ${errors} == 0"],
            },
        },
        "required": ["mode"],
        "additionalProperties": False,
    }

    def validate(self, config: dict, ctx: ValidationContext) -> list[tuple[str, str]]:
        problems = schema_problems(self.schema, config)
        if problems:
            return problems
        if config["mode"] == "sql":
            for name in ("datasource", "sql"):
                if name not in config:
                    problems.append((name, "This field is required when the check is sql."))
            if "expression" in config:
                problems.append(
                    ("expression", "Only used when the check is expression; remove it.")
                )
            if problems:
                return problems
            return datasource_problems(ctx, config, "datasource") + single_read_problems(
                config["sql"], "sql"
            )
        if "expression" not in config:
            return [("expression", "This field is required when the check is expression.")]
        for name in ("datasource", "sql"):
            if name in config:
                problems.append((name, "Only used when the check is sql; remove it."))
        # Variables are substituted at run time: check the shape with a neutral value.
        try:
            check_expression(VAR_RE.sub("0", config["expression"]))
        except ExpressionError as exc:
            problems.append(("expression", str(exc)))
        return problems

    def output_names(self, config: dict) -> list[str]:
        return ["result"]

    def references(self, config: dict) -> dict[str, list]:
        ds = (
            config.get("datasource")
            if isinstance(config, dict) and config.get("mode") == "sql"
            else None
        )
        return {"datasources": [ds] if ds is not None else [], "flows": []}

    def execute(self, ctx: ExecutionContext) -> NodeResult:
        cfg = ctx.config
        if cfg.get("mode") == "sql":
            value = self._sql_value(ctx)
            verdict = truthy(value)
            ctx.log(f"first value: {shorten(repr(value), 100)} → {verdict}")
        else:
            expression = str(cfg.get("expression", ""))
            try:
                value = evaluate(expression)
            except ExpressionError as exc:
                raise NodeFailed(f"expression: {exc}") from None
            verdict = truthy(value)
            ctx.log(f"{shorten(expression, 200)} → {shorten(repr(value), 100)} → {verdict}")
        branch = "true" if verdict else "false"
        return NodeResult(output={"result": verdict}, branch=branch)

    def _sql_value(self, ctx: ExecutionContext):
        result = run_single_read(ctx, "check")
        if not result.rows or not result.rows[0]:
            return None  # no row: false
        return result.rows[0][0]


# --- the safe expression evaluator --------------------------------------------------------

_NAMES = {"true": True, "false": False, "True": True, "False": False, "null": None, "None": None}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_LITERAL_TYPES = (str, int, float, bool, type(None))


def _parse(text: str) -> ast.expr:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"The expression is longer than {MAX_EXPRESSION_LENGTH} characters.")
    if not text.strip():
        raise ExpressionError("The expression is empty.")
    try:
        return ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"Invalid syntax at column {exc.offset or 0}: {exc.msg}.") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("The expression cannot be parsed.") from None


def check_expression(text: str) -> None:
    """Raise ExpressionError unless the expression uses only the allowed constructs."""
    _walk(_parse(text), 0, evaluate_it=False)


def evaluate(text: str):
    """Evaluate a rendered expression: literals, comparisons, boolean ops, arithmetic only."""
    return _walk(_parse(text), 0, evaluate_it=True)


def _walk(node: ast.AST, depth: int, *, evaluate_it: bool):
    if depth > MAX_DEPTH:
        raise ExpressionError("The expression is nested too deeply.")
    d = depth + 1

    def sub(n):
        return _walk(n, d, evaluate_it=evaluate_it)

    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _LITERAL_TYPES):
            raise ExpressionError(f"{type(node.value).__name__} literals are not allowed.")
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _NAMES:
            return _NAMES[node.id]
        raise ExpressionError(
            f"Names are not allowed ('{node.id}'): quote text ('{node.id}') or use a ${{variable}}."
        )
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(sub(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = sub(node.operand)
        return _apply(_UNARY[type(node.op)], value) if evaluate_it else None
    if isinstance(node, ast.BoolOp):
        if not evaluate_it:
            for value in node.values:
                sub(value)
            return None
        is_and = isinstance(node.op, ast.And)
        result = None
        for value in node.values:
            result = sub(value)
            if truthy(result) != is_and:
                return result
        return result
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = sub(node.left)
        rights = [sub(c) for c in node.comparators]
        if not evaluate_it:
            return None
        for op, right in zip(node.ops, rights, strict=True):
            if not _apply(_COMPARE[type(op)], left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = sub(node.left), sub(node.right)
        if not evaluate_it:
            return None
        if isinstance(node.op, ast.Mult | ast.Mod) and (
            isinstance(left, str | tuple) or isinstance(right, str | tuple)
        ):
            raise ExpressionError("Text can only be compared or joined with +.")
        result = _apply(_BINARY[type(node.op)], left, right)
        if isinstance(result, str | tuple) and len(result) > MAX_STRING:
            raise ExpressionError("The result is too long.")
        return result
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression.")


def _apply(fn, *args):
    try:
        return fn(*args)
    except ZeroDivisionError:
        raise ExpressionError("Division by zero.") from None
    except TypeError:
        kinds = " and ".join(type(a).__name__ for a in args)
        raise ExpressionError(f"This operation does not apply to {kinds}.") from None
    except (OverflowError, ValueError) as exc:
        raise ExpressionError(f"Cannot compute: {exc}.") from None
