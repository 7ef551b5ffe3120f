"""Principals and tokens in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.domain.errors import Conflict, NotFound
from shipyard.store import database
from shipyard.store.repository import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def actions(store: Store, prefix: str) -> list[tuple[str, str, str]]:
    return [(e.action, e.subject, e.actor) for e in store.audit_events() if e.action.startswith(prefix)]


def test_principals_are_seeded_once_even_when_two_seed_at_once(store: Store) -> None:
    results: list[bool] = []

    def seed(actor: str) -> None:
        results.append(store.seed_principals(actor=actor, principals={"ada": ["admin"], "bob": ["scientist"]}, source="yaml"))

    threads = [threading.Thread(target=seed, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert [(p.name, p.roles, p.created_by) for p in store.principals()] == [
        ("ada", ("admin",), "yaml"),
        ("bob", ("scientist",), "yaml"),
    ]
    [seeded] = [e for e in store.audit_events() if e.action == "principal.seeded"]
    assert seeded.details == {"source": "yaml", "principals": {"ada": ["admin"], "bob": ["scientist"]}}
    assert not store.seed_principals(actor="late", principals={"eve": ["admin"]}, source="yaml")
    assert "eve" not in {p.name for p in store.principals()}


def test_set_and_remove_principals_are_audited(store: Store) -> None:
    created, was_new = store.set_principal(actor="ada", name="bob", roles=["scientist"])
    assert was_new and created.roles == ("scientist",) and created.created_by == "ada"
    updated, was_new = store.set_principal(actor="ada", name="bob", roles=["scientist", "deployer"])
    assert not was_new and updated.roles == ("scientist", "deployer")
    store.add_token(actor="bob", name="bobs", token_sha256=sha("b1"), scope="api")
    store.add_token(actor="bob", name="bobs-old", token_sha256=sha("b2"), scope="api")
    store.revoke_token(actor="bob", name="bobs-old")
    assert store.remove_principal(actor="ada", name="bob") == ["bobs"]  # the revoked one stays as it was
    assert store.principals() == []
    assert store.get_token("bobs").revoked_by == "ada"
    assert store.get_token("bobs-old").revoked_by == "bob"
    assert actions(store, "principal.") == [
        ("principal.created", "principal:bob", "ada"),
        ("principal.updated", "principal:bob", "ada"),
        ("principal.removed", "principal:bob", "ada"),
    ]
    removed = store.audit_events()[-1]
    assert removed.details == {"roles": ["scientist", "deployer"], "tokens_revoked": ["bobs"]}
    with pytest.raises(NotFound, match="no principal named 'bob'"):
        store.remove_principal(actor="ada", name="bob")


def test_the_last_admin_can_be_neither_demoted_nor_removed(store: Store) -> None:
    store.set_principal(actor="root", name="ada", roles=["admin"])
    with pytest.raises(Conflict, match="ada is the last admin") as caught:
        store.set_principal(actor="ada", name="ada", roles=["viewer"])
    assert "shipyard principals set NAME --role admin" in (caught.value.hint or "")
    with pytest.raises(Conflict, match="ada is the last admin"):
        store.remove_principal(actor="ada", name="ada")
    store.set_principal(actor="ada", name="ben", roles=["admin", "approver"])
    store.set_principal(actor="ben", name="ada", roles=["viewer"])  # ben is admin too now
    with pytest.raises(Conflict, match="ben is the last admin"):
        store.remove_principal(actor="ben", name="ben")
    assert {p.name: p.roles for p in store.principals()} == {"ada": ("viewer",), "ben": ("admin", "approver")}


def test_tokens_are_kept_as_digests_with_principal_scope_and_expiry(store: Store) -> None:
    expires = T0 + timedelta(days=90)
    token = store.add_token(actor="ada", name="ci", token_sha256=sha("s1"), principal="bot", scope="api", expires_at=expires)
    assert (token.principal, token.scope, token.created_by, token.expires_at) == ("bot", "api", "ada", expires)
    legacy = store.add_token(actor="rui", name="dash", token_sha256=sha("s2"))
    assert (legacy.principal, legacy.scope, legacy.expires_at) == ("rui", "predict", None)
    hashes = store.token_hashes()
    assert set(hashes) == {sha("s1"), sha("s2")} and hashes[sha("s1")].name == "ci"
    found = store.find_token(sha("s1"))
    assert found is not None and found[0] == sha("s1") and found[1].expires_at == expires
    assert store.find_token(sha("nope")) is None
    assert [t.name for t in store.tokens("bot")] == ["ci"]
    assert [t.name for t in store.tokens()] == ["ci", "dash"]
    with pytest.raises(Conflict, match="a token named 'ci' exists already"):
        store.add_token(actor="ada", name="ci", token_sha256=sha("s3"))
    [created] = [e for e in store.audit_events() if e.subject == "token:ci"]
    assert created.action == "token.created"
    assert created.details == {"principal": "bot", "scope": "api", "expires_at": expires.isoformat()}


def test_a_revoked_token_stays_and_its_name_is_not_reused(store: Store) -> None:
    store.add_token(actor="ada", name="ci", token_sha256=sha("s1"), scope="api")
    revoked = store.revoke_token(actor="ben", name="ci")
    assert revoked.revoked_by == "ben" and revoked.revoked_at is not None
    assert store.token_hashes()[sha("s1")].revoked_by == "ben"
    with pytest.raises(Conflict, match="was revoked already") as caught:
        store.revoke_token(actor="ada", name="ci")
    assert "by ben" in caught.value.message
    with pytest.raises(Conflict, match=r"exists already \(revoked"):
        store.add_token(actor="ada", name="ci", token_sha256=sha("s2"))
    with pytest.raises(NotFound, match="no token named 'gone'"):
        store.revoke_token(actor="ada", name="gone")
    assert actions(store, "token.revoked") == [("token.revoked", "token:ci", "ben")]


def test_last_use_is_written_at_most_once_a_minute(store: Store) -> None:
    store.add_token(actor="ada", name="ci", token_sha256=sha("s1"), scope="api")
    events = len(store.audit_events())
    assert store.touch_token("ci", now=T0)
    assert not store.touch_token("ci", now=T0 + timedelta(seconds=59))
    assert store.get_token("ci").last_used_at == T0
    assert store.touch_token("ci", now=T0 + timedelta(seconds=60))
    assert store.get_token("ci").last_used_at == T0 + timedelta(seconds=60)
    assert len(store.audit_events()) == events  # last use is not an audited change
    assert not store.touch_token("unknown", now=T0)


def test_bootstrap_makes_the_first_admin_and_only_while_no_admin_can_authenticate(store: Store) -> None:
    # An admin seeded from shipyard.yaml holds no token yet: bootstrapping is how it gets one.
    store.seed_principals(actor="server", principals={"ada": ["admin"], "bob": ["scientist"]}, source="yaml")
    token = store.bootstrap_admin(actor="server", name="ada", token_name="ada-boot", token_sha256=sha("b1"))
    assert (token.principal, token.scope) == ("ada", "api")
    with pytest.raises(Conflict, match="has an admin already: ada"):
        store.bootstrap_admin(actor="server", name="eve", token_name="eve-boot", token_sha256=sha("b2"))
    assert "eve" not in {p.name for p in store.principals()}
    store.revoke_token(actor="ada", name="ada-boot")  # nobody can act as admin any more: bootstrapping is open again
    store.bootstrap_admin(actor="server", name="bob", token_name="bob-boot", token_sha256=sha("b3"))
    assert {p.name: p.roles for p in store.principals()}["bob"] == ("scientist", "admin")
    assert [e.details.get("bootstrap") for e in store.audit_events() if e.action == "principal.updated"] == [True]


def test_tokens_made_before_identity_become_predict_tokens_of_their_creator(store_url: str) -> None:
    from sqlalchemy import text

    engine = database.make_engine(store_url)
    database.upgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (name, token_sha256, created_by, created_at) "
                f"VALUES ('dash', '{sha('old')}', 'rui', '2026-01-01 00:00:00+00:00')"
            )
        )
    database.upgrade(engine)
    engine.dispose()
    store = Store.open(store_url)
    try:
        [token] = store.tokens()
        assert (token.name, token.principal, token.scope, token.revoked_at, token.expires_at) == (
            "dash",
            "rui",
            "predict",
            None,
            None,
        )
        assert store.find_token(sha("old")) is not None
    finally:
        store.close()
