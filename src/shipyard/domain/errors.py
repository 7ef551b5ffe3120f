"""The error tree. Every user-facing failure is one of these.

Each class carries the HTTP status and the CLI exit code it maps to, so one
handler per face renders them all.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Root of every error Shipyard raises on purpose."""

    http_status = 500
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class InvalidSpec(ShipyardError):
    """Bad configuration, policy or request: the input is wrong, not the system."""

    http_status = 422
    exit_code = 2


class NotFound(ShipyardError):
    """An unknown model, version, run or file."""

    http_status = 404
    exit_code = 3


class Conflict(ShipyardError):
    """The request is valid but not in the current state (e.g. an illegal stage move)."""

    http_status = 409
    exit_code = 4


class GateBlocked(ShipyardError):
    """A governance gate refused the move."""

    http_status = 409
    exit_code = 1


class PermissionDenied(ShipyardError):
    """The actor lacks the role the action needs."""

    http_status = 403
    exit_code = 5


class BackendUnavailable(ShipyardError):
    """A store, registry or other backend cannot be reached or is not usable."""

    http_status = 503
    exit_code = 6
