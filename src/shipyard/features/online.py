"""Online feature values for a batch of entity keys: one `get_online_features` call, its failures as Shipyard's errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import BackendUnavailable
from shipyard.features.repo import FeatureSource, describe, open_store, service, service_features, unreachable

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    columns: dict[str, list[Any]]  # each service feature, one value a row (None where the store has none)
    missing: list[int]  # rows whose entity the online store does not know (every feature None)


class OnlineFeatures:
    """A feature service's online store, opened once (Feast reads its registry then) and asked once per batch."""

    def __init__(self, source: FeatureSource) -> None:
        self.source = source
        self._store: FeatureStore = open_store(source)
        self._service: FeatureService = service(self._store, source)
        facts = describe(self._store, source)
        self.features, self.join_keys = service_features(facts)
        self.online_store: str = facts["online_store"]
        self.project: str = facts["project"]
        self.key_types: dict[str, str] = {}  # join key -> Feast value type name (STRING, INT64, ...)
        for view in facts["feature_views"]:
            for entity in view["entities"]:
                found = self._store.get_entity(entity)
                self.key_types[found.join_key] = found.value_type.name

    def fetch(self, keys: Mapping[str, Sequence[Any]]) -> Fetched:
        """The service's features for each row of entity keys (column-wise, all of equal length)."""
        rows = len(next(iter(keys.values()))) if keys else 0
        if rows == 0:
            return Fetched(columns={name: [] for name in self.features}, missing=[])
        entity_rows = [{key: keys[key][i] for key in self.join_keys} for i in range(rows)]
        try:
            answer = self._store.get_online_features(features=self._service, entity_rows=entity_rows).to_dict()
        except Exception as exc:
            if unreachable(exc):
                raise BackendUnavailable(
                    f"the {self.online_store} online store of Feast project {self.project!r} cannot be reached: {exc}",
                    hint="Start the online store, or point online_store in feature_store.yaml at a reachable one.",
                ) from exc
            raise
        columns = {name: list(answer[name]) for name in self.features}
        missing = [i for i in range(rows) if all(columns[name][i] is None for name in self.features)]
        return Fetched(columns=columns, missing=missing)
