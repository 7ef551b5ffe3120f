"""Custom rules as CEL expressions, through cel-python.

An expression is type-checked when the policy loads (``policy.celcheck``), and
evaluated strictly: cel-python's bool is an int, so the operators a bool must
never reach (arithmetic, ordering, equality with a number, numeric conversion)
are replaced by versions that refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.domain.errors import InvalidSpec


def _cached_parser() -> None:
    """Give cel-python its grammar's parser from Lark's on-disk cache.

    cel-python builds its LALR parser from the grammar once per process, a quarter of a second that
    every `gate check` and `pipeline run` paid. The parser here is built with exactly cel-python's
    options plus ``cache=True`` (Lark keys the cache file by grammar, options and version, and rebuilds
    when a file does not load); tests/policy/test_cel.py holds its trees equal to cel-python's own.
    """
    import re
    from pathlib import Path

    import celpy
    import lark
    from celpy.celparser import CELParser

    if CELParser.CEL_PARSER is not None:
        return
    grammar = (Path(celpy.__file__).parent / "cel.lark").read_text()
    CELParser.CEL_PARSER = lark.Lark(
        grammar,
        parser="lalr",
        start="expr",
        debug=True,
        g_regex_flags=re.M,
        lexer_callbacks={"IDENT": CELParser.ambiguous_literals},
        propagate_positions=True,
        maybe_placeholders=False,
        priority="invert",
        tree_class=lark.Tree,
        cache=True,
    )


def compile_expression(expression: str) -> Any:
    """A runnable program; ValueError when the expression does not parse or cannot be a well-typed bool."""
    import celpy
    from celpy.celparser import CELParseError

    from shipyard.policy.celcheck import CelTypeError, check

    _cached_parser()
    env = celpy.Environment()
    try:
        tree = env.compile(expression)
    except CELParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise ValueError(f"CEL expression does not parse: {first}") from None
    try:
        check(tree, expression)
    except CelTypeError as exc:
        raise ValueError(f"CEL expression does not type-check: {exc}") from None
    return env.program(tree, functions=_strict_functions())


def check(expression: str) -> None:
    """Raise ValueError unless the expression parses and type-checks as a bool."""
    compile_expression(expression)


def evaluate(expression: str, evidence: dict[str, Any]) -> bool:
    """True or False; an expression that errors or is not boolean raises InvalidSpec."""
    import celpy
    import celpy.adapter
    from celpy.evaluation import CELEvalError

    try:
        program = compile_expression(expression)
    except ValueError as exc:
        raise InvalidSpec(f"{exc} (expression {expression!r})") from None
    try:
        result = program.evaluate({"evidence": celpy.adapter.json_to_cel(evidence)})
    except CELEvalError as exc:
        reason = exc.args[0] if exc.args else str(exc)
        raise InvalidSpec(f"CEL expression {expression!r} failed on this version's evidence: {reason}") from None
    if isinstance(result, CELEvalError):
        raise InvalidSpec(f"CEL expression {expression!r} failed on this version's evidence: {result.args[0]}")
    if not isinstance(result, celpy.celtypes.BoolType):
        raise InvalidSpec(f"CEL expression {expression!r} must be true or false; it gave {type(result).__name__} {result}")
    return bool(result)


def _strict_functions() -> dict[str, Callable[..., Any]]:
    """cel-python's operators, except that a bool operand is refused where CEL has no overload for it."""
    from celpy import celtypes, evaluation

    def is_bool(value: Any) -> bool:
        return isinstance(value, celtypes.BoolType)

    def numeric(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def strict(*args: Any) -> Any:
            if any(is_bool(a) for a in args):
                raise TypeError(f"no such overload: {name} of a bool (a bool is never a number)")
            return function(*args)

        strict.__name__ = getattr(function, "__name__", name)
        return strict

    def equality(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def strict(left: Any, right: Any) -> Any:
            errors = isinstance(left, evaluation.CELEvalError) or isinstance(right, evaluation.CELEvalError)
            if is_bool(left) != is_bool(right) and None not in (left, right) and not errors:
                other = type(right if is_bool(left) else left).__name__
                raise TypeError(f"no such overload: {name} between a bool and {other}")
            return function(left, right)

        strict.__name__ = getattr(function, "__name__", name)
        return strict

    base = evaluation.base_functions
    functions: dict[str, Callable[..., Any]] = {
        name: numeric(name, base[name]) for name in ("-_", "_+_", "_-_", "_*_", "_/_", "_%_", "_<_", "_<=_", "_>_", "_>=_")
    }
    functions |= {name: equality(name, base[name]) for name in ("_==_", "_!=_")}
    functions |= {name: numeric(f"{name}()", base[name]) for name in ("int", "uint", "double")}
    return functions
