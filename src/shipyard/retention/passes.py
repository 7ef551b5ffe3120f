"""A retention pass: plan every action (changing nothing), or carry them out, each audited.

What is never touched: a model's champion, its previous champion (the rollback target), a version
in a rollout, a version under legal hold, and the audit log (retention has no action on it; lineage
events are kept as it is). A rule naming such a version is refused before anything is planned.
A prediction log in an object store (deploy.shared_path: s3://…) is not rewritten: its files cannot
be renamed there, so its lifecycle is the bucket's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import InvalidSpec
from shipyard.domain.retention import RetentionAction, RetentionOutcome, RetentionPlan
from shipyard.domain.stages import Stage
from shipyard.location import require_local
from shipyard.retention import logfiles
from shipyard.retention.journal import Journal

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.registry import Registry
    from shipyard.store.repository import Store

log = logging.getLogger("shipyard.retention")


def protected(store: Store) -> dict[tuple[str, int], str]:
    """Versions retention never touches, each with why."""
    why: dict[tuple[str, int], str] = {}
    for model in store.list_models():
        name = model.name
        versions = store.list_versions(name)
        champion = next((v.version for v in versions if v.stage is Stage.PRODUCTION), None)
        if champion is not None:
            why[(name, champion)] = "the champion"
        into_production = [c for c in store.stage_history(name) if c.to_stage is Stage.PRODUCTION and c.version != champion]
        if into_production:
            previous = max(into_production, key=lambda c: c.at).version
            why.setdefault((name, previous), "the previous champion (the rollback target)")
        for rollout in store.rollouts(name):
            if rollout.active:
                why.setdefault((name, rollout.version), "in a rollout")
    for hold in store.holds():
        why[(hold.model, hold.version)] = f"under legal hold ({hold.reason})"
    return why


def check_rules(settings: Settings, keep: dict[tuple[str, int], str]) -> None:
    """Refuse a rule that names a version retention may not touch, naming the rule."""
    for rule in settings.spec.retention.artifacts:
        if rule.versions is None:
            continue
        if rule.model is None:
            raise InvalidSpec(
                f"retention rule {rule.name!r} lists versions but no model; expected `model: NAME` beside `versions`"
            )
        for number in rule.versions:
            reason = keep.get((rule.model, number))
            if reason is not None:
                verb = "delete the files of" if rule.action == "delete" else "move the files of"
                raise InvalidSpec(
                    f"retention rule {rule.name!r} would {verb} {rule.model}/{number}, which is {reason}",
                    hint=f"Remove {number} from the rule's versions in shipyard.yaml (retention.artifacts), "
                    "or lift the hold first with `shipyard hold remove`.",
                )


def _entered(store: Store, model: str, version: int, stage: Stage) -> datetime | None:
    changes = [c for c in store.stage_history(model, version) if c.to_stage is stage]
    return max((c.at for c in changes), default=None)


def plan(settings: Settings, store: Store, registry: Registry, now: datetime) -> RetentionPlan:
    from shipyard.registry.tracking import local_path

    spec = settings.spec.retention
    keep = protected(store)
    check_rules(settings, keep)
    log_root = settings.predictions_dir.local
    kept: list[dict[str, Any]] = []
    if log_root is not None:
        actions = logfiles.plan(log_root, spec.predictions, now)
    else:
        # The configuration refuses these settings with an object store; only compact_after's default gets here.
        actions = []
        kept.append(
            {
                "subject": f"prediction log in {settings.predictions_dir}",
                "rule": "retention.predictions",
                "why": "an object store cannot rewrite files in place; its bucket's lifecycle rules expire old objects",
            }
        )
    claimed: set[tuple[str, int]] = set()
    for rule in spec.artifacts:
        stages = {Stage.parse(s) for s in rule.stages}
        for version in store.list_versions(rule.model):
            key = (version.model, version.version)
            if (
                version.stage not in stages
                or key in claimed
                or (rule.versions is not None and version.version not in rule.versions)
            ):
                continue
            entered = _entered(store, version.model, version.version, version.stage)
            if entered is None or (now - entered).total_seconds() < rule.after:
                continue
            if key in keep:
                kept.append({"subject": version.subject, "rule": f"retention.artifacts.{rule.name}", "why": keep[key]})
                continue
            folder = local_path(registry.located(version.source))
            if folder is None or not folder.exists():
                continue  # already cold or deleted, or not a local folder retention can move
            if rule.action == "cold" and registry.cold_archive(version.source) is None:
                kept.append({"subject": version.subject, "rule": f"retention.artifacts.{rule.name}",
                             "why": "its files are outside the project's artifact root"})  # fmt: skip
                continue
            claimed.add(key)
            days = rule.after / 86400
            actions.append(
                RetentionAction(
                    kind="cold_artifacts" if rule.action == "cold" else "delete_artifacts",
                    subject=version.subject,
                    rule=f"retention.artifacts.{rule.name}",
                    reason=f"{version.stage.value} for more than {days:g} days",
                    bytes_freed=_bytes(folder),
                    model=version.model,
                    version=version.version,
                )
            )
    if spec.runs.delete_unregistered_after is not None:
        from shipyard.registry.cleanup import stray_runs

        cutoff_ms = int((now.timestamp() - spec.runs.delete_unregistered_after) * 1000)
        registered = {v.run_id for v in store.list_versions() if v.run_id}
        days = spec.runs.delete_unregistered_after / 86400
        for run in stray_runs(registry, registered=registered, started_before_ms=cutoff_ms):
            actions.append(
                RetentionAction(
                    kind="delete_run",
                    subject=f"run:{run.run_id}",
                    rule="retention.runs.delete_unregistered_after",
                    reason=f"no version registered from it, older than {days:g} days, in experiment {run.experiment!r}",
                    bytes_freed=run.bytes,
                    run_id=run.run_id,
                )
            )
    return RetentionPlan(actions=tuple(actions), kept=tuple(kept))


def _bytes(path: Path) -> int:
    from shipyard import swap

    return swap.size(path)


def journal_path(settings: Settings) -> Path:
    return settings.state_dir / "retention" / "journal.jsonl"


def apply(
    settings: Settings,
    store: Store,
    registry: Registry,
    now: datetime,
    *,
    record: Callable[[RetentionAction, dict[str, Any]], None],
) -> RetentionOutcome:
    """Carry the plan out. Safe to kill at any moment: run again, it finishes what was half done and
    ends where an uninterrupted pass would have, with nothing gone that the plan did not name.

    ``record`` audits one action carried out (the service writes it; nothing else changes the store).
    """
    from shipyard.registry import cold

    root = settings.predictions_dir.local
    for folder in logfiles.recover(root) if root is not None else ():
        log.info("retention: finished an interrupted rewrite of %s", folder)
    journal = Journal(journal_path(settings))
    done: list[RetentionAction] = []
    for action, earlier in journal.unfinished():
        if _still_due(settings, store, registry, action):
            continue  # the plan below names it again
        if not _audited(store, action, earlier):
            record(action, {**action.to_dict(), "pass": earlier, "recovered": True})
            done.append(action)
        journal.done(action, earlier)
    pass_id = uuid.uuid4().hex
    planned = plan(settings, store, registry, now)
    if any(a.kind == "cold_artifacts" for a in planned.actions):
        cold.check_writable(settings.resolve(settings.spec.retention.cold_location))
    failed: list[dict[str, Any]] = []
    for action in planned.actions:
        journal.start(action, pass_id)
        try:
            details = _carry_out(settings, store, registry, action)
        except (OSError, ValueError) as exc:
            # One partition or folder that cannot be rewritten must not stop the others; it stays as it was.
            log.warning("retention: %s of %s failed: %s", action.kind, action.subject, exc)
            failed.append({"subject": action.subject, "kind": action.kind, "error": str(exc)})
            continue
        record(action, {**action.to_dict(), **details, "pass": pass_id})
        journal.done(action, pass_id)
        done.append(action)
    if not failed:
        journal.clear()
    return RetentionOutcome(done=tuple(done), failed=tuple(failed))


def _audited(store: Store, action: RetentionAction, pass_id: str) -> bool:
    events = store.audit_events(action=f"retention.{action.kind}")
    return any(e.subject == action.subject and e.details.get("pass") == pass_id for e in events)


def _still_due(settings: Settings, store: Store, registry: Registry, action: RetentionAction) -> bool:
    from shipyard.registry.tracking import local_path

    if action.kind in logfiles.KINDS:
        root = settings.predictions_dir.local
        return root is not None and logfiles.still_due(root, action)
    if action.kind == "delete_run":
        from shipyard.registry.cleanup import run_exists

        return action.run_id is not None and run_exists(registry, action.run_id)
    from shipyard import swap

    source = _source(store, action)
    folder = local_path(registry.located(source)) if source else None
    if folder is None:
        return False
    swap.recover(folder.parent)  # a removal killed between its rename and its delete
    return folder.exists()


def _source(store: Store, action: RetentionAction) -> str | None:
    if action.model is None or action.version is None:
        return None
    return store.get_version(action.model, action.version).source


def _carry_out(settings: Settings, store: Store, registry: Registry, action: RetentionAction) -> dict[str, Any]:
    from shipyard import swap
    from shipyard.registry import cold
    from shipyard.registry.tracking import local_path

    if action.kind in logfiles.KINDS:
        root = require_local(settings.predictions_dir, "rewriting the prediction log", "retention.predictions")
        return logfiles.apply(root, action)
    if action.kind == "delete_run":
        from shipyard.registry.cleanup import delete_run

        if action.run_id is None:
            raise ValueError(f"{action.subject} names no run")
        return {"deleted": delete_run(registry, action.run_id)}
    source = _source(store, action)
    folder = local_path(registry.located(source)) if source else None
    if folder is None:
        raise ValueError(f"{action.subject} has no local model folder")
    swap.recover(folder.parent)
    if action.kind == "delete_artifacts":
        if folder.exists():
            swap.remove(folder)
        return {}
    archive = registry.cold_archive(source or "")
    if archive is None:
        raise ValueError(f"{action.subject}'s files are outside the project's artifact root")
    where = archive.relative_to(settings.root).as_posix() if archive.is_relative_to(settings.root) else str(archive)
    return {**cold.move_to_cold(folder, archive), "archive": where}
