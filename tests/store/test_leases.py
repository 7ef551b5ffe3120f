"""Leases on SQLite and PostgreSQL: one holder at a time, even when workers race for it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.domain.errors import InvalidSpec
from shipyard.store.repository import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def lease_events(store: Store) -> list[tuple[str, str, object]]:
    return [(e.action, e.actor, e.details.get("previous")) for e in store.audit_events() if e.action.startswith("lease.")]


def test_a_held_lease_is_refused_to_others_and_renewed_for_its_holder(store: Store) -> None:
    assert store.acquire_lease(name="worker", holder="w1", ttl_seconds=30, now=T0)
    assert not store.acquire_lease(name="worker", holder="w2", ttl_seconds=30, now=T0 + timedelta(seconds=29))
    assert store.lease_holder("worker", now=T0 + timedelta(seconds=29)) == "w1"
    # Renewals push the expiry out and write no audit event.
    for seconds in (10, 20, 35):
        assert store.acquire_lease(name="worker", holder="w1", ttl_seconds=30, now=T0 + timedelta(seconds=seconds))
    assert not store.acquire_lease(name="worker", holder="w2", ttl_seconds=30, now=T0 + timedelta(seconds=64))
    assert lease_events(store) == [("lease.acquired", "w1", None)]
    assert store.audit_events()[0].subject == "lease:worker"


def test_a_lapsed_lease_goes_to_the_next_worker_and_says_whose_it_was(store: Store) -> None:
    store.acquire_lease(name="worker", holder="w1", ttl_seconds=30, now=T0)
    assert store.lease_holder("worker", now=T0 + timedelta(seconds=30)) is None
    assert store.acquire_lease(name="worker", holder="w2", ttl_seconds=30, now=T0 + timedelta(seconds=30))
    assert store.lease_holder("worker", now=T0 + timedelta(seconds=31)) == "w2"
    assert not store.acquire_lease(name="worker", holder="w1", ttl_seconds=30, now=T0 + timedelta(seconds=31))
    assert lease_events(store) == [("lease.acquired", "w1", None), ("lease.acquired", "w2", "w1")]
    assert store.verify_audit().ok


def test_only_the_holder_releases_and_then_anyone_may_take_it(store: Store) -> None:
    now = datetime.now(UTC)
    store.acquire_lease(name="worker", holder="w1", ttl_seconds=300)
    assert store.lease_holder("worker") == "w1"
    assert not store.release_lease(name="worker", holder="w2")
    assert store.release_lease(name="worker", holder="w1")
    assert not store.release_lease(name="worker", holder="w1")
    assert store.lease_holder("worker") is None
    assert store.acquire_lease(name="worker", holder="w2", ttl_seconds=300, now=now)
    assert store.lease_holder("other") is None
    assert [a for a, _, _ in lease_events(store)] == ["lease.acquired", "lease.released", "lease.acquired"]


@pytest.mark.parametrize(("name", "holder", "ttl"), [("", "w1", 30), ("worker", " ", 30), ("worker", "w1", 0)])
def test_a_bad_lease_request_is_refused(store: Store, name: str, holder: str, ttl: float) -> None:
    with pytest.raises(InvalidSpec, match="lease"):
        store.acquire_lease(name=name, holder=holder, ttl_seconds=ttl)


ROUNDS = 6


def test_two_workers_racing_for_a_lease_never_both_win(store: Store) -> None:
    """Each worker has its own engine and connections; they start together at a barrier."""
    stores = [Store.open(store.url, auto_migrate=False) for _ in range(2)]
    results: dict[tuple[int, str], bool] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def race(index: int, name: str, now: datetime) -> None:
        try:
            barrier.wait(timeout=60)
            results[(index, name)] = stores[index].acquire_lease(name=name, holder=f"w{index}", ttl_seconds=30, now=now)
        except BaseException as exc:
            errors.append(exc)

    try:
        for round_ in range(ROUNDS):
            # Even rounds race for a fresh lease, odd rounds for one a third worker let lapse.
            name = f"lease-{round_}"
            now = T0
            if round_ % 2:
                store.acquire_lease(name=name, holder="gone", ttl_seconds=1, now=T0 - timedelta(seconds=10))
            threads = [threading.Thread(target=race, args=(i, name, now)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not errors, errors
            winners = [i for i in range(2) if results[(i, name)]]
            assert len(winners) == 1, (round_, results)
            assert store.lease_holder(name, now=now) == f"w{winners[0]}"
    finally:
        for opened in stores:
            opened.close()
    acquired = [e for e in store.audit_events() if e.action == "lease.acquired" and e.actor.startswith("w")]
    assert len(acquired) == ROUNDS
    assert store.verify_audit().ok
