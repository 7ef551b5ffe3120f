"""A static type check of CEL rules over the evidence document.

cel-python (0.5) parses and evaluates but has no type checker, and its bool is
an int: ``evidence.lineage.git_clean + 1 > 0`` was true on unclean code. This
walks cel-python's parse tree with the types the evidence is known to have and
refuses what cannot be right: a result that is not a bool, arithmetic or
ordering on a bool, mixed types (CEL never converts implicitly), a field of a
number. Paths the evidence does not define are ``dyn`` and left to run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

# A type is a kind ("bool", "int", "double", "string", "list", "map", "null", "dyn", …)
# or, for a map whose keys are known, a mapping of key to type ("*": any key).
Type: TypeAlias = "str | Mapping[str, Type]"

DYN = "dyn"
NUMBERS = frozenset({"int", "uint", "double"})
ORDERED = NUMBERS | {"string", "bytes", "timestamp", "duration"}
TIME = frozenset({"timestamp", "duration"})

_METRICS: Mapping[str, Type] = {m: "double" for m in ("roc_auc", "accuracy", "f1", "log_loss", "brier")}
_TEST: Mapping[str, Type] = {"name": "string", "statistic": "double", "p_value": "double", "details": "map"}
_BOOTSTRAP: Mapping[str, Type] = {
    **{k: "double" for k in ("candidate", "champion", "difference", "improvement", "ci_low", "ci_high", "confidence")},
    "resamples": "int",
    "seed": "int",
}
_GROUP: Mapping[str, Type] = {
    "count": "int",
    **{k: "double" for k in ("positive_rate", "selection_rate", "true_positive_rate", "false_positive_rate", "mean_score")},
}
_PROBE: Mapping[str, Type] = {
    "ok": "bool",
    "error": "string",
    "rows": "int",
    "valid_outputs": "bool",
    "columns": "list",
    "mean_abs_change": "double",
    "max_abs_change": "double",
}
# What shipyard.evidence.collect writes; any path not listed here is dyn.
EVIDENCE: Mapping[str, Type] = {
    "metrics": {"holdout": _METRICS, "slices": {"*": {"*": {"rows": "int", "positives": "int", **_METRICS}}}},
    "rows": {"train": "int", "holdout": "int"},
    "split": "string",
    "lineage": {
        "data_sources": "list",
        "data_fingerprint": "string",
        "git_commit": "string",
        "git_clean": "bool",
        "trained_by": "string",
        "run_id": "string",
    },
    "comparison": {
        "metric": "string",
        "champion_version": "int",
        "rows": "int",
        "bootstrap": _BOOTSTRAP,
        "delong": _TEST,
        "mcnemar": _TEST,
    },
    "fairness": {
        "*": {
            "column": "string",
            "demographic_parity_difference": "double",
            "equalized_odds_difference": "double",
            "by_group": {"*": _GROUP},
            "warnings": "list",
        }
    },
    "data_validation": {"passed": "bool", "rows": "int", "failing_rows": "int", "violations": "list"},
    "robustness": {"passed": "bool", "probes": {"*": _PROBE}},
    "artifacts": "list",
}

_CONVERSIONS = {"int": "int", "uint": "uint", "double": "double", "string": "string", "bool": "bool", "bytes": "bytes"}
_CONVERSIONS |= {"timestamp": "timestamp", "duration": "duration", "dyn": DYN, "type": "type"}
_STRING_METHODS = frozenset({"startsWith", "endsWith", "contains", "matches"})
_LITERALS = {
    "INT_LIT": "int",
    "UINT_LIT": "uint",
    "FLOAT_LIT": "double",
    "STRING_LIT": "string",
    "MLSTRING_LIT": "string",
    "BYTES_LIT": "bytes",
    "BOOL_LIT": "bool",
    "NULL_LIT": "null",
}
_OPERATORS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}


class CelTypeError(ValueError):
    """The expression cannot be right whatever the evidence holds."""


def kind(value: Type) -> str:
    return value if isinstance(value, str) else "map"


def check(tree: Any, source: str) -> str:
    """The kind of the whole expression; raises CelTypeError when it is not a bool or a part is ill-typed."""
    result = kind(_Checker(source).infer(tree))
    if result not in ("bool", DYN):
        raise CelTypeError(f"it gives {result}, not true or false; compare it with something (e.g. `> 0`)")
    return result


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def text(self, tree: Any) -> str:
        meta = getattr(tree, "meta", None)
        if meta is None or getattr(meta, "empty", True):
            return "…"
        return self.source[meta.start_pos : meta.end_pos].strip()

    def fail(self, tree: Any, problem: str) -> CelTypeError:
        return CelTypeError(f"`{self.text(tree)}`{'' if problem.startswith(':') else ' '}{problem}")

    def infer(self, tree: Any) -> Type:
        handler = getattr(self, f"_{tree.data}", None)
        if handler is not None:
            result: Type = handler(tree, tree.children)
            return result
        if len(tree.children) == 1 and hasattr(tree.children[0], "data"):
            return self.infer(tree.children[0])  # member, primary, …: a wrapper around one node
        for child in tree.children:  # anything else (a message literal, `.name`): check inside, type unknown
            if hasattr(child, "data"):
                self.infer(child)
        return DYN

    # -- logic ------------------------------------------------------------------------

    def _expr(self, tree: Any, children: list[Any]) -> Type:
        if len(children) == 1:
            return self.infer(children[0])
        condition, then, otherwise = (self.infer(c) for c in children)
        if kind(condition) not in ("bool", DYN):
            raise self.fail(children[0], f"is the condition of ?: and must be a bool; it gives {kind(condition)}")
        return then if kind(then) == kind(otherwise) and isinstance(then, str) else DYN

    def _logic(self, tree: Any, children: list[Any], operator: str) -> Type:
        if len(children) == 1:
            return self.infer(children[0])
        for child in children:
            found = kind(self.infer(child))
            if found not in ("bool", DYN):
                raise self.fail(tree, f": {operator} needs bools on both sides; one side gives {found}")
        return "bool"

    def _conditionalor(self, tree: Any, children: list[Any]) -> Type:
        return self._logic(tree, children, "||")

    def _conditionaland(self, tree: Any, children: list[Any]) -> Type:
        return self._logic(tree, children, "&&")

    def _unary(self, tree: Any, children: list[Any]) -> Type:
        if len(children) == 1:
            return self.infer(children[0])
        operand = self.infer(children[1])
        found = kind(operand)
        if children[0].data == "unary_not":
            if found not in ("bool", DYN):
                raise self.fail(tree, f": ! needs a bool; it was given {found}")
            return "bool"
        if found == "bool":
            raise self.fail(tree, "negates a bool: a bool is never a number")
        if found not in NUMBERS | {"duration", DYN}:
            raise self.fail(tree, f"negates {found}; only numbers have a sign")
        return operand

    # -- binary operators -------------------------------------------------------------

    def _binary(self, tree: Any, children: list[Any]) -> Type:
        if len(children) == 1:
            return self.infer(children[0])
        operator_tree, right_tree = children
        left, right = self.infer(operator_tree.children[0]), self.infer(right_tree)
        operator = _OPERATORS[operator_tree.data]
        lk, rk = kind(left), kind(right)
        if operator in ("==", "!="):
            if DYN not in (lk, rk) and "null" not in (lk, rk) and lk != rk:
                raise self.fail(tree, f"compares {lk} with {rk}; CEL never converts one into the other")
            return "bool"
        if operator == "in":
            if rk not in ("list", "map", DYN):
                raise self.fail(tree, f": in needs a list or map on the right; it was given {rk}")
            return "bool"
        if operator in ("<", "<=", ">", ">="):
            if "bool" in (lk, rk):
                raise self.fail(tree, "orders bool values: true and false have no order and are never numbers")
            for found in (lk, rk):
                if found not in ORDERED | {DYN}:
                    raise self.fail(tree, f"orders {found} values, which have no order")
            if DYN not in (lk, rk) and lk != rk:
                raise self.fail(tree, f"compares {lk} with {rk}; write both as the same type (e.g. 1.0, or double(…))")
            return "bool"
        return self._arithmetic(tree, operator, left, right)

    def _arithmetic(self, tree: Any, operator: str, left: Type, right: Type) -> Type:
        lk, rk = kind(left), kind(right)
        if "bool" in (lk, rk):
            raise self.fail(tree, f"does arithmetic ({operator}) on {lk} and {rk}: a bool is never a number")
        allowed = {
            "+": NUMBERS | TIME | {"string", "bytes", "list"},
            "-": NUMBERS | TIME,
            "*": NUMBERS,
            "/": NUMBERS,
            "%": frozenset({"int", "uint"}),
        }[operator]
        for found in (lk, rk):
            if found != DYN and found not in allowed:
                raise self.fail(tree, f"applies {operator} to {found}; {operator} takes {', '.join(sorted(allowed))}")
        if lk in TIME or rk in TIME:
            return DYN  # timestamp ± duration: mixed on purpose
        if DYN in (lk, rk):
            return rk if lk == DYN else lk
        if lk != rk:
            raise self.fail(tree, f"mixes {lk} and {rk}; CEL never converts one into the other (use double(…) or int(…))")
        return lk

    _relation = _binary
    _addition = _binary
    _multiplication = _binary

    # -- members, calls, literals -------------------------------------------------------

    def _field(self, tree: Any, receiver: Type, name: str) -> Type:
        if isinstance(receiver, Mapping):
            return receiver.get(name, receiver.get("*", DYN))
        if receiver in (DYN, "map"):
            return DYN
        raise self.fail(tree, f": {receiver} has no field {name}")

    def _member_dot(self, tree: Any, children: list[Any]) -> Type:
        return self._field(tree, self.infer(children[0]), str(children[1]))

    def _member_index(self, tree: Any, children: list[Any]) -> Type:
        receiver, index = self.infer(children[0]), self.infer(children[1])
        key = self._string_literal(children[1])
        if isinstance(receiver, Mapping) and key is not None:
            return self._field(tree, receiver, key)
        if kind(receiver) not in ("list", "map", DYN):
            raise self.fail(tree, f"indexes {kind(receiver)}, which has no elements")
        if kind(receiver) == "list" and kind(index) not in ("int", "uint", DYN):
            raise self.fail(tree, f"indexes a list with {kind(index)}; list indexes are int")
        return DYN

    def _member_dot_arg(self, tree: Any, children: list[Any]) -> Type:
        receiver = self.infer(children[0])
        method = str(children[1])
        arguments = [self.infer(a) for a in (children[2].children if len(children) > 2 else [])]
        found = kind(receiver)
        if method in _STRING_METHODS:
            if found not in ("string", DYN):
                raise self.fail(tree, f"calls {method}() on {found}; {method}() is a string method")
            for argument in arguments:
                if kind(argument) not in ("string", DYN):
                    raise self.fail(tree, f"passes {kind(argument)} to {method}(), which takes a string")
            return "bool"
        if method == "size":
            return self._size(tree, found)
        if method in ("all", "exists", "exists_one", "map", "filter"):
            if found not in ("list", "map", DYN):
                raise self.fail(tree, f"calls {method}() on {found}; macros iterate over a list or map")
            if method != "map" and arguments and kind(arguments[-1]) not in ("bool", DYN):
                raise self.fail(tree, f": the predicate of {method}() must be a bool; it gives {kind(arguments[-1])}")
            return "list" if method in ("map", "filter") else "bool"
        return DYN

    def _ident_arg(self, tree: Any, children: list[Any]) -> Type:
        name = str(children[0])
        arguments = [self.infer(a) for a in (children[1].children if len(children) > 1 else [])]
        if name == "has":
            return "bool"
        if name == "size" and len(arguments) == 1:
            return self._size(tree, kind(arguments[0]))
        if name in ("int", "uint", "double") and arguments and kind(arguments[0]) == "bool":
            raise self.fail(tree, f"takes {name}() of bool: a bool is never a number")
        if name == "matches":
            return "bool"
        return _CONVERSIONS.get(name, DYN)

    def _size(self, tree: Any, found: str) -> Type:
        if found not in ("string", "bytes", "list", "map", DYN):
            raise self.fail(tree, f"takes size() of {found}; size() counts a string, bytes, list or map")
        return "int"

    def _ident(self, tree: Any, children: list[Any]) -> Type:
        return EVIDENCE if str(children[0]) == "evidence" else DYN  # macro variables are dyn

    def _literal(self, tree: Any, children: list[Any]) -> Type:
        return _LITERALS.get(children[0].type, DYN)

    def _paren_expr(self, tree: Any, children: list[Any]) -> Type:
        return self.infer(children[0])

    def _list_lit(self, tree: Any, children: list[Any]) -> Type:
        for child in children:
            self.infer(child)
        return "list"

    def _map_lit(self, tree: Any, children: list[Any]) -> Type:
        for child in children:
            self.infer(child)
        return "map"

    def _exprlist(self, tree: Any, children: list[Any]) -> Type:
        for child in children:
            self.infer(child)
        return DYN

    _mapinits = _exprlist

    def _string_literal(self, tree: Any) -> str | None:
        """The value of a plain string literal index (``['two-year']``), else None."""
        import ast

        node = tree
        while hasattr(node, "data") and len(node.children) == 1:
            node = node.children[0]
        if getattr(node, "type", None) != "STRING_LIT" or str(node)[:1] in "rR":
            return None
        try:
            value = ast.literal_eval(str(node))
        except (ValueError, SyntaxError):
            return None
        return value if isinstance(value, str) else None
