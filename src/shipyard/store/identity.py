"""Identity in the store: principals and their roles, and the bearer tokens bound to them.

Tokens are kept as sha256 digests only. A revoked token keeps its row (who revoked it, when), so a
refusal can say why and the name is never reused. Every change is audited in its own transaction;
a token's last use is not a change worth an audit event and is written on its own, at most once a
``every_seconds`` per token (a conditional update, so concurrent servers do not each write it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shipyard.domain.errors import Conflict, NotFound
from shipyard.domain.identity import Principal, Token
from shipyard.store import database
from shipyard.store.base import StoreBase, Tx
from shipyard.store.tables import ApiTokenRow, PrincipalRow, as_utc, utcnow

ADMIN = "admin"


def principal_subject(name: str) -> str:
    return f"principal:{name}"


def token_subject(name: str) -> str:
    return f"token:{name}"


def _known_principals_hint(session: Session) -> str:
    names = session.scalars(select(PrincipalRow.name).order_by(PrincipalRow.name)).all()
    return f"Principals: {', '.join(names)}." if names else "There are no principals yet."


def _last_admin_guard(session: Session, name: str, action: str) -> None:
    """Refuse taking admin away from ``name`` when nobody else holds it: nobody could manage roles afterwards."""
    others = [row.name for row in session.scalars(select(PrincipalRow)) if ADMIN in row.roles and row.name != name]
    if not others:
        raise Conflict(
            f"{name} is the last admin; {action} would leave nobody able to manage principals and tokens",
            hint=f"Make someone else admin first: `shipyard principals set NAME --role admin`, then {action}.",
        )


def _live(row: ApiTokenRow, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or as_utc(row.expires_at) > now)


class IdentityRecords(StoreBase):
    """Mixed into ``Store``: principals and tokens."""

    # -- principals ----------------------------------------------------------------------

    def principals(self) -> list[Principal]:
        with self.read() as session:
            return [row.to_entity() for row in session.scalars(select(PrincipalRow).order_by(PrincipalRow.name))]

    def seed_principals(self, *, actor: str, principals: Mapping[str, Iterable[str]], source: str) -> bool:
        """Write ``principals`` (created by ``source``) if the store has none yet, with one ``principal.seeded`` event;
        False if it had some.

        The check runs inside the writing transaction, so two processes seeding at once seed once.
        """
        with self.write(actor) as tx:
            if tx.session.scalars(select(PrincipalRow.name).limit(1)).first() is not None:
                return False
            seeded = {name: list(roles) for name, roles in sorted(principals.items())}
            for name, roles in seeded.items():
                # Created by where the roles came from; the event names who caused the seeding.
                tx.session.add(PrincipalRow(name=name, roles=roles, created_by=source, created_at=tx.now, updated_at=tx.now))
            tx.audit("principal.seeded", "principals", {"source": source, "principals": seeded})
            return True

    def set_principal(self, *, actor: str, name: str, roles: list[str]) -> tuple[Principal, bool]:
        """Create ``name`` with ``roles`` or replace its roles; True when it was created. The last admin keeps admin."""
        with self.write(actor) as tx:
            row = tx.session.get(PrincipalRow, name)
            if row is None:
                row = PrincipalRow(name=name, roles=list(roles), created_by=actor, created_at=tx.now, updated_at=tx.now)
                tx.session.add(row)
                tx.audit("principal.created", principal_subject(name), {"roles": list(roles)})
                return row.to_entity(), True
            before = list(row.roles)
            if ADMIN in before and ADMIN not in roles:
                _last_admin_guard(tx.session, name, f"taking admin from {name}")
            row.roles, row.updated_at = list(roles), tx.now
            tx.audit("principal.updated", principal_subject(name), {"roles": list(roles), "before": before})
            return row.to_entity(), False

    def remove_principal(self, *, actor: str, name: str) -> list[str]:
        """Remove ``name`` and revoke its live tokens in the same transaction; the names of the tokens revoked."""
        with self.write(actor) as tx:
            row = tx.session.get(PrincipalRow, name)
            if row is None:
                raise NotFound(f"no principal named {name!r}", hint=_known_principals_hint(tx.session))
            if ADMIN in row.roles:
                _last_admin_guard(tx.session, name, f"removing {name}")
            revoked = self._revoke_all(tx, name)
            tx.session.delete(row)
            tx.audit("principal.removed", principal_subject(name), {"roles": list(row.roles), "tokens_revoked": revoked})
            return revoked

    def _revoke_all(self, tx: Tx, principal: str) -> list[str]:
        rows = tx.session.scalars(select(ApiTokenRow).where(ApiTokenRow.principal == principal).order_by(ApiTokenRow.name))
        revoked = []
        for token in rows:
            if token.revoked_at is None:
                token.revoked_at, token.revoked_by = tx.now, tx.actor
                revoked.append(token.name)
        return revoked

    def bootstrap_admin(self, *, actor: str, name: str, token_name: str, token_sha256: str) -> Token:
        """Make ``name`` an admin with an api token, while no admin can authenticate (none holds a live api token).

        One transaction: two servers bootstrapping at once cannot both succeed.
        """
        with self.write(actor) as tx:
            now = tx.now
            admins = [row.name for row in tx.session.scalars(select(PrincipalRow)) if ADMIN in row.roles]
            if admins:
                tokens = tx.session.scalars(
                    select(ApiTokenRow).where(ApiTokenRow.principal.in_(admins), ApiTokenRow.scope == "api")
                )
                holders = sorted({t.principal for t in tokens if _live(t, now)})
                if holders:
                    raise Conflict(
                        f"the store has an admin already: {', '.join(holders)} (with a live api token)",
                        hint="An admin adds principals and tokens: `shipyard principals set NAME --role admin`, "
                        "`shipyard token create NAME --principal NAME`.",
                    )
            row = tx.session.get(PrincipalRow, name)
            if row is None:
                row = PrincipalRow(name=name, roles=[ADMIN], created_by=actor, created_at=now, updated_at=now)
                tx.session.add(row)
                tx.audit("principal.created", principal_subject(name), {"roles": [ADMIN], "bootstrap": True})
            elif ADMIN not in row.roles:
                before = list(row.roles)
                row.roles, row.updated_at = [*before, ADMIN], now
                tx.audit("principal.updated", principal_subject(name), {"roles": row.roles, "before": before, "bootstrap": True})
            return self._add_token(tx, name=token_name, token_sha256=token_sha256, principal=name, scope="api", expires_at=None)

    # -- tokens ----------------------------------------------------------------------------

    def add_token(
        self,
        *,
        actor: str,
        name: str,
        token_sha256: str,
        principal: str | None = None,
        scope: str = "predict",
        expires_at: datetime | None = None,
    ) -> Token:
        """Store a token's digest for ``principal`` (default: the actor). The secret itself never reaches the store."""
        with self.write(actor) as tx:
            return self._add_token(
                tx, name=name, token_sha256=token_sha256, principal=principal or actor, scope=scope, expires_at=expires_at
            )

    def _add_token(
        self, tx: Tx, *, name: str, token_sha256: str, principal: str, scope: str, expires_at: datetime | None
    ) -> Token:
        existing = tx.session.get(ApiTokenRow, name)
        if existing is not None:
            revoked = f" (revoked {existing.revoked_at:%Y-%m-%d %H:%M} UTC)" if existing.revoked_at is not None else ""
            raise Conflict(f"a token named {name!r} exists already{revoked}", hint="Pick another name; names are never reused.")
        row = ApiTokenRow(
            name=name,
            token_sha256=token_sha256,
            created_by=tx.actor,
            created_at=tx.now,
            principal=principal,
            scope=scope,
            expires_at=expires_at,
        )
        tx.session.add(row)
        details: dict[str, Any] = {"principal": principal, "scope": scope}
        details["expires_at"] = expires_at.isoformat() if expires_at is not None else None
        tx.audit("token.created", token_subject(name), details)
        return row.to_entity()

    def tokens(self, principal: str | None = None) -> list[Token]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.name)
        if principal is not None:
            query = query.where(ApiTokenRow.principal == principal)
        with self.read() as session:
            return [row.to_entity() for row in session.scalars(query)]

    def get_token(self, name: str) -> Token:
        with self.read() as session:
            row = session.get(ApiTokenRow, name)
            if row is None:
                raise NotFound(f"no token named {name!r}", hint="`shipyard token list` shows the tokens you may see.")
            return row.to_entity()

    def find_token(self, token_sha256: str) -> tuple[str, Token] | None:
        """The stored digest and record of the token whose digest is ``token_sha256``; None if there is none."""
        with self.read() as session:
            row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_sha256 == token_sha256)).one_or_none()
            return (row.token_sha256, row.to_entity()) if row is not None else None

    def token_hashes(self) -> dict[str, Token]:
        """Every token by its digest, revoked and expired ones included (a gateway says why it refuses them)."""
        with self.read() as session:
            return {row.token_sha256: row.to_entity() for row in session.scalars(select(ApiTokenRow))}

    def revoke_token(self, *, actor: str, name: str) -> Token:
        with self.write(actor) as tx:
            row = tx.session.get(ApiTokenRow, name)
            if row is None:
                raise NotFound(f"no token named {name!r}", hint="`shipyard token list` shows the tokens you may see.")
            if row.revoked_at is not None:
                raise Conflict(f"token {name!r} was revoked already, at {as_utc(row.revoked_at).isoformat()} by {row.revoked_by}")
            row.revoked_at, row.revoked_by = tx.now, actor
            tx.audit("token.revoked", token_subject(name), {"principal": row.principal, "scope": row.scope})
            return row.to_entity()

    def touch_token(self, name: str, *, every_seconds: float = 60.0, now: datetime | None = None) -> bool:
        """Record a use of ``name`` unless one was recorded in the last ``every_seconds``; True when written."""
        at = now or utcnow()
        stale = at - timedelta(seconds=every_seconds)
        statement = (
            update(ApiTokenRow)
            .where(ApiTokenRow.name == name, or_(ApiTokenRow.last_used_at.is_(None), ApiTokenRow.last_used_at <= stale))
            .values(last_used_at=at)
        )
        with database.translate_errors(self.url), self.engine.begin() as conn:
            return conn.execute(statement).rowcount > 0


__all__ = ["ADMIN", "IdentityRecords", "principal_subject", "token_subject"]
