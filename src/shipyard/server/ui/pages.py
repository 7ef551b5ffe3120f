"""The UI's pages: each reads through the service acting as the viewer, and renders one template.

Reading runs on a worker thread (the service blocks); nothing here decides what anyone may do — the
version page shows ``allowed_actions``, and the forms (forms.py) call the service methods themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.domain.errors import InvalidSpec, ShipyardError, http_status
from shipyard.domain.stages import Stage
from shipyard.server.ui.login import Viewer, viewer
from shipyard.server.ui.web import render

if TYPE_CHECKING:
    from shipyard.domain.entities import AuditVerification, ModelVersion
    from shipyard.domain.rollouts import Analysis, Rollout
    from shipyard.service import Shipyard

PAGE_SIZE = 50
MAX_VERSION = 2**31 - 1
# Which gated stages a version still has ahead of it, and so may be signed off for.
AHEAD = {Stage.CANDIDATE: ("staging", "production"), Stage.STAGING: ("production",)}
DONE = {
    "approve": "Your approval for {stage} is recorded.",
    "reject": "Your rejection for {stage} is recorded.",
    "promote": "The version moved to {stage}.",
    "rollout": "The rollout started.",
    "pause": "The rollout is paused.",
    "resume": "The rollout resumed.",
    "abort": "The rollout was aborted: all traffic is back on the champion.",
}


def version_number(request: Request) -> int:
    number = int(request.path_params["version"])
    if not 1 <= number <= MAX_VERSION:
        raise InvalidSpec(f"version {number} is out of range; versions are numbered from 1")
    return number


def stage_param(value: str | None) -> str | None:
    return Stage.parse(value).value if value else None


# -- overview -------------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    seen, acting = await viewer(request)
    latest = request.app.state.ui.verified()
    audit = latest.result if latest is not None else None  # else the KPIs verify the chain themselves, once
    memo = request.app.state.ui.trends
    return render("overview.html", {"viewer": seen, **await run_in_threadpool(_overview, acting, audit, memo)})


def _overview(
    acting: Shipyard, audit: AuditVerification | None = None, memo: dict[tuple[int, int], dict[str, Any]] | None = None
) -> dict[str, Any]:
    rows = []
    for model in acting.models():
        versions = acting.versions(model.name)
        champion = next((v for v in versions if v.stage is Stage.PRODUCTION), None)
        latest, _ = acting.rollout_status(model.name, judge=False)
        deployed = None
        if champion is not None:
            moves = [c for c in acting.describe(model.name, champion.version).history if c.to_stage is Stage.PRODUCTION]
            deployed = moves[-1] if moves else None
        rows.append(
            {
                "model": model,
                "champion": champion,
                "primary": _primary(acting, model.name),
                "rollout": latest if latest is not None and latest.active else None,
                "alerts": acting.alerts(model.name, state="open"),
                "deployed": deployed,
                "versions": len(versions),
            }
        )
    key = (acting.audit_head(), int(time.time() // 300))
    if memo is not None and key in memo:
        return {"rows": rows, "kpis": acting.kpis("30d", audit=audit), "trends": memo[key]}
    trend = acting.kpi_trend(days=30, points=TREND_POINTS, audit=audit)
    lines: dict[str, tuple[str, list[float | None], Callable[[float], str]]] = {
        "deployments": ("Deployments", [float(k.deployments) for k in trend], _count),
        "lead_time": ("Median lead time", [k.lead_time.median for k in trend], _seconds),
        "change_failure_rate": ("Change failure rate", [k.change_failure_rate for k in trend], _percent),
        "restore_time": ("Median time to restore", [k.restore_time.median for k in trend], _seconds),
        "approved_share": ("Approved production versions", [k.approved_share for k in trend], _percent),
    }
    trends = {name: sparkline(values, label=label, show=show) for name, (label, values, show) in lines.items()}
    if memo is not None:
        memo.clear()  # only the newest is ever asked for again
        memo[key] = trends
    return {"rows": rows, "kpis": acting.kpis("30d", audit=audit), "trends": trends}


TREND_POINTS = 6  # windows of five days across the overview's thirty
SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 120.0, 24.0, 2.0


def _count(value: float) -> str:
    return f"{value:g}"


def _seconds(value: float) -> str:
    return f"{value / 3600:.1f} h" if value >= 3600 else f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"


def _percent(value: float) -> str:
    return f"{value:.0%}"


def sparkline(values: list[float | None], *, label: str, show: Callable[[float], str]) -> dict[str, Any]:
    """A small line of a figure over consecutive windows, drawn as SVG by the server: a polyline per run of
    windows that have a value (a window without one, such as no change to fail, leaves a gap), and a text
    equivalent naming every window's value for screen readers and tests."""
    known = [v for v in values if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    span = (high - low) or 1.0
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / max(1, len(values) - 1)
    segments: list[list[str]] = [[]]
    dots = []
    for i, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        x = SPARK_PAD + i * step
        y = SPARK_HEIGHT - SPARK_PAD - (value - low) / span * (SPARK_HEIGHT - 2 * SPARK_PAD)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append((f"{x:.1f}", f"{y:.1f}"))
    spoken = ", ".join(show(v) if v is not None else "none" for v in values)
    return {
        "segments": [" ".join(points) for points in segments if len(points) > 1],
        "dots": dots,
        "label": f"{label} in each five-day window of the last 30 days, oldest first: {spoken}",
        "values": list(values),
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
    }


def _primary(acting: Shipyard, model: str) -> str | None:
    try:
        return acting.settings.model(model).metric()
    except ShipyardError:  # a model the store knows and shipyard.yaml no longer declares
        return None


# -- a model ---------------------------------------------------------------------------------------


async def model(request: Request) -> Response:
    seen, acting = await viewer(request)
    name = request.path_params["model"]
    stage = stage_param(request.query_params.get("stage"))

    def gather() -> dict[str, Any]:
        found = next((m for m in acting.models() if m.name == name), None)
        versions = acting.versions(name)  # an unknown model is NotFound, naming it
        latest, _ = acting.rollout_status(name, judge=False)
        shown = [v for v in reversed(versions) if stage is None or v.stage.value == stage]
        counts = {s.value: sum(1 for v in versions if v.stage is s) for s in Stage}
        return {
            "name": name,
            "model": found,
            "versions": shown,
            "total": len(versions),
            "counts": counts,
            "stage": stage,
            "stages": [s.value for s in Stage],
            "primary": _primary(acting, name),
            "rollout": latest if latest is not None and latest.active else None,
        }

    return render("model.html", {"viewer": seen, **await run_in_threadpool(gather)})


# -- a version -------------------------------------------------------------------------------------


async def version(request: Request) -> Response:
    seen, acting = await viewer(request)
    gate = stage_param(request.query_params.get("gate"))
    done = request.query_params.get("done")
    done_stage = stage_param(request.query_params.get("stage"))
    message = DONE[done].format(stage=done_stage or "") if done in DONE else None
    return await version_page(request, seen, acting, gate=gate, done=message)


async def version_page(
    request: Request,
    seen: Viewer,
    acting: Shipyard,
    *,
    gate: str | None = None,
    done: str | None = None,
    error: ShipyardError | None = None,
) -> Response:
    """The version's page; a refused form renders it again with the refusal on top (and its status)."""
    name, number = request.path_params["model"], version_number(request)
    context = await run_in_threadpool(_version, acting, name, number, gate)
    status = http_status(error) if error is not None else 200
    return render("version.html", {"viewer": seen, "done": done, "error": error, **context}, status=status)


def _version(acting: Shipyard, name: str, number: int, gate: str | None) -> dict[str, Any]:
    detail = acting.describe(name, number)
    live, live_error = None, None
    if gate is not None:
        try:
            live = acting.gate(name, number, gate)
        except ShipyardError as exc:  # e.g. the model files changed since registration: say so where the gate would be
            live_error = exc
    found: ModelVersion = detail.version
    champion = acting.champion(name)
    return {
        "name": name,
        "detail": detail,
        "v": found,
        "evidence": detail.evidence or {},
        "allowed": acting.allowed_actions(name, number),
        "sign_off": AHEAD.get(found.stage, ()),
        "champion": champion,
        "primary": _primary(acting, name),
        "gate": gate,
        "live": live,
        "live_error": live_error,
        "reports": list(reversed(detail.gate_reports)),
        "url": acting.version_url(name, number),
    }


# -- a model's rollout ------------------------------------------------------------------------------


async def rollout(request: Request) -> Response:
    """The latest rollout, judged live; its live part asks for itself again every 2 s while the rollout is active."""
    seen, acting = await viewer(request)
    done = request.query_params.get("done")
    return await rollout_page(request, seen, acting, done=DONE.get(done or "") if done in ROLLOUT_DONE else None)


ROLLOUT_DONE = ("pause", "resume", "abort")


async def rollout_page(
    request: Request, seen: Viewer, acting: Shipyard, *, done: str | None = None, error: ShipyardError | None = None
) -> Response:
    name = request.path_params["model"]

    def gather() -> dict[str, Any]:
        latest, analysis, share = rollout_snapshot(acting, name)
        allowed = acting.allowed_actions(name, latest.version) if latest is not None else {}
        return {"name": name, "rollout": latest, "analysis": analysis, "allowed": allowed, "share": share}

    context = await run_in_threadpool(gather)
    status = http_status(error) if error is not None else 200
    return render("rollout.html", {"viewer": seen, "done": done, "error": error, **context}, status=status)


def rollout_snapshot(acting: Shipyard, name: str, *, tries: int = 5) -> tuple[Rollout | None, Analysis | None, float | None]:
    """The model's latest rollout, its analysis and the traffic share the gateways follow, as one moment's.

    The rollout and the deployment are two reads; a controller step between them would show a step beside the
    next step's weight. So the rollout is read again after the deployment, until the two reads agree.
    """
    latest, analysis = acting.rollout_status(name, judge=True)
    share = _share(acting, latest)
    for _ in range(tries):
        again, _ = acting.rollout_status(name, judge=False)
        if _moment(again) == _moment(latest):
            break
        latest, analysis = acting.rollout_status(name, judge=True)
        share = _share(acting, latest)
    return latest, analysis, share


def _moment(rollout: Rollout | None) -> tuple[Any, ...] | None:
    return None if rollout is None else (rollout.id, rollout.state, rollout.step_index)


def _share(acting: Shipyard, rollout: Rollout | None) -> float | None:
    """The share of traffic the rollout's version gets now, from the deployment the gateways follow."""
    if rollout is None:
        return None
    deployment = next((d for d in acting.deployments() if d.model == rollout.model), None)
    if deployment is not None and deployment.challenger == rollout.version:
        return deployment.challenger_weight
    return 1.0 if deployment is not None and deployment.champion == rollout.version else 0.0


# -- the audit log ---------------------------------------------------------------------------------


async def audit(request: Request) -> Response:
    seen, acting = await viewer(request)
    query = request.query_params
    model_name = query.get("model") or None
    actor = (query.get("actor") or "").strip()
    action = (query.get("action") or "").strip()
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        raise InvalidSpec(f"page must be a whole number, got {query.get('page')!r}") from None

    latest = request.app.state.ui.verified()

    def gather() -> dict[str, Any]:
        filters = {"model": model_name, "actor": actor or None, "action": action or None}
        events, matching, total = acting.audit_page(**filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        pages = max(1, -(-matching // PAGE_SIZE))
        shown = min(page, pages)
        if shown != page:  # past the last page: show the last one
            events, matching, total = acting.audit_page(**filters, offset=(shown - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        return {
            "events": events,
            "matching": matching,
            "total": total,
            "page": shown,
            "pages": pages,
            "models": [m.name for m in acting.models()],
            "filters": {"model": model_name or "", "actor": actor, "action": action},
            # The server re-verifies in the background after new events; a page before its first pass waits once.
            "verification": latest.result if latest is not None else acting.audit_verify(),
            "verified_at": latest.at if latest is not None else None,
        }

    return render("audit.html", {"viewer": seen, **await run_in_threadpool(gather)})


# -- trace -----------------------------------------------------------------------------------------


async def trace(request: Request) -> Response:
    seen, acting = await viewer(request)
    request_id = (request.query_params.get("request_id") or "").strip()
    found, error = None, None
    if request_id:
        try:
            found = await run_in_threadpool(acting.trace, request_id)
        except ShipyardError as exc:
            error = exc
    status = http_status(error) if error is not None else 200
    context = {"viewer": seen, "request_id": request_id, "found": found, "error": error}
    return render("trace.html", context, status=status)
