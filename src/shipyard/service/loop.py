"""The closed loop: monitor runs, alerts and their actions (retrain, rollback, webhook), and labels.

Automated actions go through the same service methods, with the same authorization, as a
person: each acts as the model's configured monitoring principal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.documents import json_safe
from shipyard.domain.errors import GateBlocked, InvalidSpec, NotFound, ShipyardError
from shipyard.domain.monitoring import Alert, MonitorRun
from shipyard.domain.stages import Stage
from shipyard.service.delivery import Delivery

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.domain.entities import ModelVersion
    from shipyard.labels import Ingested
    from shipyard.monitoring.profile import Profile

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainingData:
    path: Path
    labelled_rows: int
    fingerprint: str


class Loop(Delivery):
    # -- monitor runs ---------------------------------------------------------------------

    def monitor(
        self,
        model: str | None = None,
        *,
        window: float | None = None,
        last: int | None = None,
        act: bool = True,
        now: datetime | None = None,
    ) -> list[MonitorOutcome]:
        """One monitor run per model with a champion (or the one named): alerts recorded and acted on."""
        if last is not None and last < 1:
            raise InvalidSpec(f"--last must be at least 1, got {last}")
        if last is not None and window is not None:
            raise InvalidSpec(
                "a monitor run reads a time window or the last N predictions, not both", hint="Pass --window or --last."
            )
        self.authorize("monitor", what="run the monitor", subject=model or "*")
        names = [model] if model is not None else sorted(self.settings.spec.models)
        outcomes = []
        for name in names:
            outcome = self._monitor_one(name, window=window, last=last, now=now, named=model is not None)
            if outcome is None:
                continue
            if act:
                outcome.actions.extend(self.act_on(outcome.opened))
            outcomes.append(outcome)
        return outcomes

    def _monitor_one(
        self, name: str, *, window: float | None, last: int | None, now: datetime | None, named: bool
    ) -> MonitorOutcome | None:
        from shipyard.monitoring.monitor import observe, read_window

        spec = self.settings.model(name)
        version = self.champion(name)
        if version is None:
            if named:
                raise NotFound(
                    f"{name} has no production version to monitor",
                    hint=f"Promote one: `shipyard promote {name} N --to production --reason TEXT`.",
                )
            return None
        try:
            profile = self.reference_profile(version)
        except NotFound as exc:
            if named:
                raise
            log.warning("not monitoring %s: %s", version.subject, exc.message)  # the other models still get their run
            return None
        frame = read_window(
            self.settings.predictions_dir, name, version.version, window=window or spec.monitoring.window, last=last, now=now
        )
        evidence = self.store.evidence(name, version.version) or {}
        holdout = ((evidence.get("metrics") or {}).get("holdout") or {}).get(spec.metric(evidence.get("task")))
        task = str(evidence.get("task") or spec.task or "binary")
        observation = observe(
            task=task,
            classes=evidence.get("classes"),
            model=name,
            version=version.version,
            spec=spec,
            profile=profile,
            window=frame,
            labels=self._labels_frame(name),
            holdout_metric=holdout,
        )
        report = observation.report()
        if spec.data.feast is not None:  # the values served against the feature store's as of each prediction
            from shipyard.checks import skew

            served = frame.frame[frame.frame["status"] == 200]
            report["feature_skew"] = skew.live(self.settings.root, spec.data.feast, served, seed=spec.data.seed)
        recorded = self.store.record_monitor_run(
            actor=self.actor,
            model=name,
            version=version.version,
            window=(observation.start, observation.end),
            rows=observation.rows,
            dataset_drift=observation.dataset_drift,
            report=json_safe(report),
            readings=observation.readings,
        )
        return MonitorOutcome(
            model=name,
            version=version.version,
            run=recorded.run,
            opened=recorded.opened,
            ongoing=recorded.ongoing,
            resolved=recorded.resolved,
        )

    def reference_profile(self, version: ModelVersion) -> Profile:
        """The profile logged with the version's training run, cached under .shipyard/cache."""
        from shipyard.monitoring.profile import load_profile
        from shipyard.pipeline import PROFILE_ARTIFACT

        folder = self.settings.state_dir / "cache" / "profiles" / f"{version.model}-{version.version}"
        path = folder / PROFILE_ARTIFACT
        if not path.is_file():
            if not version.run_id:
                raise NotFound(f"{version.subject} has no training run, so no reference profile to monitor against")
            try:
                self.registry.download_artifact(version.run_id, PROFILE_ARTIFACT, folder)
            except NotFound as exc:
                raise NotFound(
                    f"{version.subject} has no reference profile ({exc.message})",
                    hint="Versions from `shipyard pipeline run` or `shipyard register` carry one; register it again.",
                ) from exc
        return load_profile(path)

    def monitor_runs(self, model: str, *, limit: int = 20) -> list[MonitorRun]:
        """A model's latest monitor runs, newest first."""
        return self.store.monitor_runs(model, limit=limit)

    def alerts(self, model: str | None = None, *, state: str | None = None) -> list[Alert]:
        if model is not None:
            self.store.get_model(model)
        return self.store.alerts(model=model, state=state)

    # -- alert actions ----------------------------------------------------------------------

    def act_on(self, alerts: tuple[Alert, ...]) -> list[dict[str, Any]]:
        """Run each newly opened alert's action once, as the model's monitoring principal; one retrain per
        model however many signals fired."""
        results: list[dict[str, Any]] = []
        retrained: dict[str, int] = {}
        for alert in alerts:
            if alert.action == "none":
                continue
            spec = self.settings.model(alert.model)
            rule = next((r for r in spec.monitoring.alerts if r.signal == alert.signal and r.action == alert.action), None)
            robot = self.as_actor(spec.monitoring.actor)
            reason = f"alert {alert.id}: {alert.signal}"
            state, result = "done", {}
            try:
                if alert.action == "retrain" and alert.model in retrained:
                    state, result = "skipped", {"reason": f"alert {retrained[alert.model]} retrained {alert.model} in this run"}
                elif alert.action == "retrain":
                    state, result = robot.retrain(alert.model, reason=reason)
                    retrained[alert.model] = alert.id
                elif alert.action == "rollback":
                    result = robot.rollback(alert.model, reason=reason)
                elif alert.action == "webhook" and rule is not None and rule.url:
                    from shipyard.monitoring.webhook import post

                    payload = {"alert": alert.to_dict(), "project": self.settings.spec.project}
                    result = post(rule.url, payload, timeout=rule.timeout, retries=rule.retries)
                    state = "done" if result.get("delivered") else "failed"
            except ShipyardError as exc:
                state, result = "failed", {"error": exc.message, "hint": exc.hint or ""}
            except Exception as exc:  # an action must never lose the alert that asked for it
                log.exception("alert %s: %s failed", alert.id, alert.action)
                state, result = "failed", {"error": f"{type(exc).__name__}: {exc}"}
            recorded = self.store.record_alert_action(actor=robot.actor, alert_id=alert.id, state=state, result=json_safe(result))
            results.append({"alert": recorded.id, "action": recorded.action, "state": state, **result})
        return results

    def retrain(self, model: str, *, reason: str) -> tuple[str, dict[str, Any]]:
        """The governed path again on new data — the configured data plus labelled production traffic —
        trained in a child process, then the staging gate and a rollout. ("skipped", why) without new data."""
        spec = self.settings.model(model)
        self.authorize("train", what=f"retrain {model}", subject=model)
        data = self.retraining_data(model)
        outcome: dict[str, Any] = {"labelled_rows": data.labelled_rows, "data": str(data.path), "reason": reason}
        champion = self.champion(model)
        if data.labelled_rows == 0:
            why = "no labelled production traffic to learn from; ingest outcomes with `shipyard labels ingest`"
            return "skipped", {**outcome, "reason": f"{reason}: {why}"}
        if champion is not None and champion.data_fingerprint == data.fingerprint:
            why = f"the retraining data is the data {champion.subject} was trained on (sha256 {data.fingerprint[:12]})"
            return "skipped", {**outcome, "reason": f"{reason}: {why}"}
        result = self.run_pipeline_isolated(model, data_path=data.path)
        version = result.version.version
        outcome["version"] = version
        try:
            self.promote(model, version, Stage.STAGING, reason=f"retrained after {reason}")
            outcome["staging"] = "passed"
        except GateBlocked as exc:
            outcome["staging"] = f"blocked: {exc.message}"
            return "done", outcome
        if not spec.monitoring.rollout:
            return "done", outcome
        try:
            rollout = self.start_rollout(model, version)
            outcome["rollout"] = rollout.id
        except GateBlocked as exc:
            outcome["rollout"] = f"waiting: {exc.message}"
        return "done", outcome

    def retraining_data(self, model: str) -> RetrainingData:
        """The configured data plus every logged prediction that has a label, as one Parquet file (for a Feast-backed
        model: its entity file plus each labelled prediction's entity keys, time and label).

        The file sits beside the configured data (so the policy's approved data sources judge it like any
        training data), under `retrain/` (which the scaffolds' .gitignore keeps out of git), named by its
        content: the same rows give the same file and fingerprint.
        """
        import tempfile

        import pandas as pd

        from shipyard.data import load_dataset, sha256_file
        from shipyard.predlog import FEATURE_PREFIX, read_log

        spec = self.settings.model(model)
        configured = self.settings.resolve(spec.data.source)
        base = load_dataset(configured).frame
        labels = self._labels_frame(model)
        recent = pd.DataFrame()
        if len(labels):
            logged = read_log(self.settings.predictions_dir, model=model).to_pandas()
            logged = logged[logged["status"] == 200].drop_duplicates("request_id", keep="first")
            joined = logged.merge(labels[["request_id", "label"]], on="request_id", how="inner")
            joined = joined.sort_values("request_id", kind="stable").reset_index(drop=True)
            columns = {c.removeprefix(FEATURE_PREFIX): joined[c] for c in joined.columns if c.startswith(FEATURE_PREFIX)}
            recent = pd.DataFrame(columns)
            recent = recent[[c for c in recent.columns if c in base.columns]]
            recent[spec.data.target] = self._target_values(model, joined["label"], base[spec.data.target])
            # A Feast-backed model's entity file gets each prediction's logged entity keys and its time: the feature
            # store then joins the values as of that moment, which is what the model saw.
            feast = spec.data.feast
            time_column = spec.data.time_column or (feast.event_timestamp if feast is not None else None)
            if time_column:
                # Logged traffic is the most recent population, so a time-ordered holdout judges the model on it.
                like = base[time_column].dtype
                if getattr(like, "tz", None) is not None:
                    recent[time_column] = joined["received_at"].dt.tz_convert(like.tz).astype(like).array
                else:
                    stamps = joined["received_at"].dt.tz_convert(None).to_numpy()
                    recent[time_column] = pd.Series(stamps).astype(like).to_numpy()
            if spec.data.id_column and feast is None:
                recent[spec.data.id_column] = joined["request_id"].to_numpy()
        combined = pd.concat([base, recent], ignore_index=True) if len(recent) else base
        folder = configured.parent / "retrain"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", suffix=".parquet", delete=False) as handle:
            partial = Path(handle.name)
        try:
            combined.to_parquet(partial, index=False)
            fingerprint = sha256_file(partial)
            path = folder / f"{model}-{fingerprint[:16]}.parquet"
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return RetrainingData(path=path, labelled_rows=len(recent), fingerprint=fingerprint)

    def _target_values(self, model: str, labels: pd.Series, like: pd.Series) -> Any:
        """Ingested labels are 0/1; the configured data may name its classes (``positive_label``)."""
        spec = self.settings.model(model).data
        if spec.positive_label is None:
            return labels.astype(like.dtype).to_numpy()
        negatives = [v for v in like.dropna().unique().tolist() if v != spec.positive_label]
        if not negatives:
            raise InvalidSpec(f"the target {spec.target!r} of {model} has no value besides the positive {spec.positive_label!r}")
        return labels.map({1: spec.positive_label, 0: negatives[0]}).astype(like.dtype).to_numpy()

    def rollback(self, model: str, *, reason: str) -> dict[str, Any]:
        """Abort the running rollout, or else put the previous champion back through its production gate."""
        active = [r for r in self.store.rollouts(model) if r.active]
        if active:
            rollout = self.rollout_action(model, "abort", reason=reason)
            return {"aborted_rollout": rollout.id, "champion": rollout.champion}
        current = self.champion(model)
        previous = [
            change
            for change in reversed(self.store.stage_history(model))
            if change.from_stage is Stage.PRODUCTION
            and change.to_stage is Stage.ARCHIVED
            and (current is None or change.version != current.version)
        ]
        if not previous:
            raise NotFound(f"{model} has no earlier champion to return to", hint="Roll back by promoting a version by hand.")
        version = previous[0].version
        self.promote(model, version, Stage.PRODUCTION, reason=f"rollback: {reason}")
        return {"restored": version, "replaced": current.version if current else None}

    # -- labels -----------------------------------------------------------------------------

    def _labels_frame(self, model: str) -> pd.DataFrame:
        from shipyard.labels import read_labels

        return read_labels(self.settings.labels_dir, model).to_pandas()

    def ingest_labels(
        self, path: Path, *, model: str, entity_key: str | None = None, label_column: str | None = None
    ) -> Ingested:
        """Join outcomes to logged predictions; a request already labelled the same way is not stored again."""
        from shipyard.labels import ingest

        spec = self.settings.model(model)
        self.authorize("monitor", what=f"ingest labels for {model}", subject=model)
        task, classes = self.task_of(model)
        result = ingest(
            path,
            model=model,
            log_root=self.settings.predictions_dir,
            labels_root=self.settings.labels_dir,
            entity_key=entity_key or spec.data.id_column,
            label_column=label_column or spec.data.target,
            positive_label=spec.data.positive_label,
            task=task,
            classes=classes,
        )
        with self.store.write(self.actor) as tx:
            tx.audit("labels.ingested", model, result.to_dict())
        return result
