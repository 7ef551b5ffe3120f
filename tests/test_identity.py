"""Identity through the service: team mode's principals, tokens and authentication, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from conftest import PRINCIPALS, declare_principals
from shipyard.config import load_settings
from shipyard.domain.errors import Conflict, InvalidSpec, NotFound, PermissionDenied, Unauthenticated
from shipyard.service import Shipyard
from shipyard.store.repository import Store

SERVER = {"url": "http://127.0.0.1:8700"}


def declare_server(root: Path) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = SERVER
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def team(project: Path, store_url: str) -> dict[str, str]:
    """A team-mode project (it declares a server) on a fresh store; the env to open it with."""
    declare_server(project)
    Store.open(store_url, auto_migrate=True).close()
    return {"SHIPYARD_STORE_URL": store_url, "root": str(project)}


def open_as(team: dict[str, str], actor: str) -> Shipyard:
    """The project as its server opens it (only the server changes a team store), acting as ``actor``."""
    settings = load_settings(Path(team["root"]), actor=actor, env={"SHIPYARD_STORE_URL": team["SHIPYARD_STORE_URL"]})
    return Shipyard(dataclasses.replace(settings, hosted=True))


def events(service: Shipyard, prefix: str) -> list[tuple[str, str, str]]:
    return [(e.action, e.subject, e.actor) for e in service.store.audit_events() if e.action.startswith(prefix)]


# -- principals ------------------------------------------------------------------------------


def test_a_team_store_is_seeded_from_shipyard_yaml_once_with_the_service_principal(team: dict[str, str]) -> None:
    with open_as(team, "ada") as ada:
        listed = {p.name: p.roles for p in ada.principals()}
        assert listed == {**{n: tuple(r) for n, r in PRINCIPALS.items()}, "shipyard.monitor": ("scientist", "deployer")}
        # The worker's service principal can do what automated work does, and cannot approve.
        monitor = ada.as_actor("shipyard.monitor").access
        for action in ("train", "promote:production", "monitor", "operate"):
            monitor.require("shipyard.monitor", action)
        with pytest.raises(PermissionDenied):
            monitor.require("shipyard.monitor", "approve")
    with open_as(team, "bob") as bob:
        assert bob.access.roles("bob") == {"scientist"}
        assert [a for a, _, _ in events(bob, "principal.")] == ["principal.seeded"]


def test_editing_shipyard_yaml_afterwards_changes_nothing_and_the_difference_is_told_once(
    team: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    root = Path(team["root"])
    with open_as(team, "ada") as ada:
        ada.principals()  # seeds
    declare_principals(root, {**PRINCIPALS, "bob": ["admin"], "mallory": ["admin"]})
    with caplog.at_level(logging.WARNING, logger="shipyard"), open_as(team, "bob") as bob:
        assert bob.access.roles("bob") == {"scientist"}
        assert bob.access.roles("mallory") == frozenset()
        with pytest.raises(PermissionDenied):
            bob.set_principal("bob", ["admin"])
        ada = bob.as_actor("ada")
        drift = ada.principals_drift()
        assert drift == [
            "bob: shipyard.yaml gives [admin]; the server holds [scientist]",
            "mallory: shipyard.yaml gives [admin]; the server has no such principal",
        ]
    warnings = [r.getMessage() for r in caplog.records if "differ from the server's" in r.getMessage()]
    assert len(warnings) == 1 and "shipyard principals set NAME --role ROLE" in warnings[0]
    with open_as(team, "ada") as ada:
        assert [a for a, _, _ in events(ada, "principal.")] == ["principal.seeded", "principal.denied"]


def test_only_an_admin_manages_principals_and_each_change_is_audited(team: dict[str, str]) -> None:
    with open_as(team, "bob") as bob, pytest.raises(PermissionDenied, match="bob may not set the roles of carl") as caught:
        bob.set_principal("carl", ["viewer"])
    assert "--actor" not in (caught.value.hint or "") and "shipyard principals set" in (caught.value.hint or "")
    with open_as(team, "ada") as ada:
        assert ada.set_principal("carl", ["deployer", "viewer", "deployer"]).roles == ("viewer", "deployer")
        assert ada.set_principal("carl", ["approver"]).roles == ("approver",)
        with pytest.raises(InvalidSpec, match="unknown role 'boss'; expected one or more of viewer"):
            ada.set_principal("carl", ["boss"])
        with pytest.raises(InvalidSpec, match="no roles"):
            ada.set_principal("carl", [])
        with pytest.raises(InvalidSpec, match="not a principal name"):
            ada.set_principal("two words", ["viewer"])
        ada.remove_principal("carl")
        assert "carl" not in {p.name for p in ada.principals()}
        assert events(ada, "principal.")[1:] == [
            ("principal.denied", "principal:carl", "bob"),
            ("principal.created", "principal:carl", "ada"),
            ("principal.updated", "principal:carl", "ada"),
            ("principal.removed", "principal:carl", "ada"),
        ]


def test_the_last_admin_is_protected(team: dict[str, str]) -> None:
    with open_as(team, "ada") as ada:
        with pytest.raises(Conflict, match="ada is the last admin"):
            ada.set_principal("ada", ["deployer"])
        with pytest.raises(Conflict, match="ada is the last admin"):
            ada.remove_principal("ada")
        ada.set_principal("bob", ["scientist", "admin"])
        ada.remove_principal("ada")
    with open_as(team, "bob") as bob:
        assert "admin" in bob.access.roles("bob")


def test_embedded_mode_keeps_principals_in_shipyard_yaml(project: Path) -> None:
    with Shipyard.open(project, actor="ada", env={}) as ada:
        assert {p.name for p in ada.principals()} == set(PRINCIPALS)
        assert ada.principals_drift() == []
        with pytest.raises(InvalidSpec, match=r"shipyard\.yaml"):
            ada.set_principal("carl", ["viewer"])
        with pytest.raises(InvalidSpec, match="no server"):
            ada.bootstrap_admin("root")
        with pytest.raises(PermissionDenied) as caught:
            ada.as_actor("nobody").create_token("x", principal="bob")
        assert "--actor" in (caught.value.hint or "")  # embedded: the actor is claimed, so another may be named


# -- tokens ----------------------------------------------------------------------------------


def test_tokens_for_oneself_and_for_others(team: dict[str, str]) -> None:
    with open_as(team, "val") as val:
        token, secret = val.create_token("val-laptop", expires_seconds=90 * 86400)
        assert (token.principal, token.scope, token.created_by) == ("val", "api", "val")
        assert token.expires_at is not None
        assert abs(token.expires_at - token.created_at - timedelta(days=90)) < timedelta(seconds=5)
        assert secret.startswith("shp_") and len(secret) == 47
        assert secret not in repr(val.store.token_hashes()) and secret not in repr(val.store.audit_events())
        with pytest.raises(PermissionDenied, match="val may not create a token for bob"):
            val.create_token("bobs", principal="bob")
        with pytest.raises(PermissionDenied, match="gateway"):
            val.create_token("gw", scope="predict")  # predict tokens need the operate permission, as gateway tokens did
        with pytest.raises(InvalidSpec, match="unknown token scope 'root'"):
            val.create_token("x", scope="root")
    with open_as(team, "rui") as rui:
        assert rui.create_token("dashboard", scope="predict")[0].scope == "predict"
    with open_as(team, "ada") as ada:
        assert ada.create_token("bobs", principal="bob")[0].principal == "bob"
        with pytest.raises(NotFound, match="no principal named 'ghost'"):
            ada.create_token("ghosts", principal="ghost")
        denied = [e for e in ada.store.audit_events() if e.action.endswith(".denied")]
        assert [(e.action, e.actor) for e in denied] == [("token.denied", "val"), ("operate.denied", "val")]


def test_who_sees_and_revokes_which_tokens(team: dict[str, str]) -> None:
    with open_as(team, "ada") as ada:
        ada.create_token("ada-1")
        ada.create_token("bob-1", principal="bob")
        ada.create_token("rui-1", principal="rui")
        assert [t.name for t in ada.tokens()] == ["ada-1", "bob-1", "rui-1"]
        assert [t.name for t in ada.tokens(principal="bob")] == ["bob-1"]
    with open_as(team, "bob") as bob:
        assert [t.name for t in bob.tokens()] == ["bob-1"]
        with pytest.raises(PermissionDenied, match="bob may not list the tokens of rui"):
            bob.tokens(principal="rui")
        with pytest.raises(PermissionDenied, match="bob may not revoke rui's token rui-1"):
            bob.revoke_token("rui-1")
        assert bob.revoke_token("bob-1").revoked_by == "bob"
    with open_as(team, "ada") as ada:
        assert ada.revoke_token("rui-1").revoked_by == "ada"
        assert events(ada, "token.revoked") == [("token.revoked", "token:bob-1", "bob"), ("token.revoked", "token:rui-1", "ada")]


# -- authentication --------------------------------------------------------------------------


def denials(service: Shipyard) -> list[dict[str, object]]:
    return [e.details for e in service.store.audit_events() if e.action == "token.denied" and e.actor == "anonymous"]


def test_each_refused_token_says_why_and_is_audited(team: dict[str, str]) -> None:
    with open_as(team, "ada") as ada:
        _, revoked = ada.create_token("old-laptop", principal="bob")
        ada.revoke_token("old-laptop")
        _, short = ada.create_token("short", principal="bob", expires_seconds=0.001)
        _, gateway = ada.as_actor("rui").create_token("dashboard", scope="predict")
        time.sleep(0.01)
        cases = [
            (None, Unauthenticated, "no token: this request carries no bearer token"),
            ("   ", Unauthenticated, "no token"),
            ("Bearer-ish nonsense", Unauthenticated, "malformed token: a Shipyard token is shp_ and 43 characters; got 19"),
            ("shp_" + "A" * 43, Unauthenticated, "unknown token: no token with this secret exists"),
            (short, Unauthenticated, "token short expired at 20"),
            (revoked, Unauthenticated, "token old-laptop was revoked at 20"),
            (gateway, PermissionDenied, "token dashboard has scope predict: it serves predictions from gateways"),
        ]
        for secret, error, message in cases:
            with pytest.raises(error) as caught:
                ada.authenticate(secret, source="10.0.0.7")
            assert message in caught.value.message, (secret, caught.value.message)
        with pytest.raises(Unauthenticated, match="by ada"):
            ada.authenticate(revoked)
        assert [(d["reason"], d.get("token"), d["source"]) for d in denials(ada)] == [
            ("malformed", None, "10.0.0.7"),
            ("unknown", None, "10.0.0.7"),
            ("expired", "short", "10.0.0.7"),
            ("revoked", "old-laptop", "10.0.0.7"),
            ("scope predict", "dashboard", "10.0.0.7"),
            ("revoked", "old-laptop", ""),
        ]  # the two requests without a token left no event
        assert ada.store.verify_audit().ok


def test_a_valid_token_names_its_principal_and_roles_and_records_its_use_once_a_minute(team: dict[str, str]) -> None:
    from sqlalchemy import update

    from shipyard.store.tables import ApiTokenRow

    with open_as(team, "ada") as ada:
        _, api = ada.create_token("alice-ci", principal="alice")
        _, gateway = ada.as_actor("rui").create_token("dashboard", scope="predict")
        principal = ada.authenticate(api)
        assert (principal.name, principal.roles) == ("alice", ("scientist", "deployer"))
        assert ada.authenticate(gateway, scope="predict").name == "rui"
        assert ada.authenticate(api, scope="predict").name == "alice"  # api tokens reach gateways too
        first = ada.store.get_token("alice-ci").last_used_at
        assert first is not None
        ada.authenticate(api)
        assert ada.store.get_token("alice-ci").last_used_at == first  # within the minute: not written again
        earlier = first - timedelta(minutes=2)
        with ada.store.engine.begin() as conn:
            conn.execute(update(ApiTokenRow).where(ApiTokenRow.name == "alice-ci").values(last_used_at=earlier))
        ada.authenticate(api)
        last = ada.store.get_token("alice-ci").last_used_at
        assert last is not None and last > earlier


def test_removing_a_principal_revokes_its_tokens(team: dict[str, str]) -> None:
    with open_as(team, "ada") as ada:
        _, secret = ada.create_token("bob-ci", principal="bob")
        assert ada.authenticate(secret).name == "bob"
        ada.remove_principal("bob")
        with pytest.raises(Unauthenticated, match=r"token bob-ci was revoked at .* by ada"):
            ada.authenticate(secret)


def test_bootstrap_admin_gives_a_new_server_its_first_admin_once(project: Path, store_url: str) -> None:
    declare_principals(project, None)  # nothing declared: only the service principal is seeded
    declare_server(project)
    team = {"SHIPYARD_STORE_URL": store_url, "root": str(project)}
    Store.open(store_url, auto_migrate=True).close()
    with open_as(team, "operator") as operator:
        secret = operator.bootstrap_admin("root")
        principal = operator.authenticate(secret)
        assert (principal.name, principal.roles) == ("root", ("admin",))
        with pytest.raises(Conflict, match="has an admin already: root"):
            operator.bootstrap_admin("eve")
        assert {p.name for p in operator.as_actor("root").principals()} == {"root", "shipyard.monitor"}
        assert [a for a, _, _ in events(operator, "principal.")] == ["principal.seeded", "principal.created"]


def test_bootstrap_gives_an_admin_seeded_from_shipyard_yaml_its_first_token(team: dict[str, str]) -> None:
    with open_as(team, "operator") as operator:
        secret = operator.bootstrap_admin("ada")
        assert operator.authenticate(secret).roles == ("admin",)
        with pytest.raises(Conflict):
            operator.bootstrap_admin("ada")


def test_a_shared_team_store_is_migrated_without_reading_roles_from_it(project: Path, postgres_url: str) -> None:
    declare_server(project)
    with Shipyard.open(project, actor="bob", env={"SHIPYARD_STORE_URL": postgres_url}) as bob:
        assert bob.upgrade_store() is not None
        assert [a for a, _, _ in events(bob, "principal.")] == []
