"""OpenLineage run events for pipeline steps.

Each step is one OpenLineage run: START when it begins, COMPLETE or FAIL when it ends, with its input
datasets (schema, fingerprint, row count) and its outputs (the registered model version). Events are
built with openlineage-python's own classes and sent through its client. They are always appended to
one JSONL file, the durable local record (in an object store, which cannot append, each event is one
object under ``events/``); with a URL (a Marquez-compatible endpoint) they are also
posted to ``{url}/api/v1/lineage``, and a failing endpoint costs a warning, never the step or the event.

openlineage-python is imported on first use: it costs half a second that ``import shipyard.lineage``
must not pay. Its switch ``OPENLINEAGE_DISABLED=true`` turns all emission off, the file included.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard import __version__
from shipyard.domain.errors import BackendUnavailable
from shipyard.location import Location

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

log = logging.getLogger("shipyard.lineage")

PRODUCER = f"https://github.com/shipyard-ml/shipyard/tree/{__version__}"
EVENTS_FILE = "events.jsonl"
EVENTS_FOLDER = "events"  # in an object store: one object per event
LINEAGE_ENDPOINT = "api/v1/lineage"
# One retry on a refused connection or a 5xx: enough for a blip, and a dead endpoint costs a
# pipeline two quick attempts per event rather than the client's default five with backoff.
HTTP_RETRY: dict[str, Any] = {
    "total": 1,
    "connect": 1,
    "read": 1,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["POST"],
}

EventType = Literal["START", "COMPLETE", "FAIL", "ABORT"]


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset a step reads or writes, as OpenLineage names it."""

    namespace: str  # e.g. "file", or "mlflow://<tracking host>"
    name: str  # e.g. the absolute path of a data file, or "models/churn/3"
    fields: tuple[tuple[str, str], ...] = ()  # (column, type): the schema facet
    fingerprint: str | None = None  # sha256 of the content: the version facet
    rows: int | None = None  # the input or output statistics facet


@dataclass(frozen=True, slots=True)
class RunRef:
    """Enough of a run to name it as another run's parent, even from another process."""

    namespace: str
    job: str
    run_id: str
    root: RunRef | None = None  # the top-most ancestor, when this run is itself a child


class StepRun:
    """One running step: its run id, and the datasets and facets its body adds before it ends."""

    __slots__ = ("_facets", "_inputs", "_outputs", "job", "namespace", "parent", "run_id")

    def __init__(
        self,
        *,
        namespace: str,
        job: str,
        run_id: str,
        parent: RunRef | None,
        inputs: Sequence[DatasetRef],
        facets: Mapping[str, Any],
    ) -> None:
        self.namespace = namespace
        self.job = job
        self.run_id = run_id
        self.parent = parent
        self._inputs = list(inputs)
        self._outputs: list[DatasetRef] = []
        self._facets = dict(facets)

    @property
    def ref(self) -> RunRef:
        root = None if self.parent is None else (self.parent.root or self.parent)
        return RunRef(self.namespace, self.job, self.run_id, root)

    @property
    def inputs(self) -> tuple[DatasetRef, ...]:
        return tuple(self._inputs)

    @property
    def outputs(self) -> tuple[DatasetRef, ...]:
        return tuple(self._outputs)

    @property
    def facets(self) -> Mapping[str, Any]:
        return dict(self._facets)

    def add_input(self, dataset: DatasetRef) -> None:
        """An input found only while the step runs; it is in the COMPLETE or FAIL event."""
        self._inputs.append(dataset)

    def add_output(self, dataset: DatasetRef) -> None:
        self._outputs.append(dataset)

    def add_facet(self, name: str, facet: Any) -> None:
        """A run facet known only at the end (e.g. metrics): an openlineage RunFacet, or a mapping of JSON values."""
        self._facets[name] = facet


class LineageEmitter:
    """Emits the OpenLineage events of pipeline steps to a JSONL file and, optionally, an HTTP endpoint."""

    def __init__(
        self,
        *,
        namespace: str,
        directory: Location | Path,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.directory = Location.of(directory)
        self.url = url
        self._api_key = api_key
        self._timeout = timeout
        self._client: OpenLineageClient | None = None
        self._lock = threading.Lock()

    def events_path(self) -> Location:
        """The JSONL file on a local disk; the folder of one object per event in an object store."""
        return self.directory / (EVENTS_FILE if self.directory.local is not None else EVENTS_FOLDER)

    @contextmanager
    def step(
        self,
        job: str,
        *,
        inputs: Sequence[DatasetRef] = (),
        parent: StepRun | RunRef | None = None,
        facets: Mapping[str, Any] | None = None,
    ) -> Iterator[StepRun]:
        """Run the body as one OpenLineage run: START now, then COMPLETE, or FAIL (re-raising) if it raises.

        ``parent`` links this run to the run that spawned it (the ParentRunFacet). ``facets`` are extra
        run facets: openlineage ``RunFacet`` objects, or mappings of JSON values with identifier keys,
        which become custom facets (name them with a prefix, e.g. ``shipyard_pipeline``).
        """
        from openlineage.client.uuid import generate_new_uuid

        run = StepRun(
            namespace=self.namespace,
            job=job,
            run_id=str(generate_new_uuid()),
            parent=parent.ref if isinstance(parent, StepRun) else parent,
            inputs=inputs,
            facets=facets or {},
        )
        self._emit(run, "START")
        try:
            yield run
        except BaseException as exc:
            # FAIL for an error; ABORT for an interrupt or exit, which the step did not cause.
            state: EventType = "FAIL" if isinstance(exc, Exception) else "ABORT"
            try:
                self._emit(run, state, error=exc)
            except Exception:
                # The step's own error is the one to surface; a lost lineage event is secondary.
                log.exception("lineage: could not record the %s event of %s (run %s)", state, job, run.run_id)
            raise
        self._emit(run, "COMPLETE")

    def _emit(self, run: StepRun, state: EventType, *, error: BaseException | None = None) -> None:
        event = _run_event(run, state, error)
        # One event at a time, so concurrent steps cannot interleave lines of the JSONL file.
        with self._lock:
            if self._client is None:
                self._client = _make_client(self.events_path(), self.url, self._api_key, self._timeout)
            self._client.emit(event)


def event_lines(directory: Location | Path) -> Iterator[bytes]:
    """Each recorded event's JSON, oldest first: the JSONL file's lines, then (object store) one object each."""
    location = Location.of(directory)
    path = location / EVENTS_FILE
    if path.is_file():
        yield from path.read_bytes().splitlines()
    folder = location / EVENTS_FOLDER
    for name in folder.entries(kind="file", suffix=".json"):  # named by time first, so sorted is oldest first
        yield (folder / name).read_bytes()


def read_events(directory: Location | Path) -> list[dict[str, Any]]:
    """The events recorded under ``directory``, oldest first; none if nothing was recorded yet."""
    events = []
    for number, line in enumerate(event_lines(directory), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            # A process killed mid-write leaves a torn last line; the rest of the record still counts.
            log.warning("lineage: skipping unreadable event %d under %s: %s", number, directory, exc)
    return events


def _make_client(path: Location, url: str | None, api_key: str | None, timeout: float) -> OpenLineageClient:
    from openlineage.client import OpenLineageClient
    from openlineage.client.serde import Serde
    from openlineage.client.transport import Transport
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider

    if TYPE_CHECKING:
        from openlineage.client.client import Event

    local = path.local
    # append=True: one JSONL file, one event per line, rather than the default file per event.
    file = FileTransport(FileConfig(log_file_path=str(local), append=True)) if local is not None else None

    def record(event: Event) -> None:
        if file is not None and local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            file.emit(event)
            return
        # An object store cannot append: each event is one object, named by time so a listing is in order.
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.json"
        (path / name).write_bytes(Serde.to_json(event).encode())

    http: HttpTransport | None = None
    endpoint = ""
    if url:
        # A trailing slash keeps a base path (https://host/marquez/) when the endpoint is joined to it.
        base = url.rstrip("/") + "/"
        endpoint = base + LINEAGE_ENDPOINT
        auth = ApiKeyTokenProvider({"apiKey": api_key}) if api_key else TokenProvider({})
        http = HttpTransport(HttpConfig(url=base, endpoint=LINEAGE_ENDPOINT, timeout=timeout, auth=auth, retry=dict(HTTP_RETRY)))

    class LocalFirstTransport(Transport):
        """The file always, then the endpoint at best effort.

        Not the client's CompositeTransport: that one cannot tell a lost local record (an error)
        from an unreachable endpoint (a warning), and it logs under its own name.
        """

        kind = "shipyard"

        def emit(self, event: Event) -> None:
            try:
                record(event)
            except (OSError, RuntimeError) as exc:  # an object store's failure is already BackendUnavailable
                raise BackendUnavailable(
                    f"Could not record a lineage event in {path}: {exc}", hint="The lineage directory must be writable."
                ) from exc
            if http is None:
                return
            try:
                http.emit(event)
            except Exception as exc:
                log.warning(
                    "lineage: could not send the %s event of %s (run %s) to %s: %s; the event is kept locally in %s",
                    _state(event),
                    getattr(getattr(event, "job", None), "name", "?"),
                    getattr(getattr(event, "run", None), "runId", "?"),
                    endpoint,
                    exc,
                    path,
                )
            finally:
                # A pipeline sends a handful of events: a fresh connection each time leaves no
                # pooled socket open between steps or after the run.
                http.close()

    return OpenLineageClient(transport=LocalFirstTransport())


def _state(event: Any) -> str:
    state = getattr(event, "eventType", None)
    return str(getattr(state, "value", state))


def _run_event(run: StepRun, state: EventType, error: BaseException | None) -> RunEvent:
    from openlineage.client.constants import __version__ as openlineage_version
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import JobFacet, error_message_run, job_type_job, parent_run, processing_engine_run

    run_facets: dict[str, RunFacet] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="shipyard", openlineageAdapterVersion=openlineage_version, producer=PRODUCER
        )
    }
    if run.parent is not None:
        root = run.parent.root or run.parent
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run.parent.run_id),
            job=parent_run.Job(namespace=run.parent.namespace, name=run.parent.job),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=root.run_id),
                job=parent_run.RootJob(namespace=root.namespace, name=root.job),
            ),
            producer=PRODUCER,
        )
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}",
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)),
            producer=PRODUCER,
        )
    run_facets.update((name, _run_facet(value)) for name, value in run.facets.items())
    job_facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="SHIPYARD", jobType="JOB" if run.parent is None else "TASK", producer=PRODUCER
        )
    }
    ending = state != "START"
    return RunEvent(
        eventType=RunState(state),
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run.run_id, facets=run_facets),
        job=Job(namespace=run.namespace, name=run.job, facets=job_facets),
        inputs=[_input(ref) for ref in run.inputs],
        outputs=[_output(ref) for ref in run.outputs] if ending else [],
        producer=PRODUCER,
    )


def _run_facet(value: Any) -> RunFacet:
    from openlineage.client.facet_v2 import RunFacet

    if isinstance(value, RunFacet):
        return value
    if isinstance(value, Mapping):
        # A custom facet: the spec's base RunFacet (producer, schema URL) plus the given values.
        return RunFacet(producer=PRODUCER).with_additional_properties(**value)  # type: ignore[return-value]
    raise TypeError(f"a run facet must be an openlineage RunFacet or a mapping, not {type(value).__name__}")


def _dataset_facets(ref: DatasetRef) -> dict[str, DatasetFacet]:
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    facets: dict[str, DatasetFacet] = {}
    if ref.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in ref.fields],
            producer=PRODUCER,
        )
    if ref.fingerprint is not None:
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=ref.fingerprint, producer=PRODUCER)
    return facets


def _input(ref: DatasetRef) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import InputDatasetFacet, input_statistics_input_dataset

    input_facets: dict[str, InputDatasetFacet] = {}
    if ref.rows is not None:
        input_facets["inputStatistics"] = input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
            rowCount=ref.rows, producer=PRODUCER
        )
    return InputDataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref), inputFacets=input_facets)


def _output(ref: DatasetRef) -> OutputDataset:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import OutputDatasetFacet, output_statistics_output_dataset

    output_facets: dict[str, OutputDatasetFacet] = {}
    if ref.rows is not None:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=ref.rows, producer=PRODUCER
        )
    return OutputDataset(namespace=ref.namespace, name=ref.name, facets=_dataset_facets(ref), outputFacets=output_facets)
