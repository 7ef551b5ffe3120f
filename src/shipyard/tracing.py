"""`shipyard trace`: from one prediction back to the data, code, gates, approvals and rollout behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.domain.errors import NotFound
from shipyard.domain.stages import Stage

if TYPE_CHECKING:
    from shipyard.service import Shipyard


def trace(service: Shipyard, request_id: str) -> dict[str, Any]:
    """Every logged answer to the request, each with the chain that put its version in production."""
    from shipyard.evidence import json_safe
    from shipyard.predlog import FEATURE_PREFIX, find_request

    rows = find_request(service.settings.predictions_dir, request_id)
    if not rows:
        raise NotFound(
            f"no prediction with request id {request_id!r} in {service.settings.predictions_dir}",
            hint="Request ids come from the x-request-id header; the log is written about a second after the answer.",
        )
    answers = []
    for row in rows:
        model, number = str(row["model"]), int(row["version"])
        version = service.store.get_version(model, number)
        evidence = service.store.evidence(model, number) or {}
        lineage = evidence.get("lineage") or {}
        history = service.store.stage_history(model, number)
        into_production = [c for c in history if c.to_stage is Stage.PRODUCTION]
        rollouts = [r for r in service.store.rollouts(model) if r.version == number]
        gates = service.store.gate_reports(model, number)
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
                "approvals": [a.to_dict() for a in service.store.approvals(model, number)],
                "promotions": [c.to_dict() for c in into_production],
                "rollouts": [
                    {"id": r.id, "strategy": r.strategy, "state": r.state, "started_by": r.started_by, "started_at": r.started_at}
                    for r in rollouts
                ],
            }
        )
    result: dict[str, Any] = json_safe({"request_id": request_id, "answers": answers})
    return result
