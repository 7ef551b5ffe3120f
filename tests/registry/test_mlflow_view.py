"""What MLflow holds for a model, versions the store does not know, and marking them without deleting them."""

from __future__ import annotations

import pytest

from mlflow_store import register_small_model
from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import NotFound
from shipyard.domain.stages import Stage
from shipyard.registry import Registry


def test_the_view_lists_every_version_with_its_run_source_tags_and_the_aliases(
    registry: Registry, registered: ModelVersion
) -> None:
    second = register_small_model(registry)
    registry.mirror("churn", {1: Stage.PRODUCTION, 2: Stage.CANDIDATE})
    view = registry.registered_model("churn")
    assert view.name == "churn" and [v.number for v in view.versions] == [1, 2]
    assert view.aliases == {"production": 1, "champion": 1}
    first, latest = view.versions
    assert (first.run_id, first.source) == (registered.run_id, registered.source)
    assert (latest.run_id, latest.source) == (second.run_id, second.source)
    assert first.stage == "production" and latest.stage == "candidate" and latest.tags["shipyard.stage"] == "candidate"
    assert first.aliases == ("champion", "production") and latest.aliases == ()


def test_orphans_are_the_versions_the_store_does_not_know(registry: Registry, registered: ModelVersion) -> None:
    register_small_model(registry)
    unknown = register_small_model(registry)
    assert [v.number for v in registry.orphans("churn", known_versions={1, 2})] == [unknown.version]
    assert registry.orphans("churn", known_versions={1, 2, 3}) == []


def test_marking_an_orphan_tags_it_and_takes_back_the_aliases_shipyard_manages(
    registry: Registry, registered: ModelVersion
) -> None:
    """A plain MLflow client pointed @production at a version Shipyard never governed."""
    orphan = register_small_model(registry)
    registry.mirror("churn", {1: Stage.PRODUCTION})
    registry.client.set_registered_model_alias("churn", "production", str(orphan.version))
    registry.client.set_registered_model_alias("churn", "team-pick", str(orphan.version))
    removed = registry.mark_orphan("churn", orphan.version)
    assert removed == ["production"]
    view = registry.registered_model("churn")
    assert [v.number for v in view.versions] == [1, 2]  # never deleted
    assert view.versions[1].stage == "orphaned"
    assert view.aliases == {"champion": 1, "team-pick": 2}  # the team's own alias is theirs
    registry.mirror("churn", {1: Stage.PRODUCTION})  # and the next mirror puts @production back on the champion
    assert registry.registered_model("churn").aliases == {"production": 1, "champion": 1, "team-pick": 2}


@pytest.mark.parametrize("name", ["o'brien", 'say "hi"', "both ' and \""])
def test_a_name_with_quotes_is_data_not_part_of_a_search_filter(registry: Registry, name: str) -> None:
    register_small_model(registry, name=name)
    register_small_model(registry, name="other")
    view = registry.registered_model(name)
    assert view.name == name and [v.number for v in view.versions] == [1]


def test_a_model_mlflow_does_not_hold_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound, match="nobody"):
        registry.registered_model("nobody")
