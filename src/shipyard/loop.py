"""The closed loop: monitor runs, alerts and their actions (retrain, rollback, webhook), and labels.

Functions over a `Shipyard` service, so the CLI, the gateway's timer and the demo share them.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import GateBlocked, InvalidSpec, NotFound, ShipyardError
from shipyard.domain.monitoring import Alert, MonitorRun
from shipyard.domain.stages import Stage
from shipyard.evidence import json_safe

if TYPE_CHECKING:
    from shipyard.domain.entities import ModelVersion
    from shipyard.labels import Ingested
    from shipyard.monitoring.profile import Profile
    from shipyard.service import Shipyard

log = logging.getLogger("shipyard.monitor")


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorOutcome:
    model: str
    version: int
    run: MonitorRun
    opened: tuple[Alert, ...]
    ongoing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "run": self.run.to_dict(),
            "opened": [a.to_dict() for a in self.opened],
            "ongoing": [a.to_dict() for a in self.ongoing],
            "resolved": [a.to_dict() for a in self.resolved],
            "actions": self.actions,
        }


def as_actor(service: Shipyard, actor: str) -> Shipyard:
    """The same project, store and registry, acting as someone else (the monitor's automated actor)."""
    from shipyard.service import Shipyard

    return Shipyard(dataclasses.replace(service.settings, actor=actor), store=service.store, registry=service.registry)


def champion(service: Shipyard, model: str) -> ModelVersion | None:
    production = [v for v in service.store.list_versions(model) if v.stage is Stage.PRODUCTION]
    return production[0] if production else None


def reference_profile(service: Shipyard, version: ModelVersion) -> Profile:
    """The profile logged with the version's training run, cached under .shipyard/cache."""
    from shipyard.monitoring.profile import load_profile
    from shipyard.pipeline import PROFILE_ARTIFACT

    folder = service.settings.state_dir / "cache" / "profiles" / f"{version.model}-{version.version}"
    path = folder / PROFILE_ARTIFACT
    if not path.is_file():
        if not version.run_id:
            raise NotFound(f"{version.subject} has no training run, so no reference profile to monitor against")
        try:
            service.registry.download_artifact(version.run_id, PROFILE_ARTIFACT, folder)
        except NotFound as exc:
            raise NotFound(
                f"{version.subject} has no reference profile ({exc.message})",
                hint="Versions from `shipyard pipeline run` or `shipyard register` carry one; register it again.",
            ) from exc
    return load_profile(path)


def labels_frame(service: Shipyard, model: str) -> Any:
    from shipyard.labels import read_labels

    return read_labels(service.settings.labels_dir, model).to_pandas()


def monitor(
    service: Shipyard,
    model: str | None = None,
    *,
    window: float | None = None,
    last: int | None = None,
    act: bool = True,
    now: datetime | None = None,
) -> list[MonitorOutcome]:
    """One monitor run per model with a champion (or the one named), alerts recorded and acted on."""
    from shipyard.monitoring.monitor import observe, read_window

    service.access.require(service.actor, "monitor", what="run the monitor")
    if last is not None and last < 1:
        raise InvalidSpec(f"--last must be at least 1, got {last}")
    if last is not None and window is not None:
        raise InvalidSpec(
            "a monitor run reads a time window or the last N predictions, not both", hint="Pass --window or --last."
        )
    names = [model] if model is not None else sorted(service.settings.spec.models)
    outcomes = []
    for name in names:
        spec = service.settings.model(name)
        version = champion(service, name)
        if version is None:
            if model is not None:
                raise NotFound(
                    f"{name} has no production version to monitor",
                    hint=f"Promote one: `shipyard promote {name} N --to production --reason TEXT`.",
                )
            continue
        try:
            profile = reference_profile(service, version)
        except NotFound as exc:
            if model is not None:
                raise
            log.warning("not monitoring %s: %s", version.subject, exc.message)  # the other models still get their run
            continue
        frame = read_window(
            service.settings.predictions_dir, name, version.version, window=window or spec.monitoring.window, last=last, now=now
        )
        evidence = service.store.evidence(name, version.version) or {}
        holdout = ((evidence.get("metrics") or {}).get("holdout") or {}).get(spec.primary_metric)
        observation = observe(
            model=name,
            version=version.version,
            spec=spec,
            profile=profile,
            window=frame,
            labels=labels_frame(service, name),
            holdout_metric=holdout,
        )
        recorded = service.store.record_monitor_run(
            actor=service.actor,
            model=name,
            version=version.version,
            window=(observation.start, observation.end),
            rows=observation.rows,
            dataset_drift=observation.dataset_drift,
            report=json_safe(observation.report()),
            readings=observation.readings,
        )
        outcome = MonitorOutcome(
            model=name,
            version=version.version,
            run=recorded.run,
            opened=recorded.opened,
            ongoing=recorded.ongoing,
            resolved=recorded.resolved,
        )
        if act:
            outcome.actions.extend(act_on(service, recorded.opened))
        outcomes.append(outcome)
    return outcomes


def act_on(service: Shipyard, alerts: tuple[Alert, ...]) -> list[dict[str, Any]]:
    """Run each newly opened alert's action once; one retrain per model however many signals fired."""
    results: list[dict[str, Any]] = []
    retrained: dict[str, int] = {}
    for alert in alerts:
        if alert.action == "none":
            continue
        spec = service.settings.model(alert.model)
        rule = next((r for r in spec.monitoring.alerts if r.signal == alert.signal and r.action == alert.action), None)
        actor = spec.monitoring.actor
        state, result = "done", {}
        try:
            if alert.action == "retrain" and alert.model in retrained:
                state, result = "skipped", {"reason": f"alert {retrained[alert.model]} retrained {alert.model} in this run"}
            elif alert.action == "retrain":
                result = retrain(as_actor(service, actor), alert.model, reason=f"alert {alert.id}: {alert.signal}")
                retrained[alert.model] = alert.id
            elif alert.action == "rollback":
                result = rollback(as_actor(service, actor), alert.model, reason=f"alert {alert.id}: {alert.signal}")
            elif alert.action == "webhook" and rule is not None and rule.url:
                from shipyard.monitoring.webhook import post

                payload = {"alert": alert.to_dict(), "project": service.settings.spec.project}
                result = post(rule.url, payload, timeout=rule.timeout, retries=rule.retries)
                state = "done" if result.get("delivered") else "failed"
        except ShipyardError as exc:
            state, result = "failed", {"error": exc.message, "hint": exc.hint or ""}
        except Exception as exc:  # an action must never lose the alert that asked for it
            log.exception("alert %s: %s failed", alert.id, alert.action)
            state, result = "failed", {"error": f"{type(exc).__name__}: {exc}"}
        recorded = service.store.record_alert_action(actor=actor, alert_id=alert.id, state=state, result=json_safe(result))
        results.append({"alert": recorded.id, "action": recorded.action, "state": state, **result})
    return results


def retrain(service: Shipyard, model: str, *, reason: str) -> dict[str, Any]:
    """The governed path again: train on the configured data plus labelled production traffic, gates, rollout."""
    spec = service.settings.model(model)
    data_path, labelled = retraining_data(service, model)
    result = service.run_pipeline(model, data_path=data_path)
    version = result.version.version
    outcome: dict[str, Any] = {"version": version, "labelled_rows": labelled, "data": str(data_path), "reason": reason}
    try:
        service.promote(model, version, Stage.STAGING, reason=f"retrained after {reason}")
        outcome["staging"] = "passed"
    except GateBlocked as exc:
        outcome["staging"] = f"blocked: {exc.message}"
        return outcome
    if not spec.monitoring.rollout:
        return outcome
    try:
        rollout = service.start_rollout(model, version)
        outcome["rollout"] = rollout.id
    except GateBlocked as exc:
        outcome["rollout"] = f"waiting: {exc.message}"
    return outcome


def retraining_data(service: Shipyard, model: str) -> tuple[Path, int]:
    """The configured data plus every logged prediction that has a label, as one Parquet file."""
    import pandas as pd

    from shipyard.data import load_dataset
    from shipyard.predlog import FEATURE_PREFIX, read_log

    spec = service.settings.model(model)
    base = load_dataset(service.settings.resolve(spec.data.path)).frame
    labels = labels_frame(service, model)
    recent = pd.DataFrame()
    if len(labels):
        logged = read_log(service.settings.predictions_dir, model=model).to_pandas()
        logged = logged[logged["status"] == 200].drop_duplicates("request_id", keep="first")
        joined = logged.merge(labels[["request_id", "label"]], on="request_id", how="inner")
        columns = {c.removeprefix(FEATURE_PREFIX): joined[c] for c in joined.columns if c.startswith(FEATURE_PREFIX)}
        recent = pd.DataFrame(columns)
        recent = recent[[c for c in recent.columns if c in base.columns]]
        recent[spec.data.target] = joined["label"].astype(base[spec.data.target].dtype).to_numpy()
        if spec.data.time_column:
            # Logged traffic is the most recent population, so a time-ordered holdout judges the model on it.
            stamps = joined["received_at"].dt.tz_convert(None).to_numpy()
            recent[spec.data.time_column] = pd.Series(stamps).astype(base[spec.data.time_column].dtype).to_numpy()
        if spec.data.id_column:
            recent[spec.data.id_column] = joined["request_id"].to_numpy()
    combined = pd.concat([base, recent], ignore_index=True) if len(recent) else base
    # Beside the configured data, so the policy's approved data sources judge it like any training data.
    folder = service.settings.resolve(spec.data.path).parent / "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.parquet"
    combined.to_parquet(path, index=False)
    return path, len(recent)


def rollback(service: Shipyard, model: str, *, reason: str) -> dict[str, Any]:
    """Abort the running rollout, or else put the previous champion back through its production gate."""
    active = [r for r in service.store.rollouts(model) if r.active]
    if active:
        rollout = service.store.advance_rollout(actor=service.actor, model=model, action="abort", details={"reason": reason})
        return {"aborted_rollout": rollout.id, "champion": rollout.champion}
    current = champion(service, model)
    previous = [
        change
        for change in reversed(service.store.stage_history(model))
        if change.from_stage is Stage.PRODUCTION
        and change.to_stage is Stage.ARCHIVED
        and (current is None or change.version != current.version)
    ]
    if not previous:
        raise NotFound(f"{model} has no earlier champion to return to", hint="Roll back by promoting a version by hand.")
    version = previous[0].version
    service.promote(model, version, Stage.PRODUCTION, reason=f"rollback: {reason}")
    return {"restored": version, "replaced": current.version if current else None}


def ingest_labels(
    service: Shipyard, path: Path, *, model: str, entity_key: str | None = None, label_column: str | None = None
) -> Ingested:
    from shipyard.labels import ingest

    spec = service.settings.model(model)
    service.access.require(service.actor, "monitor", what=f"ingest labels for {model}")
    result = ingest(
        path,
        model=model,
        log_root=service.settings.predictions_dir,
        labels_root=service.settings.labels_dir,
        entity_key=entity_key or spec.data.id_column,
        label_column=label_column,
    )
    with service.store.write(service.actor) as tx:
        tx.audit("labels.ingested", model, result.to_dict())
    return result
