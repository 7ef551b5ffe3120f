"""Browser sessions of the UI, and the CSRF tokens of its forms.

A session is a random identifier in an HttpOnly, SameSite=Strict cookie (Secure, and ``__Host-``-prefixed,
when the server's address is https). The server keeps what it stands for in memory: the token the person
logged in with, which is authenticated again on every request, so a revoked or expired token ends the
session at its next request; logging out forgets it. A restart of the server ends every session.

A form's CSRF token is an HMAC, with the UI's own key (``ui-session.key``, mode 0600, beside the audit
signing key), of what the session stands for: the session and its token's digest, or — for a principal
named by a trusted single-sign-on proxy on every request — that principal.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shipyard.domain.errors import BackendUnavailable

KEY_FILE = "ui-session.key"
KEY_BYTES = 32
LIFETIME_SECONDS = 12 * 3600.0  # then log in again, whatever the token's own expiry
MAX_SESSIONS = 10_000  # the oldest is forgotten past this, so logins cannot grow the server without bound
LOGIN_COOKIE = "shipyard_login"
LOGIN_SECONDS = 3600


def load_or_create_key(path: Path) -> bytes:
    """The UI's secret, made on first use with mode 0600 (never replaced once written)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                os.write(fd, secrets.token_bytes(KEY_BYTES).hex().encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(
            f"cannot use the UI's session key {path}: {exc}",
            hint="It is a 64-hex-digit secret the server makes on first use; move a damaged one away and restart.",
        ) from exc
    if len(key) < KEY_BYTES:
        raise BackendUnavailable(f"the UI's session key {path} is too short", hint="Move it away: the server makes a new one.")
    return key


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    secret: str  # the token logged in with: authenticated again on every request
    principal: str
    started: float

    @property
    def digest(self) -> str:
        return token_digest(self.secret)


class Sessions:
    """The live sessions of one server process, and the keyed hashes that protect its forms."""

    def __init__(self, key: bytes, *, secure: bool) -> None:
        self._key = key
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.secure = secure
        self.cookie = "__Host-shipyard_session" if secure else "shipyard_session"

    def start(self, secret: str, principal: str) -> Session:
        session = Session(id=secrets.token_urlsafe(32), secret=secret.strip(), principal=principal, started=time.monotonic())
        with self._lock:
            self._expire()
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and time.monotonic() - session.started > LIFETIME_SECONDS:
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _expire(self) -> None:
        now = time.monotonic()
        for stale in [s.id for s in self._sessions.values() if now - s.started > LIFETIME_SECONDS]:
            del self._sessions[stale]

    # -- CSRF ------------------------------------------------------------------------------------

    def _mac(self, *parts: str) -> str:
        return hmac.new(self._key, "\x00".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_for_session(self, session: Session) -> str:
        return self._mac("session", session.id, session.digest)

    def csrf_for_principal(self, principal: str) -> str:
        return self._mac("principal", principal)

    def csrf_for_login(self, nonce: str) -> str:
        return self._mac("login", nonce)

    @staticmethod
    def matches(expected: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(expected.encode("ascii"), (given or "").encode("utf-8", "replace"))

    # -- cookies ---------------------------------------------------------------------------------

    def cookie_options(self, max_age: int | None) -> dict[str, object]:
        return {"max_age": max_age, "path": "/", "httponly": True, "samesite": "strict", "secure": self.secure}
