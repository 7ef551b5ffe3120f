"""What MLflow holds for a registered model: its versions, their tags and the aliases.

Shipyard's store is the source of truth and MLflow's tags and aliases mirror it. This is
the mirror as it is, for a reconcile step to compare with the store: versions the store
does not know (registered by a plain MLflow client, or left by a registration that failed
half way) are orphans, tagged so and never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.domain.stages import STAGE_ALIASES

if TYPE_CHECKING:
    from mlflow import MlflowClient

STAGE_TAG = "shipyard.stage"
ORPHANED = "orphaned"  # the stage tag of a version MLflow holds and the store does not know
MANAGED_ALIASES = frozenset({*STAGE_ALIASES, "challenger"})


@dataclass(frozen=True, slots=True, kw_only=True)
class MlflowVersion:
    number: int
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def stage(self) -> str | None:
        """The stage Shipyard last mirrored onto it (None: never mirrored)."""
        return self.tags.get(STAGE_TAG)


@dataclass(frozen=True, slots=True, kw_only=True)
class MlflowModel:
    name: str
    versions: tuple[MlflowVersion, ...]
    aliases: dict[str, int]

    def unknown_to(self, known_versions: Iterable[int]) -> list[MlflowVersion]:
        known = set(known_versions)
        return [v for v in self.versions if v.number not in known]


def to_entity(name: str, versions: Iterable[Any], aliases: Mapping[str, str]) -> MlflowModel:
    """MLflow's ModelVersion objects and alias map, as one entity."""
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(int(number), []).append(alias)
    return MlflowModel(
        name=name,
        versions=tuple(
            sorted(
                (
                    MlflowVersion(
                        number=int(mv.version),
                        run_id=mv.run_id or None,
                        source=str(mv.source),
                        tags=dict(mv.tags or {}),
                        aliases=tuple(sorted(by_version.get(int(mv.version), []))),
                    )
                    for mv in versions
                ),
                key=lambda v: v.number,
            )
        ),
        aliases={alias: int(number) for alias, number in aliases.items()},
    )


def versions_of(client: MlflowClient, name: str) -> list[Any]:
    """Every version of ``name``, page by page. The name is data: MLflow's filter language has no
    escape for a quote, so it is quoted with the kind it lacks, and a name holding both kinds is
    matched here instead of in the filter."""
    if "'" not in name:
        query: str | None = f"name = '{name}'"
    elif '"' not in name:
        query = f'name = "{name}"'
    else:
        query = None
    found: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(query, max_results=1000, page_token=token)
        found += [mv for mv in page if mv.name == name]
        token = page.token
        if not token:
            return found
