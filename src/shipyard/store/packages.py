"""Container packages of a version: each one's digest, pinned in the audit chain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.store.base import version_row

if TYPE_CHECKING:
    from shipyard.domain.entities import AuditEvent
    from shipyard.store.base import StoreBase


def record_package(store: StoreBase, *, actor: str, model: str, version: int, details: dict[str, Any]) -> AuditEvent:
    """A `version.packaged` event naming the package's sha256 (and what it holds) for ``model``/``version``."""
    with store.write(actor) as tx:
        version_row(tx.session, model, version)
        return tx.audit("version.packaged", f"{model}/{version}", details)
