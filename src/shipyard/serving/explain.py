"""KServe's v1 explain verb, ``POST /v1/models/{name}:explain``: each row's SHAP attributions per input column.

The body is a predict body (``instances``, ``inputs``, ``dataframe_records`` or ``dataframe_split``), checked
against the version's schema as a prediction is. The explainer is the one the evidence uses
(`shipyard.checks.explanations`), built on a version's first explain request and kept while it is served.
Tree models need no background data; other models are explained against the rows logged with the model as
its input example (the evidence uses a larger holdout sample, so its figures differ for them).

Concurrent requests for one version share one explainer call, as predictions share one predict call; the
calls run on one thread of their own, so a slow explanation never holds up the event loop's predictions.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from shipyard.domain.errors import ShipyardError
from shipyard.serving.inputs import Decoded, batch_columns, decode_v1, frame_of

if TYPE_CHECKING:
    import numpy as np
    from starlette.requests import Request

    from shipyard.checks.explanations import Attributor
    from shipyard.serving.gateway import Gateway
    from shipyard.serving.runtime import LoadedModel

MAX_BATCH_ROWS = 1024


class NotExplainable(ShipyardError):
    """The served version's model is one no explainer supports."""

    http_status = 422
    code = "not_explainable"


@dataclass(slots=True)
class _Job:
    decoded: Decoded
    future: asyncio.Future[tuple[np.ndarray, float]]


@dataclass(slots=True)
class _Version:
    """One served version's explainer, and the requests waiting for it."""

    loaded: LoadedModel
    attributor: Attributor | None = None
    refusal: str | None = None
    queue: list[_Job] = field(default_factory=list)
    running: asyncio.Task[None] | None = None


class Explanations:
    """The gateway's explainers, per served version; ``explain`` answers one request."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.versions: dict[tuple[str, int], _Version] = {}
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain")
        self._building: dict[tuple[str, int], asyncio.Future[_Version]] = {}

    async def explain(self, loaded: LoadedModel, decoded: Decoded) -> tuple[Attributor, np.ndarray, float]:
        entry = await self._entry(loaded)
        if entry.attributor is None:
            raise NotExplainable(
                f"{loaded.name} version {loaded.version} cannot be explained: {entry.refusal}",
                hint="Its evidence says the same under explanations; an explainability rule on it blocks.",
            )
        future: asyncio.Future[tuple[np.ndarray, float]] = asyncio.get_running_loop().create_future()
        entry.queue.append(_Job(decoded, future))
        if entry.running is None or entry.running.done():
            entry.running = asyncio.get_running_loop().create_task(self._drain(entry))
        values, base = await future
        return entry.attributor, values, base

    async def _entry(self, loaded: LoadedModel) -> _Version:
        key = loaded.key
        entry = self.versions.get(key)
        if entry is not None and entry.loaded is loaded:
            return entry
        building = self._building.get(key)
        if building is None:
            building = asyncio.ensure_future(self._build(loaded))
            self._building[key] = building
            building.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(building)

    async def _build(self, loaded: LoadedModel) -> _Version:
        from shipyard.checks.explanations import Unexplainable, attributor

        entry = _Version(loaded=loaded)
        try:
            background = await asyncio.to_thread(self._background, loaded)
            entry.attributor = await asyncio.get_running_loop().run_in_executor(self.thread, attributor, loaded.model, background)
        except Unexplainable as exc:
            entry.refusal = str(exc)
        self.versions[loaded.key] = entry
        return entry

    def _background(self, loaded: LoadedModel) -> Any:
        """Rows like the model's inputs: its logged input example, typed as requests are."""
        files = self.gateway.registry.load_version(self.gateway.store.get_version(loaded.name, loaded.version))
        example = files.input_example or {}
        names = [f.name for f in loaded.schema.fields]
        try:
            rows = example["data"]
            columns = {name: [row[example["columns"].index(name)] for row in rows] for name in names}
        except (KeyError, TypeError, ValueError, IndexError):
            raise NotExplainable(f"{loaded.name} version {loaded.version} has no input example to explain against") from None
        return frame_of(batch_columns([Decoded(columns=columns, rows=len(rows))], loaded.schema))

    async def _drain(self, entry: _Version) -> None:
        """Answer everything queued for the version, a batch of up to MAX_BATCH_ROWS rows per explainer call."""
        import numpy as np

        assert entry.attributor is not None
        while entry.queue:
            jobs: list[_Job] = []
            rows = 0
            while entry.queue and (not jobs or rows + entry.queue[0].decoded.rows <= MAX_BATCH_ROWS):
                job = entry.queue.pop(0)
                jobs.append(job)
                rows += job.decoded.rows
            columns = batch_columns([job.decoded for job in jobs], entry.loaded.schema)
            try:
                values, base = await asyncio.get_running_loop().run_in_executor(self.thread, _attribute, entry, columns)
            except Exception as exc:  # the model or shap failing on these rows: this batch's answer, not the gateway's
                failure = NotExplainable(f"explaining these rows failed: {type(exc).__name__}: {exc}")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(failure)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result((np.asarray(values[start : start + job.decoded.rows]), base))
                start += job.decoded.rows


def _attribute(entry: _Version, columns: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Attributions for typed columns: from the gateway's own one-hot encoding when the version has one (it matches
    the pipeline's, checked at load), else through the pipeline's transform on a frame."""
    attributor, encoded = entry.attributor, entry.loaded.encoded
    assert attributor is not None
    if encoded is not None and attributor.attribute_encoded is not None:
        rows = encoded.encode(columns)
        if rows is not None:
            return attributor.attribute_encoded(rows)
    return attributor.explain(frame_of(columns))


def _explanations(request: Request) -> Explanations:
    state = request.app.state
    found: Explanations | None = getattr(state, "explanations", None)
    if found is None:
        found = state.explanations = Explanations(state.gateway)
    return found


async def explain_v1(request: Request) -> Response:
    """``POST /v1/models/{name}:explain``: the champion's attributions (or the pinned version's, on the versioned path)."""
    from shipyard.serving.http import header_safe, new_request_id, parse_version, read_body, served

    gateway: Gateway = request.app.state.gateway
    request_id = request.headers.get("x-request-id") or new_request_id()
    name = request.path_params["name"]
    version = parse_version(request.path_params.get("version"))
    loaded = served(gateway.route(name), name, version).loaded
    body = await read_body(request.receive, request.headers.get("content-length"), gateway.config.max_body_bytes)
    decoded = decode_v1(body, loaded.schema, max_rows=min(gateway.config.max_rows, MAX_BATCH_ROWS))
    explainer, values, base = await _explanations(request).explain(loaded, decoded)
    columns = list(explainer.columns)
    document = {
        "model": name,
        "version": loaded.version,
        "request_id": request_id,
        "explainer": explainer.explainer,
        "output": explainer.output,
        "base_value": base,
        "features": columns,
        "explanations": [dict(zip(columns, (float(v) for v in row), strict=True)) for row in values],
    }
    headers = {"x-request-id": header_safe(request_id)}
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json", headers=headers)
