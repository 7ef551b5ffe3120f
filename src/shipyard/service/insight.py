"""Looking back: a prediction's trace and the KPIs (the audit log is in audit.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import AuditVerification
from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.stages import Stage
from shipyard.service.loop import Loop

if TYPE_CHECKING:
    from shipyard.kpis import Kpis


class Insight(Loop):
    # -- tracing ---------------------------------------------------------------------------

    def trace(self, request_id: str) -> dict[str, Any]:
        """Every logged answer to the request, each with the chain that put its version in production."""
        from shipyard.domain.documents import json_safe
        from shipyard.predlog import FEATURE_PREFIX, find_request

        rows = find_request(self.settings.predictions_dir, request_id)
        if not rows:
            raise NotFound(
                f"no prediction with request id {request_id!r} in {self.settings.predictions_dir}",
                hint="Request ids come from the x-request-id header; the log is written about a second after the answer.",
            )
        answers = []
        for row in rows:
            model, number = str(row["model"]), int(row["version"])
            version = self.store.get_version(model, number)
            evidence = self.store.evidence(model, number) or {}
            lineage = evidence.get("lineage") or {}
            history = self.store.stage_history(model, number)
            into_production = [c for c in history if c.to_stage is Stage.PRODUCTION]
            rollouts = [r for r in self.store.rollouts(model) if r.version == number]
            gates = self.store.gate_reports(model, number)
            answers.append(
                {
                    "prediction": {
                        "request_id": row["request_id"],
                        "received_at": row["received_at"],
                        "routing": row["routing"],
                        "prediction": row["prediction"],
                        "score": row["score"],
                        "latency_ms": row["latency_ms"],
                        "status": row["status"],
                        "inputs": {k.removeprefix(FEATURE_PREFIX): v for k, v in row.items() if k.startswith(FEATURE_PREFIX)},
                    },
                    "version": {
                        "model": model,
                        "version": number,
                        "stage": version.stage.value,
                        "registered_by": version.registered_by,
                        "registered_at": version.registered_at,
                    },
                    "training_run": version.run_id,
                    "data": {
                        "sources": lineage.get("data_sources") or ([version.data_uri] if version.data_uri else []),
                        "fingerprint": version.data_fingerprint,
                    },
                    "code": {"git_commit": version.git_commit, "clean": lineage.get("git_clean")},
                    "gates": [
                        {
                            "stage": g.get("stage"),
                            "passed": g.get("passed"),
                            "break_glass": g.get("break_glass"),
                            "actor": g.get("actor"),
                            "at": g.get("evaluated_at") or g.get("at"),
                        }
                        for g in gates
                    ],
                    "approvals": [a.to_dict() for a in self.store.approvals(model, number)],
                    "promotions": [c.to_dict() for c in into_production],
                    "rollouts": [
                        {
                            "id": r.id,
                            "strategy": r.strategy,
                            "state": r.state,
                            "started_by": r.started_by,
                            "started_at": r.started_at,
                        }
                        for r in rollouts
                    ],
                }
            )
        result: dict[str, Any] = json_safe({"request_id": request_id, "answers": answers})
        return result

    # -- KPIs --------------------------------------------------------------------------------

    def kpis(
        self,
        since: str = "30d",
        *,
        audit: AuditVerification | None = None,
        commit_time: Callable[[str], datetime | None] | None = None,
    ) -> Kpis:
        """DORA and governance figures over the window; ``audit`` (a running verification the caller keeps)
        spares a walk of the whole audit chain, ``commit_time`` may cache git's answers."""
        from datetime import UTC, timedelta

        from shipyard import kpis
        from shipyard.domain.durations import parse_duration

        now = datetime.now(UTC)
        window = timedelta(seconds=parse_duration(since, unit_required=True))
        return kpis.compute(
            self.store,
            since=now - window,
            now=now,
            commit_time=commit_time or self.commit_time,
            audit=audit or self.store.verify_audit(),
        )

    def kpi_trend(self, *, days: float = 30.0, points: int = 6, audit: AuditVerification | None = None) -> list[Kpis]:
        """The figures over ``points`` consecutive windows that together cover the last ``days``, oldest first."""
        from datetime import UTC, timedelta

        from shipyard import kpis

        if points < 1 or days <= 0:
            raise InvalidSpec(f"a trend needs at least one window over a positive span; got {points} over {days} days")
        now = datetime.now(UTC)
        step = timedelta(days=days / points)
        commits: dict[str, datetime | None] = {}

        def commit_time(commit: str) -> datetime | None:
            if commit not in commits:
                commits[commit] = self.commit_time(commit)
            return commits[commit]

        verified = audit or self.store.verify_audit()
        return [
            kpis.compute(
                self.store, since=now - (points - i) * step, now=now - (points - i - 1) * step,
                commit_time=commit_time, audit=verified,
            )
            for i in range(points)
        ]  # fmt: skip

    def commit_time(self, commit: str) -> datetime | None:
        """When a commit was made, if the project's git repository has it.

        Commits come from MLflow run tags, so they are data: only a hex object name is looked up, and
        `--end-of-options` keeps git from reading anything in it as an option.
        """
        import subprocess

        from shipyard.pipeline.registration import is_commit

        if not is_commit(commit):
            return None
        try:
            done = subprocess.run(
                ["git", "-C", str(self.settings.root), "show", "-s", "--format=%cI", "--end-of-options", commit],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        text = done.stdout.strip()
        try:
            return datetime.fromisoformat(text) if done.returncode == 0 and text else None
        except ValueError:
            return None
