"""Who is acting in team mode: principals and the tokens bound to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


SCOPES = ("api", "predict")  # api: the control plane (and predictions); predict: gateways only


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """A person or a service account, with the roles the store holds for it."""

    name: str
    roles: tuple[str, ...]
    created_by: str | None = None
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """A bearer token's record; the secret itself is shown once and stored only as a hash."""

    name: str
    principal: str
    scope: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "principal": self.principal,
            "scope": self.scope,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "last_used_at": _iso(self.last_used_at),
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }
