"""The Shipyard service: one object opened on a project.

The CLI, the HTTP API and the UI all call this; no face holds a business rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shipyard.config import Settings, load_settings
from shipyard.domain.entities import AuditEvent, AuditVerification, Model, ModelVersion, Promotion, StageChange
from shipyard.domain.errors import InvalidSpec, ShipyardError
from shipyard.domain.stages import Stage
from shipyard.store.repository import Store

if TYPE_CHECKING:
    from shipyard.pipeline import PipelineResult, StepReporter
    from shipyard.registry import Registry

log = logging.getLogger("shipyard")


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotionOutcome:
    promotion: Promotion
    mirrored: bool
    mirror_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.promotion.to_dict(), "mirrored": self.mirrored, "mirror_error": self.mirror_error}


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionDetail:
    version: ModelVersion
    history: list[StageChange]
    run: dict[str, Any] | None = None
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.version.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "run": self.run,
            "aliases": self.aliases,
        }


class Shipyard:
    """Everything a user can do with a project, in one place."""

    def __init__(self, settings: Settings, *, store: Store | None = None, registry: Registry | None = None) -> None:
        self.settings = settings
        self._store = store
        self._registry = registry

    @classmethod
    def open(cls, project: Path | None = None, *, actor: str | None = None, env: dict[str, str] | None = None) -> Shipyard:
        return cls(load_settings(project, actor=actor, env=env))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Shipyard:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        return self.settings.actor

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.settings.store_url)
        return self._store

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from shipyard.registry import Registry

            uri = self.settings.tracking_uri
            artifacts = (
                self.settings.state_dir / "artifacts" if uri.startswith(("sqlite:", "file:")) or "://" not in uri else None
            )
            self._registry = Registry(uri, self.settings.registry_uri, artifact_root=artifacts)
        return self._registry

    # -- training ---------------------------------------------------------------

    def run_pipeline(self, model: str, *, progress: StepReporter | None = None) -> PipelineResult:
        from shipyard import pipeline

        self.settings.model(model)  # unknown model → NotFound before any heavy import
        result = pipeline.run(self.settings, self.store, self.registry, model, progress=progress or pipeline.no_progress)
        self._mirror(model, changed=[result.version.version])
        return result

    # -- reading ------------------------------------------------------------------

    def models(self) -> list[Model]:
        return self.store.list_models()

    def versions(self, model: str | None = None) -> list[ModelVersion]:
        return self.store.list_versions(model)

    def version(self, model: str, version: int | None = None) -> ModelVersion:
        if version is not None:
            return self.store.get_version(model, version)
        versions = self.store.list_versions(model)
        if not versions:
            raise InvalidSpec(f"model {model!r} has no versions yet", hint=f"Run `shipyard pipeline run {model}`.")
        return versions[-1]

    def describe(self, model: str, version: int | None = None, *, with_run: bool = True) -> VersionDetail:
        found = self.version(model, version)
        run = None
        aliases: list[str] = []
        if with_run:
            try:
                run = self.registry.run_summary(found.run_id) if found.run_id else None
                aliases = sorted(a for a, v in self.registry.aliases(model).items() if v == found.version)
            except ShipyardError as exc:
                run = {"error": exc.message}
        return VersionDetail(version=found, history=self.store.stage_history(model, found.version), run=run, aliases=aliases)

    # -- changing stage ---------------------------------------------------------

    def promote(self, model: str, version: int, to: Stage | str, *, reason: str) -> PromotionOutcome:
        target = Stage.parse(to) if isinstance(to, str) else to
        if not reason or not reason.strip():
            raise InvalidSpec("a promotion needs a reason", hint="Pass --reason TEXT: it is kept in the audit log.")
        current = self.store.get_version(model, version)
        self._check_gate(current, target)
        promotion = self.store.transition(actor=self.actor, model=model, version=version, to=target, reason=reason.strip())
        changed = [promotion.version.version, *(v.version for v in promotion.archived)]
        error = self._mirror(model, changed=changed)
        return PromotionOutcome(promotion=promotion, mirrored=error is None, mirror_error=error)

    def _check_gate(self, version: ModelVersion, target: Stage) -> None:
        """Where governance plugs in: raise GateBlocked to refuse a move.

        The foundation has no gates yet, so every legal move passes; the stage
        machine in the store still refuses illegal ones.
        """

    def _mirror(self, model: str, changed: list[int] | None = None) -> str | None:
        """Copy stages into MLflow tags and aliases. The store is already committed, so a
        failure here is reported, not raised; `reconcile` repairs it."""
        try:
            stages = {v.version: v.stage for v in self.store.list_versions(model)}
            self.registry.mirror(model, stages, changed)
        except ShipyardError as exc:
            log.warning("MLflow mirror of %s is behind the store: %s", model, exc.message)
            return exc.message
        return None

    def reconcile(self, model: str | None = None) -> list[str]:
        """Repair the MLflow mirror from the store; return the models repaired."""
        names = [model] if model else [m.name for m in self.store.list_models()]
        for name in names:
            stages = {v.version: v.stage for v in self.store.list_versions(name)}
            self.registry.mirror(name, stages)
        return names

    # -- audit ----------------------------------------------------------------------

    def audit_log(self, model: str | None = None) -> list[AuditEvent]:
        if model is not None:
            self.store.get_model(model)
        return self.store.audit_events(model=model)

    def audit_verify(self) -> AuditVerification:
        return self.store.verify_audit()

    def audit_export(self, out: IO[str], *, fmt: str = "jsonl") -> int:
        if fmt != "jsonl":
            raise InvalidSpec(f"unknown export format {fmt!r}; expected jsonl")
        count = 0
        for line in _jsonl(self.store.audit_events()):
            out.write(line)
            count += 1
        return count


def _jsonl(events: list[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event.to_dict(), sort_keys=True, default=str) + "\n"
