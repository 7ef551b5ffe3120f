"""Real processes racing to promote different versions to production."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest

from factories import register
from shipyard.domain.errors import Conflict
from shipyard.domain.stages import Stage
from shipyard.store.repository import Store

ROUNDS = 4


def _promote_at_barrier(url: str, version: int, barrier: Any, results: Any) -> None:
    store = Store.open(url, auto_migrate=False)
    try:
        barrier.wait(timeout=60)
        try:
            promotion = store.transition(
                actor=f"proc-{version}", model="churn", version=version, to=Stage.PRODUCTION, reason="race"
            )
            results.put((version, "ok", [v.version for v in promotion.archived]))
        except Conflict as exc:
            results.put((version, "conflict", str(exc)))
    finally:
        store.close()


def test_racing_promotions_leave_one_champion_and_a_valid_chain(store: Store) -> None:
    versions = list(range(1, 2 * ROUNDS + 1))
    for v in versions:
        register(store, v)
        store.transition(actor="alice", model="churn", version=v, to=Stage.STAGING, reason="ready")

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    for round_ in range(ROUNDS):
        pair = versions[2 * round_ : 2 * round_ + 2]
        barrier = ctx.Barrier(len(pair))
        procs = [ctx.Process(target=_promote_at_barrier, args=(store.url, v, barrier, results)) for v in pair]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0

        production = [v for v in store.list_versions("churn") if v.stage is Stage.PRODUCTION]
        assert len(production) == 1, f"round {round_}: {production}"

    outcomes = [results.get(timeout=5) for _ in versions]
    assert all(status == "ok" for _, status, _ in outcomes), outcomes
    # Every promotion archived exactly the champion before it: the moves were serialized.
    archived_counts = sorted(len(archived) for _, _, archived in outcomes)
    assert archived_counts == [0] + [1] * (len(versions) - 1)
    stages = [v.stage for v in store.list_versions("churn")]
    assert stages.count(Stage.PRODUCTION) == 1 and stages.count(Stage.ARCHIVED) == len(versions) - 1
    verification = store.verify_audit()
    assert verification.ok, verification
    assert verification.events == 1 + 3 * len(versions) + (len(versions) - 1)


@pytest.mark.parametrize("writers", [4])
def test_parallel_writers_never_fork_the_chain(store: Store, writers: int) -> None:
    """Many processes registering at once: sequence numbers stay gap-free and linked."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(writers)
    procs = [ctx.Process(target=_register_many, args=(store.url, f"m{i}", barrier)) for i in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    result = store.verify_audit()
    assert result.ok, result
    assert result.events == writers * (1 + 5)


def _register_many(url: str, model: str, barrier: Any) -> None:
    store = Store.open(url, auto_migrate=False)
    try:
        barrier.wait(timeout=60)
        for v in range(1, 6):
            register(store, v, model=model, actor=model)
    finally:
        store.close()
