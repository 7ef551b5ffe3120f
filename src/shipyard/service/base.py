"""The service's foundation: one project's settings, store, registry, and who is acting.

Every change goes through ``authorize`` (refusals are audited) and, once the store has
committed, ``mirror`` copies stages into MLflow.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Self

from shipyard.config import Settings, load_settings
from shipyard.domain.errors import InvalidSpec, PermissionDenied, ShipyardError
from shipyard.domain.identity import Principal
from shipyard.policy.access import Access, principals_drift, seed_roles, service_principals
from shipyard.store.repository import Store

if TYPE_CHECKING:
    from shipyard.registry import Registry

log = logging.getLogger("shipyard")
SERVER_ACTOR = "shipyard.server"  # who the server's own changes (bootstrap, seeding principals) are recorded as


class ServiceBase:
    """A project opened for one actor."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        registry: Registry | None = None,
        noted: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._registry = registry
        self._noted = noted if noted is not None else set()  # warnings already logged, shared with as_actor copies

    @classmethod
    def open(cls, project: Path | None = None, *, actor: str | None = None, env: dict[str, str] | None = None) -> Self:
        return cls(load_settings(project, actor=actor, env=env))

    @classmethod
    def open_hosted(cls, project: Path | None = None, *, env: dict[str, str] | None = None) -> Self:
        """The project as its control-plane server opens it; only a team-mode project has one."""
        settings = load_settings(project, actor=SERVER_ACTOR, env=env)
        if settings.spec.server is None:
            raise InvalidSpec(
                f"{settings.root / 'shipyard.yaml'} declares no server, so there is nothing to serve",
                hint="Team mode: add `server: {url: http://127.0.0.1:8700}` (the address clients use) to shipyard.yaml.",
            )
        return cls(dataclasses.replace(settings, hosted=True))

    def as_actor(self, actor: str) -> Self:
        """The same project, store and registry, acting as someone else (an automated service principal)."""
        settings = dataclasses.replace(self.settings, actor=actor)
        return type(self)(settings, store=self.store, registry=self.registry, noted=self._noted)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        return self.settings.actor

    @property
    def access(self) -> Access:
        """Who holds which roles: shipyard.yaml's principals, or in team mode the store's (read on every use)."""
        if self.settings.team:
            return Access(self.team_roles(), team=True)
        return Access(self.settings.spec.principals)

    @property
    def migration_access(self) -> Access:
        """Who may migrate the store. In team mode the roles are in the store, which cannot be read before it
        is migrated: there whoever holds the store's credentials (the server's operator) may."""
        return Access(None) if self.settings.team else Access(self.settings.spec.principals)

    def team_roles(self) -> dict[str, tuple[str, ...]]:
        """Team mode's principals and their roles, from the store (see ``team_principals``)."""
        return {p.name: p.roles for p in self.team_principals()}

    def team_principals(self) -> list[Principal]:
        """Team mode's principals, from the store.

        The first time a team-mode store has no principals, they are seeded from shipyard.yaml's principals
        (one `principal.seeded` event), together with the service principals automated work runs as — the
        worker's actor and each model's monitoring actor — with the roles scientist and deployer (retrain,
        roll out, roll back; never approve) unless shipyard.yaml declares them. From then on the store
        decides: editing shipyard.yaml changes nothing, and a difference between the two is logged once.
        """
        principals = self.store.principals()
        declared = self.settings.spec.principals
        service = self._service_principals()
        if not principals:
            seed = seed_roles(declared, service)
            self.store.seed_principals(actor=self.actor, principals=seed, source="shipyard.yaml")
            principals = self.store.principals()
        drift = principals_drift(declared, {p.name: p.roles for p in principals}, service)
        noted = "principals_drift:" + "|".join(drift)
        if drift and noted not in self._noted:
            self._noted.add(noted)
            log.warning(
                "shipyard.yaml's principals differ from the server's, and only the server's count: %s. "
                "Change roles with `shipyard principals set NAME --role ROLE` (then edit shipyard.yaml to match, "
                "or remove its principals key).",
                "; ".join(drift),
            )
        return principals

    def _service_principals(self) -> dict[str, tuple[str, ...]]:
        spec = self.settings.spec
        return service_principals(spec.worker.actor, (model.monitoring.actor for model in spec.models.values()))

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
            cache = self.settings.state_dir / "cache"
            cold = self.settings.resolve(self.settings.spec.retention.cold_location)
            self._registry = Registry(uri, self.settings.registry_uri, artifact_root=artifacts, cache_dir=cache, cold_dir=cold)
        return self._registry

    # -- authorization ---------------------------------------------------------------

    def authorize(self, action: str, *, what: str, subject: str, change: bool = True) -> frozenset[str]:
        """The actor's roles when they may perform ``action``; a refusal is audited, then raised.

        ``change=False``: a read that needs a role (who holds which tokens); in team mode it may run here too.
        """
        if change:
            self._only_through_server(what)
        try:
            return self.access.require(self.actor, action, what=what)
        except PermissionDenied as exc:
            self.audit_denial(action.partition(":")[0], subject, exc, asked=what)
            raise

    def authorize_role(self, role: str, *, what: str, subject: str, action: str) -> frozenset[str]:
        """Like ``authorize``, for a role a policy names (approvals)."""
        self._only_through_server(what)
        try:
            return self.access.require_role(self.actor, role, what=what)
        except PermissionDenied as exc:
            self.audit_denial(action, subject, exc, asked=what)
            raise

    def _only_through_server(self, what: str) -> None:
        """In team mode only the server changes the shared store: a local command is sent there instead."""
        if self.settings.team and not self.settings.hosted:
            url = self.settings.server_url
            raise PermissionDenied(
                f"this project is in team mode: only its server ({url}) changes its store, so this command may not {what} here",
                hint=f"Send it through the server: export SHIPYARD_URL={url} and a token (SHIPYARD_TOKEN, or "
                f"`shipyard login {url}` once).",
            )

    def audit_denial(self, action: str, subject: str, refusal: ShipyardError, *, asked: str) -> None:
        """Leave a `<action>.denied` event: who asked for what, and why it was refused.

        A store that cannot record it must not hide the refusal itself, so that failure is logged, not raised.
        """
        details = {"asked": asked, "reason": refusal.message, "roles": sorted(self.access.roles(self.actor))}
        try:
            self.store.record_denial(actor=self.actor, action=action, subject=subject, details=details)
        except ShipyardError as exc:
            log.warning("could not audit the refusal of %s to %s: %s", self.actor, asked, exc.message)

    # -- coordination ---------------------------------------------------------------------

    def hold_lease(self, name: str, *, holder: str, ttl_seconds: float) -> bool:
        """Take or renew a named lease in the store (exactly one holder at a time); False while another holds it."""
        held: bool = self.store.acquire_lease(name=name, holder=holder, ttl_seconds=ttl_seconds)
        return held

    def release_lease(self, name: str, *, holder: str) -> None:
        self.store.release_lease(name=name, holder=holder)

    # -- the MLflow mirror ---------------------------------------------------------------

    def mirror(self, model: str, changed: list[int] | None = None) -> str | None:
        """Copy stages into MLflow tags and aliases. The store is already committed (and has marked
        the mirror pending in the same transaction), so a failure here is reported, not raised;
        `shipyard models reconcile` repairs it."""
        try:
            pending = [p.seq for p in self.store.mirror_pending(model) if p.kind == "stages" and p.seq is not None]
            stages = {v.version: v.stage for v in self.store.list_versions(model)}
            self.registry.mirror(model, stages, changed)
        except ShipyardError as exc:
            log.warning("MLflow mirror of %s is behind the store: %s", model, exc.message)
            return exc.message
        # Only what was pending when the stages were read: a change committed meanwhile stays pending.
        self.store.clear_mirror_pending(model, seq=max(pending) if pending else None)
        return None
