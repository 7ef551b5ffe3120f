"""The bearer tokens a gateway accepts, held in memory: a request costs one dict look-up, never a store query.

The gateway re-reads the store's tokens every ``token_seconds`` on a task of its own (a slow model load
does not hold it up), so a revoked token is refused within that, and an expired one from the second
it expires. Tokens of either scope are accepted: ``predict`` tokens exist for gateways, ``api`` tokens
reach everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.domain.identity import Token

ACCEPTED_SCOPES = frozenset({"api", "predict"})


class Tokens:
    def __init__(self) -> None:
        self.live: dict[str, tuple[str, float | None]] = {}  # sha256 → (name, expires at in epoch seconds, or None)
        self.refused: dict[str, str] = {}  # sha256 → why a known token is refused (revoked, another scope)

    def replace(self, records: Mapping[str, Token]) -> None:
        """Take the store's tokens (digest → record) as the new truth."""
        live: dict[str, tuple[str, float | None]] = {}
        refused: dict[str, str] = {}
        for hashed, token in records.items():
            if token.revoked_at is not None:
                refused[hashed] = f"token {token.name} was revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            elif token.scope not in ACCEPTED_SCOPES:
                refused[hashed] = f"token {token.name} has scope {token.scope}, which gateways do not accept"
            else:
                live[hashed] = (token.name, token.expires_at.timestamp() if token.expires_at is not None else None)
        self.live, self.refused = live, refused

    def refusal(self, hashed: str, now: float) -> str | None:
        """None when the token with this digest may call the gateway now; otherwise why not."""
        found = self.live.get(hashed)
        if found is not None:
            name, expires = found
            if expires is None or expires > now:
                return None
            return f"token {name} expired at {datetime.fromtimestamp(expires, UTC):%Y-%m-%d %H:%M:%S} UTC"
        return self.refused.get(hashed, "unknown bearer token")
