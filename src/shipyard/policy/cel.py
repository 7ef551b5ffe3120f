"""Custom rules as CEL expressions, through cel-python."""

from __future__ import annotations

from typing import Any

from shipyard.domain.errors import InvalidSpec


def compile_expression(expression: str) -> Any:
    import celpy
    from celpy.celparser import CELParseError

    env = celpy.Environment()
    try:
        return env.program(env.compile(expression))
    except CELParseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise ValueError(f"CEL expression does not parse: {first}") from None


def evaluate(expression: str, evidence: dict[str, Any]) -> bool:
    """True or False; an expression that errors or is not boolean raises InvalidSpec."""
    import celpy
    import celpy.adapter
    from celpy.evaluation import CELEvalError

    program = compile_expression(expression)
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
