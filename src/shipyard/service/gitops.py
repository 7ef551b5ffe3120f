"""GitOps mode: every promotion and rollout step commits the model's manifests to the watched repository.

The write is a commit hook of the store's transaction, so it happens wherever the change is made (a command,
the server, the worker's rollout controller) and inside it: the commit is made before the store commits, a
failed write rolls the change back (the store is unchanged), and a failed store commit resets the repository.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.domain.entities import AuditEvent
    from shipyard.service.exports import Exports
    from shipyard.store.base import Tx
    from shipyard.store.repository import Store

ROLLOUT_STEPS = {"rollout.started", "rollout.next", "rollout.promote", "rollout.rollback", "rollout.abort"}


def attach(store: Store, service: Exports) -> None:
    """Commit manifests to ``deploy.gitops`` on every change of what serves traffic."""
    from shipyard.deploy.gitops import GitOpsRepo

    spec = service.settings.spec.deploy.gitops
    if spec is None:
        return
    repo = GitOpsRepo(service.settings.resolve(spec.repo), spec.path)

    def hook(tx: Tx) -> Callable[[], None] | None:
        changes = [event for event in tx.events if _moves_traffic(event)]
        if not changes:
            return None
        from shipyard.store.delivery import pending_deployment

        # The rollout's event names the step; else the move into production (a champion it replaces moves too).
        event = next((e for e in changes if e.action in ROLLOUT_STEPS), None) or next(
            (e for e in changes if e.details.get("to") == "production"), changes[0]
        )
        model, _, version = event.subject.partition("/")
        deployment = pending_deployment(tx.session, model)
        files: dict[str, Any] = {}
        remove: list[str] = []
        if deployment.champion is not None:
            files = service.kserve_files(deployment)
        else:
            remove = [f"{model}-inferenceservice.yaml", f"{model}-servingruntime.yaml"]
        message = f"{model} v{version}: {_step(event, deployment.challenger_weight)} (audit event {event.seq})"
        return repo.commit(files, remove, message, author=tx.actor)

    store.commit_hooks.append(hook)


def _moves_traffic(event: AuditEvent) -> bool:
    if event.action in ROLLOUT_STEPS:
        return True
    if event.action == "version.stage_changed":
        return "production" in (event.details.get("from"), event.details.get("to"))
    return False


def _step(event: AuditEvent, weight: float) -> str:
    if event.action in ("rollout.started", "rollout.next"):
        return f"rollout step {weight * 100:g}%"
    if event.action == "rollout.promote":
        return "promoted to production after the rollout"
    if event.action in ("rollout.rollback", "rollout.abort"):
        return "rolled back" if event.action == "rollout.rollback" else "rollout aborted"
    if event.details.get("to") == "production":
        return "promoted to production"
    return f"moved from production to {event.details.get('to')}"
