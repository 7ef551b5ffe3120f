"""The server's audit signing key (Ed25519, from ``cryptography``) and its append-only checkpoint file.

Only the control-plane server holds the private key; anyone may hold a public key and check
what it signed. ``cryptography`` is imported inside the functions that use it, so commands
that never sign or verify do not pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.domain.checkpoints import Checkpoint
from shipyard.domain.errors import BackendUnavailable, InvalidSpec, ShipyardError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_MODE = 0o600
RAW_KEY_BYTES = 32


def key_id(public_raw: bytes) -> str:
    """A public key's short name: the first 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_raw: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.public_raw)

    @property
    def public_hex(self) -> str:
        return self.public_raw.hex()

    def sign(self, document: bytes) -> str:
        return self.private.sign(document).hex()


def _wrap(private: Ed25519PrivateKey) -> SigningKey:
    from cryptography.hazmat.primitives import serialization

    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SigningKey(private=private, public_raw=raw)


def new_key() -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return _wrap(Ed25519PrivateKey.generate())


def _private_pem(key: SigningKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def check_mode(path: Path) -> None:
    """Refuse a key file that anyone but its owner may read or write."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidSpec(
            f"the audit signing key {path} may be read or written by group or others (mode {mode:04o}); "
            f"expected {KEY_MODE:04o}, its owner alone",
            hint=f"Run `chmod 600 {path}`. If anyone else may have read it, start a new key: `shipyard audit rotate-key`.",
        )


def load_key(path: Path) -> SigningKey | None:
    """The key in ``path``; None when there is no file yet."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        check_mode(path)
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BackendUnavailable(f"cannot read the audit signing key {path}: {exc.strerror or exc}") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidSpec(
            f"{path} is not an unencrypted PEM private key ({exc})",
            hint="Restore the server's key file, or move it away to have a new key made (checkpoints it signed stay verifiable).",
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidSpec(f"{path} holds a {type(private).__name__}; the audit signing key must be Ed25519")
    return _wrap(private)


def write_key(path: Path, key: SigningKey) -> None:
    """Write ``key`` to ``path`` with mode 0600, replacing any key there in one step (the old one is then gone)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = path.with_name(path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()  # left by a rotation that stopped halfway
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        try:
            os.fchmod(fd, KEY_MODE)  # whatever the umask
            os.write(fd, _private_pem(key))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(fresh, path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise BackendUnavailable(f"cannot write the audit signing key {path}: {exc.strerror or exc}") from exc


def load_or_create(path: Path) -> tuple[SigningKey, bool]:
    """The key in ``path``, made on first use; True when it was just made."""
    key = load_key(path)
    if key is not None:
        return key, False
    key = new_key()
    write_key(path, key)
    return key, True


# -- public keys -------------------------------------------------------------------------


def public_pem(public_raw: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(public_raw)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def read_public_keys(data: bytes, *, where: str) -> list[bytes]:
    """The raw Ed25519 public keys in a PEM file (one or more ``PUBLIC KEY`` blocks), or 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(data) == RAW_KEY_BYTES and not data.startswith(b"-----"):
        return [data]
    blocks = [b"-----BEGIN" + part for part in data.split(b"-----BEGIN")[1:]]
    keys = []
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PublicKey):
            continue
        keys.append(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    if not keys:
        raise InvalidSpec(
            f"{where} holds no Ed25519 public key in PEM form",
            hint="Get the server's key with `shipyard audit public-key --out FILE` and pass that file.",
        )
    return keys


def verify(public_raw: bytes, checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint``'s signature is ``public_raw``'s over its document."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        signature = bytes.fromhex(checkpoint.signature)
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, checkpoint.document())
    except (InvalidSignature, ValueError):
        return False
    return True


# -- the checkpoint file ------------------------------------------------------------------


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Add one JSON line and make it durable before returning; the file is only ever appended to."""
    line = json.dumps(checkpoint.to_dict(), sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _sync_folder(path.parent)
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot append to the checkpoint file {path}: {exc.strerror or exc}",
            hint="The checkpoint is in the store; the next one is appended once the file is writable again.",
        ) from exc


def read_checkpoints(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints in a checkpoint file (or an export of them), and a sentence for each line that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendUnavailable(f"cannot read the checkpoint file {path}: {exc.strerror or exc}") from exc
    found, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number} of the checkpoint file {path}"
        try:
            data = json.loads(line)
            if isinstance(data, dict) and data.get("kind", "checkpoint") != "checkpoint":
                continue  # an export's key lines
            found.append(Checkpoint.from_dict(data, where=where))
        except json.JSONDecodeError as exc:
            problems.append(f"{where} is not JSON ({exc.msg}): the file was edited or cut")
        except ShipyardError as exc:
            problems.append(exc.message)
    return found, problems


def _sync_folder(folder: Path) -> None:
    """Make a new or renamed entry in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "SigningKey",
    "append_checkpoint",
    "check_mode",
    "key_id",
    "load_key",
    "load_or_create",
    "new_key",
    "public_pem",
    "read_checkpoints",
    "read_public_keys",
    "verify",
    "write_key",
]
