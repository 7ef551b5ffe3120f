"""The monitoring page: a model's monitor runs, each feature's drift statistics, a chosen feature's distribution
against the reference (a Vega-Lite chart), the score's, and the alerts with what their actions did.

The chart's specification is rendered as JSON data in the page (the CSP allows no inline script) and drawn by
static/charts.js with the vendored vega-embed; choosing another feature swaps only the chart (htmx).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.domain.errors import InvalidSpec, ShipyardError
from shipyard.server.ui.login import viewer
from shipyard.server.ui.web import render

if TYPE_CHECKING:
    from shipyard.domain.monitoring import MonitorRun
    from shipyard.service import DriftView, Shipyard

# Which statistic and p-value a feature's type is tested with, and which effect size its method judges by.
TEST = {
    "numeric": ("KS D", "ks_statistic", "ks_pvalue"),
    "categorical": ("χ²", "chisquare_statistic", "chisquare_pvalue"),
}
EFFECT = {
    ("numeric", "psi"): ("PSI", "psi"),
    ("categorical", "psi"): ("PSI", "psi"),
    ("numeric", "jensenshannon"): ("Jensen–Shannon", "jensenshannon"),
    ("categorical", "jensenshannon"): ("Jensen–Shannon", "jensenshannon"),
    ("categorical", "chisquare"): ("Jensen–Shannon", "jensenshannon"),
}
DEFAULT_EFFECT = {"numeric": ("normalized Wasserstein", "wasserstein_normed"), "categorical": ("Jensen–Shannon", "jensenshannon")}
COLORS = {"reference": "#57606a", "live": "#0b5cad"}  # the stylesheet's muted ink and accent


def run_param(request: Request) -> int | None:
    raw = request.query_params.get("run")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidSpec(f"run must be a monitor run's number, got {raw!r}") from None


async def page(request: Request) -> Response:
    seen, acting = await viewer(request)
    name = request.path_params["model"]
    run, feature = run_param(request), request.query_params.get("feature") or None

    def gather() -> dict[str, Any]:
        acting.versions(name)  # an unknown model is NotFound, naming it
        runs = acting.monitor_runs(name)
        chosen = next((r for r in runs if r.id == run), None) if run is not None else (runs[0] if runs else None)
        if run is not None and chosen is None:
            raise InvalidSpec(f"{name} has no monitor run {run} among its last {len(runs)}", hint="Pick one from the list.")
        rows = feature_rows(chosen) if chosen is not None else []
        picked = feature or default_feature(rows)
        return {
            "name": name,
            "champion": acting.champion(name),
            "runs": [run_row(r) for r in runs],
            "chosen": chosen,
            "features": rows,
            "score": score_row(chosen) if chosen is not None else None,
            "chart": chart(acting, name, picked, chosen) if chosen is not None and picked else None,
            "score_chart": chart(acting, name, None, chosen) if chosen is not None else None,
            "alerts": acting.alerts(name),
        }

    return render("monitoring.html", {"viewer": seen, **await run_in_threadpool(gather)})


async def chart_part(request: Request) -> Response:
    """Only the chosen feature's chart (what htmx swaps in); the same URL without htmx is the whole page's part."""
    seen, acting = await viewer(request)
    name, run, feature = request.path_params["model"], run_param(request), request.query_params.get("feature") or None

    def gather() -> dict[str, Any]:
        runs = acting.monitor_runs(name)
        chosen = next((r for r in runs if r.id == run), None) if run is not None else (runs[0] if runs else None)
        return {"name": name, "chart": chart(acting, name, feature, chosen) if chosen is not None and feature else None}

    return render("monitoring_chart.html", {"viewer": seen, **await run_in_threadpool(gather)})


def run_row(run: MonitorRun) -> dict[str, Any]:
    report = run.report or {}
    drift = report.get("drift") or {}
    performance = report.get("performance") or {}
    return {
        "run": run,
        "evaluated": drift.get("evaluated"),
        "drifted": drift.get("drifted") or [],
        "fired": [s for s in report.get("signals") or [] if s.get("fired")],
        "live": performance.get("live"),
        "holdout": performance.get("holdout"),
        "requests": report.get("requests"),
        "error_rate": report.get("error_rate"),
        "notes": report.get("notes") or [],
    }


def feature_rows(run: MonitorRun) -> list[dict[str, Any]]:
    drift = (run.report or {}).get("drift") or {}
    return [judged(name, found) for name, found in (drift.get("features") or {}).items()]


def score_row(run: MonitorRun) -> dict[str, Any] | None:
    found = ((run.report or {}).get("drift") or {}).get("score")
    return judged("score", found) if found else None


def judged(name: str, found: dict[str, Any]) -> dict[str, Any]:
    kind, method = found.get("type", "numeric"), found.get("method", "auto")
    test, statistic_key, pvalue_key = TEST.get(kind, TEST["numeric"])
    effect, effect_key = EFFECT.get((kind, method), DEFAULT_EFFECT.get(kind, DEFAULT_EFFECT["numeric"]))
    statistics = found.get("statistics") or {}
    drifted = found.get("drifted")
    verdict = "drift" if drifted else "no drift" if drifted is False else found.get("status", "–")
    return {
        "name": name,
        "kind": kind,
        "method": method,
        "test": test,
        "statistic": statistics.get(statistic_key),
        "pvalue": statistics.get(pvalue_key),
        "effect_name": effect,
        "effect": statistics.get(effect_key),
        "verdict": verdict,
        "reason": found.get("reason", ""),
        "rows": found.get("rows"),
    }


def default_feature(rows: list[dict[str, Any]]) -> str | None:
    """The first drifted feature, else the first one compared, else none."""
    for row in rows:
        if row["verdict"] == "drift":
            return str(row["name"])
    return str(rows[0]["name"]) if rows else None


def chart(acting: Shipyard, model: str, feature: str | None, run: MonitorRun) -> dict[str, Any]:
    """The chart's context: its element id, the view's numbers, and the Vega-Lite spec — or why there is none."""
    name = "chart-score" if feature is None else "chart-feature"
    # Each drawing its own element id: htmx carries an old element's attributes over to a new one of the same id.
    ident = f"{name}-{run.id}-{hashlib.sha256((feature or '').encode()).hexdigest()[:10]}"
    try:
        view = acting.drift_view(model, feature, run=run.id)
    except ShipyardError as exc:
        return {"id": ident, "name": name, "feature": feature, "error": exc, "view": None, "spec": None}
    drawn = spec(view)
    # Plain text, so that autoescaping quotes it for the attribute it goes in.
    return {"id": ident, "name": name, "feature": feature, "error": None, "view": view, "spec": drawn, "json": json.dumps(drawn)}


def spec(view: DriftView) -> dict[str, Any]:
    """Grouped bars: each bin (or category) with the reference's share beside the live window's."""
    title = view.feature if view.feature is not None else "score"
    values = []
    for bar in view.bins:
        values.append({"bin": bar.label, "series": "reference", "share": bar.reference, "rows": None})
        values.append({"bin": bar.label, "series": "live", "share": bar.live, "rows": bar.live_count})
    histogram = view.kind == "numeric"
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "description": f"{title}: share of rows per {'bin' if histogram else 'category'}, reference against live window",
        "width": 640 if histogram else max(240, 60 * len(view.bins)),
        "height": 220,
        "data": {"name": "drift", "values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {
                "field": "bin",
                "type": "ordinal",
                "sort": [b.label for b in view.bins],
                "title": f"{title} ({'equal-width bins' if histogram else 'category'})",
                "axis": {"labelAngle": -40 if histogram else 0, "labelLimit": 120},
            },
            "xOffset": {"field": "series", "sort": ["reference", "live"]},
            "y": {"field": "share", "type": "quantitative", "title": "share of rows", "axis": {"format": ".0%"}},
            "color": {
                "field": "series",
                "type": "nominal",
                "title": None,
                "scale": {"domain": list(COLORS), "range": list(COLORS.values())},
                "legend": {"orient": "top"},
            },
        },
        "config": {"font": "system-ui, sans-serif", "axis": {"labelColor": "#1b1f24", "titleColor": "#1b1f24"}},
    }
