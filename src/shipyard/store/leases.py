"""Leases: exactly one holder acts at a time on a shared store (the worker).

Taking or renewing a lease goes through the store's writing transaction, which
locks the audit head first: two workers racing for a lease are serialized there,
on PostgreSQL (row lock) and SQLite (an IMMEDIATE transaction) alike, so the second
sees the first one's lease. A new holder is audited; renewals are not (a worker
renews every few seconds and would flood the log).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shipyard.domain.errors import InvalidSpec
from shipyard.store.base import StoreBase
from shipyard.store.tables import LeaseRow, as_utc, utcnow


def _subject(name: str) -> str:
    return f"lease:{name}"


class LeaseRecords(StoreBase):
    """Mixed into ``Store``: named, expiring leases."""

    def acquire_lease(self, *, name: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Take ``name`` if it is free, expired or already ``holder``'s (then renew it); False if another holds it."""
        if not name.strip() or not holder.strip():
            raise InvalidSpec(f"a lease needs a name and a holder; got name {name!r}, holder {holder!r}")
        if not ttl_seconds > 0:
            raise InvalidSpec(f"a lease's time to live must be positive; got {ttl_seconds} seconds")
        with self.write(holder) as tx:
            at = now or tx.now
            expires = at + timedelta(seconds=ttl_seconds)
            row = tx.session.get(LeaseRow, name)
            if row is not None and row.holder == holder:
                row.expires_at = expires  # a renewal: not audited
                return True
            if row is not None and as_utc(row.expires_at) > at:
                return False
            details = {"holder": holder, "expires_at": expires.isoformat(), "ttl_seconds": ttl_seconds}
            if row is None:
                tx.session.add(LeaseRow(name=name, holder=holder, acquired_at=at, expires_at=expires))
                tx.audit("lease.acquired", _subject(name), {**details, "previous": None})
            else:
                previous, lapsed = row.holder, as_utc(row.expires_at)
                row.holder, row.acquired_at, row.expires_at = holder, at, expires
                tx.audit("lease.acquired", _subject(name), {**details, "previous": previous, "lapsed_at": lapsed.isoformat()})
            return True

    def release_lease(self, *, name: str, holder: str) -> bool:
        """Give ``name`` up if ``holder`` holds it; False (and nothing written) otherwise."""
        with self.write(holder) as tx:
            row = tx.session.get(LeaseRow, name)
            if row is None or row.holder != holder:
                return False
            tx.session.delete(row)
            tx.audit("lease.released", _subject(name), {"holder": holder})
            return True

    def lease_holder(self, name: str, *, now: datetime | None = None) -> str | None:
        """Who holds ``name`` now; None when nobody does or the lease lapsed."""
        with self.read() as session:
            row = session.get(LeaseRow, name)
            if row is None or as_utc(row.expires_at) <= (now or utcnow()):
                return None
            return row.holder


__all__ = ["LeaseRecords"]
