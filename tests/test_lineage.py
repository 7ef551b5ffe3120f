"""OpenLineage events of pipeline steps: the JSONL record, the schema, and the HTTP endpoint."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import logging
import pkgutil
import socket
import subprocess
import sys
import threading
import types
import typing
import uuid
from collections.abc import Iterator
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attr
import pytest
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from shipyard.domain.errors import BackendUnavailable
from shipyard.lineage import PRODUCER, DatasetRef, LineageEmitter, StepRun, read_events

DATA = DatasetRef(
    namespace="file",
    name="/data/churn/customers.csv",
    fields=(("tenure_months", "int64"), ("monthly_charges", "float64"), ("churned", "bool")),
    fingerprint="9f" * 32,
    rows=1200,
)
MODEL = DatasetRef(namespace="mlflow://127.0.0.1:5000", name="models/churn/3", fingerprint="c0" * 32)
# Official schema files (OpenLineage.json, facets/*.json, each with its "$id") put here are used in
# place of the ones rebuilt from openlineage-python's classes below.
VENDORED_SCHEMAS = Path(__file__).parent / "fixtures" / "openlineage"


@pytest.fixture(autouse=True)
def _openlineage_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client's global off switch would empty every record these tests read.
    monkeypatch.delenv("OPENLINEAGE_DISABLED", raising=False)


def run_pipeline(emitter: LineageEmitter) -> tuple[StepRun, StepRun, StepRun]:
    """A parent run with two steps: training completes, evaluation raises."""
    facets = {"shipyard_pipeline": {"project": "churn", "config": "shipyard.yaml"}}
    with emitter.step("churn.pipeline", facets=facets) as pipeline:
        with emitter.step("churn.train", inputs=[DATA], parent=pipeline) as train:
            train.add_output(MODEL)
        with (
            pytest.raises(ValueError, match=r"AUC 0\.41"),
            emitter.step("churn.evaluate", inputs=[DATA], parent=pipeline) as evaluate,
        ):
            raise ValueError("AUC 0.41 is below the gate's 0.70")
    return pipeline, train, evaluate


def by_run(events: list[dict[str, Any]], run: StepRun) -> list[dict[str, Any]]:
    return [event for event in events if event["run"]["runId"] == run.run_id]


def test_steps_record_start_and_complete_or_fail_linked_to_their_parent(tmp_path: Path) -> None:
    emitter = LineageEmitter(namespace="churn", directory=tmp_path / "lineage")
    pipeline, train, evaluate = run_pipeline(emitter)

    events = read_events(tmp_path / "lineage")
    assert emitter.events_path().local == tmp_path / "lineage" / "events.jsonl"
    assert len((tmp_path / "lineage" / "events.jsonl").read_text().splitlines()) == 6
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("churn.pipeline", "START"),
        ("churn.train", "START"),
        ("churn.train", "COMPLETE"),
        ("churn.evaluate", "START"),
        ("churn.evaluate", "FAIL"),
        ("churn.pipeline", "COMPLETE"),
    ]
    for run in (pipeline, train, evaluate):
        assert uuid.UUID(run.run_id).version == 7
        assert {e["job"]["namespace"] for e in by_run(events, run)} == {"churn"}
    assert all(e["producer"] == PRODUCER for e in events)

    # The steps name the pipeline run as parent (and root); the pipeline has none.
    for run in (train, evaluate):
        for event in by_run(events, run):
            parent = event["run"]["facets"]["parent"]
            assert parent["run"]["runId"] == parent["root"]["run"]["runId"] == pipeline.run_id
            assert parent["job"] == {"namespace": "churn", "name": "churn.pipeline", "facets": {}}
            assert event["job"]["facets"]["jobType"]["jobType"] == "TASK"
    for event in by_run(events, pipeline):
        assert "parent" not in event["run"]["facets"]
        assert event["run"]["facets"]["shipyard_pipeline"]["project"] == "churn"

    # Inputs carry their schema, fingerprint and row count; the model version is the output.
    _, train_complete = by_run(events, train)
    [data] = train_complete["inputs"]
    assert (data["namespace"], data["name"]) == ("file", "/data/churn/customers.csv")
    assert [(f["name"], f["type"]) for f in data["facets"]["schema"]["fields"]] == list(DATA.fields)
    assert data["facets"]["version"]["datasetVersion"] == "9f" * 32
    assert data["inputFacets"]["inputStatistics"]["rowCount"] == 1200
    [model] = train_complete["outputs"]
    assert (model["namespace"], model["name"]) == ("mlflow://127.0.0.1:5000", "models/churn/3")
    assert model["facets"]["version"]["datasetVersion"] == "c0" * 32
    assert by_run(events, train)[0]["outputs"] == []  # START cannot know the outputs yet

    _, evaluate_fail = by_run(events, evaluate)
    error = evaluate_fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "ValueError: AUC 0.41 is below the gate's 0.70"
    assert error["programmingLanguage"] == "python"
    assert "Traceback" in error["stackTrace"] and "raise ValueError" in error["stackTrace"]
    assert evaluate_fail["inputs"][0]["name"] == DATA.name


def test_a_step_interrupted_by_the_user_is_aborted(tmp_path: Path) -> None:
    emitter = LineageEmitter(namespace="churn", directory=tmp_path)
    with pytest.raises(KeyboardInterrupt), emitter.step("churn.train"):
        raise KeyboardInterrupt
    assert [e["eventType"] for e in read_events(tmp_path)] == ["START", "ABORT"]


def test_read_events_of_an_empty_directory_is_empty_and_skips_a_torn_line(tmp_path: Path) -> None:
    assert read_events(tmp_path / "nothing-yet") == []
    emitter = LineageEmitter(namespace="churn", directory=tmp_path)
    with emitter.step("churn.train"):
        pass
    with (tmp_path / "events.jsonl").open("a") as file:
        file.write('{"eventType": "STA')  # a process killed mid-write
    assert [e["eventType"] for e in read_events(tmp_path)] == ["START", "COMPLETE"]


def test_a_record_that_cannot_be_written_stops_the_step_before_it_runs(tmp_path: Path) -> None:
    (tmp_path / "lineage").write_text("a file where the directory should be")
    emitter = LineageEmitter(namespace="churn", directory=tmp_path / "lineage")
    ran = False
    with pytest.raises(BackendUnavailable, match="Could not record a lineage event"), emitter.step("churn.train"):
        ran = True
    assert not ran


# --- The OpenLineage schema -------------------------------------------------------------------------
#
# openlineage-python ships no JSON Schema files: its classes are generated from the spec
# (OpenLineage.json and facets/*.json) and name them in each object's schemaURL / _schemaURL.
# The schema is rebuilt here from those generated classes, one $defs entry per class under the
# exact URL it names: the fields and their types, the required ones, the enums, and the formats
# (date-time, uri, uuid) the generator turned into validators. No network at test time.


def _format(field: Any) -> dict[str, str]:
    if not inspect.isfunction(field.validator):
        return {}
    source = inspect.getsource(field.validator)
    for marker, name in (("dateutil", "date-time"), ("urlparse", "uri"), ("UUID(", "uuid")):
        if marker in source:
            return {"format": name}
    return {}


def _type_schema(kind: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        # The client's serializer drops None, so an optional field is absent rather than null.
        options = [_type_schema(arg) for arg in args if arg is not type(None)]
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if kind in simple:
        return {"type": simple[kind]}
    if kind is Any:
        return {}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return {"enum": [member.value for member in kind]}
    if attr.has(kind):
        # A class with its own schema URL is a $defs entry; a nested helper class is inlined.
        return {"$ref": kind._get_schema()} if "_get_schema" in vars(kind) else _object_schema(kind)
    raise TypeError(f"no JSON Schema for {kind!r}")


def _object_schema(cls: type) -> dict[str, Any]:
    attr.resolve_types(cls)
    properties, required = {}, []
    for field in attr.fields(cls):
        properties[field.name] = _type_schema(field.type) | _format(field)
        # Required: no default, or a fixed value the client always fills in (producer, schema URL).
        if field.default is attr.NOTHING or (field.default is not None and not isinstance(field.default, attr.Factory)):
            required.append(field.name)
    return {"type": "object", "properties": properties, "required": required}


def openlineage_registry() -> Registry[Any]:
    import openlineage.client.generated as generated

    documents: dict[str, dict[str, Any]] = {}
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module.__name__ and attr.has(cls) and "_get_schema" in vars(cls):
                document, _, pointer = cls._get_schema().partition("#/$defs/")
                entry = documents.setdefault(document, {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {}})
                entry["$id"] = document
                entry["$defs"][pointer] = _object_schema(cls)
    for path in sorted(VENDORED_SCHEMAS.glob("**/*.json")):
        official = json.loads(path.read_text())
        documents[official["$id"]] = official
    return Registry().with_resources((url, Resource.from_contents(doc)) for url, doc in documents.items())


def _facets(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "_schemaURL" in value:
            yield value
        for item in value.values():
            yield from _facets(item)
    elif isinstance(value, list):
        for item in value:
            yield from _facets(item)


def validate_event(event: dict[str, Any], registry: Registry[Any]) -> None:
    """The event against its schemaURL, then every facet in it against the facet's own _schemaURL."""
    checks = [(event, event["schemaURL"])] + [(facet, facet["_schemaURL"]) for facet in _facets(event)]
    for instance, url in checks:
        validator = Draft202012Validator({"$ref": url}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
        validator.validate(instance)


@pytest.fixture(scope="module")
def registry() -> Registry[Any]:
    return openlineage_registry()


def test_every_event_validates_against_the_openlineage_schema(tmp_path: Path, registry: Registry[Any]) -> None:
    run_pipeline(LineageEmitter(namespace="churn", directory=tmp_path))
    events = read_events(tmp_path)
    schema_urls = {e["schemaURL"] for e in events} | {f["_schemaURL"] for e in events for f in _facets(e)}
    assert "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent" in schema_urls
    for facet in ("SchemaDatasetFacet", "DatasetVersionDatasetFacet", "ParentRunFacet", "ErrorMessageRunFacet"):
        assert any(f"/{facet}.json#" in url for url in schema_urls), facet
    for event in events:
        validate_event(event, registry)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("run", "runId"), "run-42"),  # not a UUID
        (("eventTime",), "yesterday"),  # not a date-time
        (("eventType",), "DONE"),  # not a run state
        (("inputs", 0, "facets", "schema", "fields", 0, "name"), 7),  # a column name must be a string
        (("run", "facets", "errorMessage", "programmingLanguage"), None),  # required by the facet
        (("run", "facets", "parent", "_producer"), None),  # every facet names its producer
    ],
)
def test_the_schema_rejects_a_broken_event(
    tmp_path: Path, registry: Registry[Any], path: tuple[str | int, ...], value: object
) -> None:
    run_pipeline(LineageEmitter(namespace="churn", directory=tmp_path))
    fail = next(e for e in read_events(tmp_path) if e["eventType"] == "FAIL")
    validate_event(fail, registry)
    broken = copy.deepcopy(fail)
    target = broken
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(ValidationError):
        validate_event(broken, registry)


# --- The HTTP endpoint --------------------------------------------------------------------------------


class LineageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), LineageHandler)
        self.status = status
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class LineageHandler(BaseHTTPRequestHandler):
    server: LineageServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads what arrived instead
        pass


@pytest.fixture
def lineage_server(request: pytest.FixtureRequest) -> Iterator[LineageServer]:
    server = LineageServer(getattr(request, "param", 201))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def test_an_endpoint_receives_every_event_the_file_records(
    tmp_path: Path, lineage_server: LineageServer, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = LineageEmitter(namespace="churn", directory=tmp_path, url=lineage_server.url + "/", api_key="s3cret")
    with caplog.at_level(logging.WARNING, logger="shipyard.lineage"):
        run_pipeline(emitter)

    assert {path for path, _, _ in lineage_server.received} == {"/api/v1/lineage"}
    assert all(headers["Authorization"] == "Bearer s3cret" for _, headers, _ in lineage_server.received)
    assert all(headers["Content-Type"] == "application/json" for _, headers, _ in lineage_server.received)
    assert [body for _, _, body in lineage_server.received] == read_events(tmp_path)
    assert not caplog.records


def test_an_endpoint_under_a_base_path_keeps_it(tmp_path: Path, lineage_server: LineageServer) -> None:
    emitter = LineageEmitter(namespace="churn", directory=tmp_path, url=lineage_server.url + "/marquez")
    with emitter.step("churn.train"):
        pass
    assert [path for path, _, _ in lineage_server.received] == ["/marquez/api/v1/lineage"] * 2


@pytest.mark.parametrize("lineage_server", [500, 400], indirect=True, ids=["server-error", "rejected"])
def test_a_failing_endpoint_costs_a_warning_not_the_step(
    tmp_path: Path, lineage_server: LineageServer, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = LineageEmitter(namespace="churn", directory=tmp_path, url=lineage_server.url)
    with caplog.at_level(logging.WARNING, logger="shipyard.lineage"), emitter.step("churn.train") as train:
        train.add_output(MODEL)

    assert [e["eventType"] for e in read_events(tmp_path)] == ["START", "COMPLETE"]
    assert lineage_server.received  # it was asked, and said no
    ours = [r for r in caplog.records if r.name == "shipyard.lineage"]
    assert len(ours) == 2
    assert all(f"{lineage_server.url}/api/v1/lineage" in r.getMessage() for r in ours)
    assert str(lineage_server.status) in ours[0].getMessage()


def test_an_unreachable_endpoint_costs_a_warning_not_the_step(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = closed_port_url()
    emitter = LineageEmitter(namespace="churn", directory=tmp_path, url=url, timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="shipyard.lineage"), emitter.step("churn.train", inputs=[DATA]) as train:
        train.add_output(MODEL)

    events = read_events(tmp_path)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["outputs"][0]["name"] == "models/churn/3"
    ours = [r for r in caplog.records if r.name == "shipyard.lineage"]  # urllib3 also warns as it retries
    assert [r.levelno for r in ours] == [logging.WARNING, logging.WARNING]
    for record, state in zip(ours, ("START", "COMPLETE"), strict=True):
        message = record.getMessage()
        assert record.name == "shipyard.lineage"
        assert f"{state} event of churn.train" in message
        assert f"{url}/api/v1/lineage" in message
        assert "Connection refused" in message or "Failed to establish" in message
        assert f"kept locally in {emitter.events_path()}" in message


def test_importing_the_module_does_not_load_openlineage() -> None:
    code = "import sys, shipyard.lineage; print('openlineage' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
