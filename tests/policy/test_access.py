"""Roles and refusals: the hint fits the mode, and shipyard.yaml's principals are compared with the store's."""

from __future__ import annotations

import pytest

from shipyard.domain.errors import PermissionDenied
from shipyard.policy.access import Access, principals_drift, seed_roles, service_principals


@pytest.mark.parametrize("actor", ["mallory", "bob"])
def test_team_mode_never_offers_acting_as_someone_else(actor: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        Access({"bob": ["viewer"]}, team=True).require(actor, "approve")
    hint = caught.value.hint or ""
    assert "--actor" not in hint and f"shipyard principals set {actor} --role ROLE" in hint


def test_embedded_mode_names_shipyard_yaml_and_actor() -> None:
    with pytest.raises(PermissionDenied) as caught:
        Access({"bob": ["viewer"]}).require("mallory", "approve")
    assert "not declared under principals in shipyard.yaml (declared: bob)" in (caught.value.hint or "")
    assert "--actor" in (caught.value.hint or "")


def test_seeding_adds_service_principals_the_yaml_leaves_out() -> None:
    service = service_principals("shipyard.monitor", ["shipyard.monitor", "churn.robot"])
    assert service == {"churn.robot": ("scientist", "deployer"), "shipyard.monitor": ("scientist", "deployer")}
    seeded = seed_roles({"ada": ["admin"], "churn.robot": ["scientist"]}, service)
    assert seeded == {"ada": ("admin",), "churn.robot": ("scientist",), "shipyard.monitor": ("scientist", "deployer")}
    assert seed_roles(None, service) == service


def test_drift_names_each_difference_and_ignores_seeded_service_principals() -> None:
    stored = {"ada": ("admin",), "bob": ("scientist",), "root": ("admin",), "shipyard.monitor": ("scientist", "deployer")}
    declared = {"ada": ["admin"], "bob": ["deployer", "scientist"], "cy": ["viewer"]}
    assert principals_drift(declared, stored, ["shipyard.monitor"]) == [
        "bob: shipyard.yaml gives [deployer, scientist]; the server holds [scientist]",
        "cy: shipyard.yaml gives [viewer]; the server has no such principal",
        "root: the server holds [admin]; shipyard.yaml does not declare it",
    ]
    assert principals_drift({"ada": ["admin"]}, {"ada": ("admin",)}) == []
    assert principals_drift(None, stored) == []  # nothing declared: nothing differs
