"""The error tree. Every user-facing failure is one of these.

Each class carries its HTTP status, a stable error code and the CLI exit code it
maps to, so one renderer per face shows them all:

- ``control_plane_body``: the control plane's JSON (``status``, ``error``, ``message``, ``hint``);
- ``oip_body``: the Open Inference Protocol's ``{"error": "<message>"}``, details in extra fields.
"""

from __future__ import annotations

from typing import Any


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    http_status = 500
    code = "error"
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only ``hint`` survives pickling (errors cross from a training child process).
        return (_rebuild, (type(self), self.message, self.hint), dict(self.__dict__))

    def to_dict(self) -> dict[str, object]:
        return control_plane_body(self)


def _rebuild(cls: type[ShipyardError], message: str, hint: str | None) -> ShipyardError:
    error = cls.__new__(cls)
    ShipyardError.__init__(error, message, hint=hint)
    return error


class InvalidSpec(ShipyardError):
    """Bad configuration, policy or request: the input is wrong, not the system."""

    http_status = 422
    code = "invalid"
    exit_code = 2


class TooLarge(InvalidSpec):
    """A request body over the server's limit."""

    http_status = 413
    code = "too_large"


class NotFound(ShipyardError):
    """An unknown model, version, run or file."""

    http_status = 404
    code = "not_found"
    exit_code = 3


class NotServed(NotFound):
    """The gateway does not serve that model or version."""

    code = "not_served"


class Conflict(ShipyardError):
    """The request is valid but not in the current state (e.g. an illegal stage move)."""

    http_status = 409
    code = "conflict"
    exit_code = 4


class GateBlocked(ShipyardError):
    """A governance gate refused the move."""

    http_status = 409
    code = "gate_blocked"
    exit_code = 1


class Unauthenticated(ShipyardError):
    """No token, or one that is malformed, unknown, expired or revoked: who is asking is not known."""

    http_status = 401
    code = "unauthenticated"
    exit_code = 7


class PermissionDenied(ShipyardError):
    """The actor lacks the role the action needs."""

    http_status = 403
    code = "permission_denied"
    exit_code = 5


class BackendUnavailable(ShipyardError):
    """A store, registry or other backend cannot be reached or is not usable."""

    http_status = 503
    code = "unavailable"
    exit_code = 6


class NotReady(BackendUnavailable):
    """The gateway knows the model but has not loaded it (yet)."""

    code = "not_ready"


class ModelFailed(ShipyardError):
    """The model raised on these rows (other requests in the same batch were answered)."""

    http_status = 422
    code = "model_failed"
    exit_code = 2


class MissingEvidence(ShipyardError):
    """The evidence lacks what a rule needs; a gate reports it as an error that blocks."""

    http_status = 409
    code = "missing_evidence"
    exit_code = 1


def error_class(code: str) -> type[ShipyardError]:
    """The class an error code names (a client rebuilds the server's error from its body)."""
    classes: list[type[ShipyardError]] = [ShipyardError]
    for cls in classes:
        classes.extend(cls.__subclasses__())
    return next((cls for cls in classes if cls.code == code), ShipyardError)


def http_status(error: ShipyardError) -> int:
    """The one mapping from an error to an HTTP status: no error Shipyard raises on purpose is a 500."""
    status = error.http_status
    return status if 400 <= status < 500 or status == 503 else 503


def control_plane_body(error: ShipyardError) -> dict[str, object]:
    """The control plane's error document."""
    return {"status": http_status(error), "error": error.code, "message": error.message, "hint": error.hint}


def oip_body(error: ShipyardError, **details: object) -> dict[str, object]:
    """The Open Inference Protocol's error document: ``error`` holds the whole message a client shows."""
    body: dict[str, object] = {"error": error.message}
    if error.hint:
        body["hint"] = error.hint
    body["code"] = error.code
    body.update({k: v for k, v in details.items() if v is not None})
    return body
