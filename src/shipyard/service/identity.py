"""Who is asking: principals and their roles (team mode), bearer tokens, and authentication.

A token's secret is ``shp_`` and 43 URL-safe characters, shown once; the store keeps only its sha256.
Creating a token for oneself needs any role (a ``predict`` token, for gateways, needs the operate
permission, as gateway tokens always have); for another principal, admin. Principals are managed
here in team mode only: in the embedded default they are shipyard.yaml's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
from datetime import datetime, timedelta
from typing import NoReturn

from shipyard.config import ROLES
from shipyard.domain.errors import InvalidSpec, NotFound, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.domain.identity import SCOPES, Principal, Token
from shipyard.service.base import ServiceBase
from shipyard.store.identity import ADMIN, principal_subject, token_subject
from shipyard.store.tables import utcnow

log = logging.getLogger("shipyard")

TOKEN_PREFIX = "shp_"
TOKEN_FORM = re.compile(r"shp_[A-Za-z0-9_-]{43}")
NAME_FORM = re.compile(r"[\w.@+-]{1,200}")
LAST_USE_SECONDS = 60.0  # a token's last use is written at most this often
ANONYMOUS = "anonymous"  # the actor of a refused token: who presented it is not known
_SEND = "Send it as Authorization: Bearer <token>; create one with `shipyard token create NAME`."


def new_secret() -> tuple[str, str]:
    """A fresh token and its sha256 digest (hex)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, digest(secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_name(kind: str, name: str) -> str:
    if not NAME_FORM.fullmatch(name):
        raise InvalidSpec(
            f"{name!r} is not a {kind} name; expected 1–200 letters, digits or . _ - @ +",
            hint="For example ada.admin, ci-deploy or ana@example.com.",
        )
    return name


def _check_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        got = f"unknown role {', '.join(map(repr, unknown))}" if unknown else "no roles"
        raise InvalidSpec(
            f"{got}; expected one or more of {', '.join(ROLES)}",
            hint="Give each with --role, e.g. --role scientist --role deployer; [viewer] gives read-only access.",
        )
    return [r for r in ROLES if r in roles]  # one order, no duplicates


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


MAX_TOKEN_SECONDS = 10 * 365 * 86400.0


class Identity(ServiceBase):
    # -- principals (team mode) ---------------------------------------------------------------

    def principals(self) -> list[Principal]:
        """Everyone with roles: the store's in team mode (admin only), shipyard.yaml's in the embedded default."""
        if not self.settings.team:
            declared = self.settings.spec.principals or {}
            return [Principal(name=name, roles=tuple(roles)) for name, roles in sorted(declared.items())]
        self.authorize("principal", what="list principals", subject="principals", change=False)
        return self.store.principals()

    def principals_drift(self) -> list[str]:
        """How shipyard.yaml's principals differ from the server's (team mode), one line each; only the server's count."""
        from shipyard.policy.access import principals_drift

        if not self.settings.team:
            return []
        self.authorize("principal", what="compare principals with shipyard.yaml", subject="principals", change=False)
        return principals_drift(self.settings.spec.principals, self.team_roles(), self._service_principals())

    def set_principal(self, name: str, roles: list[str]) -> Principal:
        """Create a principal or replace its roles (admin; audited). Taking admin from the last admin is refused."""
        self._team_only("change roles")
        _check_name("principal", name)
        wanted = _check_roles(roles)
        self.authorize("principal", what=f"set the roles of {name}", subject=principal_subject(name))
        principal, _created = self.store.set_principal(actor=self.actor, name=name, roles=wanted)
        return principal

    def remove_principal(self, name: str) -> None:
        """Remove a principal and revoke its tokens (admin; audited). Removing the last admin is refused."""
        self._team_only("remove principals")
        self.authorize("principal", what=f"remove {name}", subject=principal_subject(name))
        self.store.remove_principal(actor=self.actor, name=name)

    def bootstrap_admin(self, name: str) -> str:
        """Make ``name`` an admin and return an api token for it, shown once: how a new server gets its first admin.

        Allowed while no admin can authenticate — no admin principal yet, or only admins seeded from
        shipyard.yaml that hold no live api token — and refused (Conflict) once one can.
        """
        self._team_only("bootstrap an admin")
        _check_name("principal", name)
        self.team_roles()  # seed first: shipyard.yaml may declare the admin already
        secret, hashed = new_secret()
        token_name = f"{name}-bootstrap-{utcnow():%Y%m%d%H%M%S}"
        self.store.bootstrap_admin(actor=self.actor, name=name, token_name=token_name, token_sha256=hashed)
        return secret

    def _team_only(self, what: str) -> None:
        if not self.settings.team:
            raise InvalidSpec(
                f"cannot {what} here: this project has no server, so its principals are the ones under principals "
                f"in {self.settings.root / 'shipyard.yaml'}",
                hint="Edit that file; in team mode (a server: key) an admin manages principals with `shipyard principals`.",
            )

    # -- tokens ----------------------------------------------------------------------------

    def create_token(
        self, name: str, *, principal: str | None = None, scope: str = "api", expires_seconds: float | None = None
    ) -> tuple[Token, str]:
        """A new bearer token for ``principal`` (default: the actor): its record and its secret, shown only now.

        ``api`` tokens reach the control plane and gateways, ``predict`` tokens gateways only.
        """
        _check_name("token", name)
        if scope not in SCOPES:
            raise InvalidSpec(f"unknown token scope {scope!r}; expected {' or '.join(SCOPES)}")
        if expires_seconds is not None and not (math.isfinite(expires_seconds) and 0 < expires_seconds <= MAX_TOKEN_SECONDS):
            raise InvalidSpec(
                f"a token's lifetime must be a positive number of seconds up to ten years; got {expires_seconds}",
                hint="e.g. --expires 90d; for a service that must not expire, omit --expires and revoke it when done.",
            )
        owner = principal or self.actor
        subject = token_subject(name)
        if owner != self.actor:
            _check_name("principal", owner)
            self.authorize("token:others", what=f"create a token for {owner}", subject=subject)
            access = self.access
            if access.principals is not None and owner not in access.principals:
                known = ", ".join(sorted(access.principals)) or "none"
                raise NotFound(f"no principal named {owner!r}", hint=f"Principals: {known}.")
        elif scope == "predict":
            self.authorize("operate", what="create gateway (predict) tokens", subject=subject)
        else:
            self.authorize("token:own", what="create an api token", subject=subject)
        expires_at = utcnow() + timedelta(seconds=expires_seconds) if expires_seconds is not None else None
        secret, hashed = new_secret()
        token = self.store.add_token(
            actor=self.actor, name=name, token_sha256=hashed, principal=owner, scope=scope, expires_at=expires_at
        )
        return token, secret

    def tokens(self, *, principal: str | None = None) -> list[Token]:
        """Token records (never secrets): an admin sees everyone's, anyone else their own."""
        if principal is not None and principal != self.actor:
            self.authorize(
                "token:others", what=f"list the tokens of {principal}", subject=principal_subject(principal), change=False
            )
            return self.store.tokens(principal)
        if principal is None and ADMIN in self.access.roles(self.actor):
            return self.store.tokens()
        return self.store.tokens(self.actor)

    def revoke_token(self, name: str) -> Token:
        """Revoke a token at once: one's own, or (admin) anyone's. Audited as token.revoked."""
        token = self.store.get_token(name)
        if token.principal != self.actor:
            self.authorize("token:others", what=f"revoke {token.principal}'s token {name}", subject=token_subject(name))
        return self.store.revoke_token(actor=self.actor, name=name)

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, secret: str | None, *, scope: str = "api", source: str = "") -> Principal:
        """The principal a bearer token stands for, used for ``scope``.

        Unauthenticated names the case: no token, malformed, unknown, expired (when), revoked (when, by
        whom). A ``predict`` token on the api is PermissionDenied. A refused token is audited as
        ``token.denied`` with ``source`` (who sent it); a request without any token is not (noise).
        """
        if scope not in SCOPES:
            raise InvalidSpec(f"unknown token scope {scope!r}; expected {' or '.join(SCOPES)}")
        if secret is None or not secret.strip():
            raise Unauthenticated("no token: this request carries no bearer token", hint=_SEND)
        secret = secret.strip()
        hashed = digest(secret)
        found = self.store.find_token(hashed)
        if found is None or not hmac.compare_digest(found[0], hashed):
            if not TOKEN_FORM.fullmatch(secret):
                problem = f"malformed token: a Shipyard token is {TOKEN_PREFIX} and 43 characters; got {len(secret)} characters"
                self._refuse(Unauthenticated(problem, hint=_SEND), reason="malformed", source=source)
            self._refuse(
                Unauthenticated("unknown token: no token with this secret exists", hint="Check it was copied whole. " + _SEND),
                reason="unknown",
                source=source,
            )
        token = found[1]
        now = utcnow()
        if token.revoked_at is not None:
            message = f"token {token.name} was revoked at {_when(token.revoked_at)} by {token.revoked_by}"
            self._refuse(Unauthenticated(message, hint=_SEND), reason="revoked", source=source, token=token)
        if token.expires_at is not None and token.expires_at <= now:
            message = f"token {token.name} expired at {_when(token.expires_at)}"
            self._refuse(Unauthenticated(message, hint=_SEND), reason="expired", source=source, token=token)
        if scope == "api" and token.scope != "api":
            refusal = PermissionDenied(
                f"token {token.name} has scope {token.scope}: it serves predictions from gateways, not the control-plane api",
                hint="Use an api token: `shipyard token create NAME` (scope api by default).",
            )
            self._refuse(refusal, reason=f"scope {token.scope}", source=source, token=token)
        principal = self._holder(token, source)
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USE_SECONDS:
            self.store.touch_token(token.name, every_seconds=LAST_USE_SECONDS, now=now)
        return principal

    def _holder(self, token: Token, source: str) -> Principal:
        if not self.settings.team:
            held = self.access.roles(token.principal)
            return Principal(name=token.principal, roles=tuple(r for r in ROLES if r in held))
        found = next((p for p in self.team_principals() if p.name == token.principal), None)
        if found is None:
            message = f"token {token.name} belongs to {token.principal}, who is no longer a principal"
            hint = "An admin adds the principal back: `shipyard principals set NAME --role ROLE`."
            self._refuse(Unauthenticated(message, hint=hint), reason="no principal", source=source, token=token)
        return found

    def _refuse(self, refusal: ShipyardError, *, reason: str, source: str, token: Token | None = None) -> NoReturn:
        """Audit a refused token as ``token.denied`` (a store that cannot record it must not hide the refusal), then raise."""
        details = {"reason": reason, "message": refusal.message, "source": source}
        if token is not None:
            details.update(token=token.name, principal=token.principal, scope=token.scope)
        subject = token_subject(token.name) if token is not None else "token"
        try:
            self.store.record_denial(actor=ANONYMOUS, action="token", subject=subject, details=details)
        except ShipyardError as exc:
            log.warning("could not audit a refused token (%s, from %s): %s", reason, source or "unknown", exc.message)
        raise refusal
