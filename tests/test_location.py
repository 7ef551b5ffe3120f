"""The shared location in an object store: the prediction log, labels and lineage events written to and read from a
real S3-compatible server (moto's), and the clear refusals where an object store cannot do what is asked."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from shipyard import costs
from shipyard.cli import app
from shipyard.config import load_settings
from shipyard.domain.errors import BackendUnavailable, InvalidSpec
from shipyard.labels import ingest, read_labels
from shipyard.lineage import LineageEmitter, read_events
from shipyard.location import Location
from shipyard.predlog import PredictionLog, find_request, read_log
from shipyard.service import Shipyard

NOW = datetime.now(UTC).timestamp()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe closes


def log_batch(log: PredictionLog, ids: list[str], model: str = "churn") -> None:
    n = len(ids)
    log.append(
        model=model,
        version=1,
        request_ids=ids,
        received_at=[NOW] * n,
        routing=["champion"] * n,
        features={"tenure": list(range(n)), "customer_id": [f"c{i}" for i in range(n)]},
        predictions=[1] * n,
        scores=[0.7] * n,
        latency_ms=[1.0] * n,
        status=[200] * n,
    )


def objects(location: Location) -> list[str]:
    import pyarrow.fs as pafs

    found = location.filesystem().get_file_info(pafs.FileSelector(location.path, recursive=True, allow_not_found=True))
    return sorted(info.path.removeprefix(location.path + "/") for info in found if info.type == pafs.FileType.File)


def test_the_log_labels_and_lineage_live_in_the_object_store(s3_shared: str, tmp_path: Path) -> None:
    shared = Location.shared(s3_shared)
    predictions, labels, lineage = shared / "predictions", shared / "labels", shared / "lineage"
    # Two writers, as two replicas are, into one prefix.
    for replica in ("a", "b"):
        with PredictionLog(predictions, flush_seconds=0.05) as log:
            log_batch(log, [f"{replica}-{i}" for i in range(3)])
        assert log.written_rows == 3 and log.dropped_rows == 0
    names = objects(predictions)
    assert len(names) == 2 and all(n.startswith("model=churn/date=") and "/part-" in n and n.endswith(".parquet") for n in names)

    rows = read_log(predictions, model="churn").to_pandas()
    assert sorted(rows["request_id"]) == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]
    assert read_log(predictions, model="churn", until=datetime(2000, 1, 1, tzinfo=UTC)).num_rows == 0
    assert [r["request_id"] for r in find_request(predictions, "b-1")] == ["b-1"]
    assert costs.log_bytes(predictions, "churn") > 0

    label_file = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["a-0", "b-2", "zz"], "churned": [1, 0, 1]}).to_csv(label_file, index=False)
    done = ingest(label_file, model="churn", log_root=predictions, labels_root=labels, label_column="churned")
    assert (done.matched, done.unmatched, done.stored) == (2, 1, 2) and done.path and done.path.startswith("s3://")
    again = ingest(label_file, model="churn", log_root=predictions, labels_root=labels, label_column="churned")
    assert (again.stored, again.unchanged) == (0, 2)  # read back from the store: nothing stored twice
    stored = read_labels(labels, "churn").to_pydict()
    assert dict(zip(stored["request_id"], stored["label"], strict=True)) == {"a-0": 1, "b-2": 0}

    emitter = LineageEmitter(namespace="churn", directory=lineage)
    with emitter.step("churn.train"):
        pass
    assert [e["eventType"] for e in read_events(lineage)] == ["START", "COMPLETE"]
    assert costs.lineage_bytes(lineage, ["churn"])["churn"] > 0
    assert len(objects(lineage)) == 2  # one object per event: an object store cannot append
    # Nothing half-written or temporary was left: every object is under its final name.
    assert not [n for n in objects(shared) if "/." in n or n.endswith(".tmp")]


def test_a_failed_flush_keeps_its_rows_then_counts_and_logs_what_it_drops(
    s3_shared: str, caplog: pytest.LogCaptureFixture
) -> None:
    gone = Location.shared("s3://a-bucket-since-deleted/shared")  # fails at once; an unreachable endpoint retries first
    log = PredictionLog(gone / "predictions", max_pending_rows=4)
    log_batch(log, ["r-0", "r-1", "r-2"])
    with pytest.raises(BackendUnavailable, match=r"deploy\.shared_path"):
        log.flush()
    assert (log.pending_rows, log.dropped_rows) == (3, 0)  # kept for the next flush
    log_batch(log, ["r-3", "r-4", "r-5"])
    with caplog.at_level(logging.ERROR, logger="shipyard.predlog"), pytest.raises(BackendUnavailable):
        log.flush()
    assert log.dropped_rows == 3 and log.pending_rows == 3 and log.written_rows == 0
    assert any("dropping 3 prediction-log rows" in r.getMessage() for r in caplog.records)


def test_a_missing_bucket_or_an_unknown_option_is_one_clear_error(s3_shared: str) -> None:
    with pytest.raises(BackendUnavailable, match=r"bucket 'no-such-bucket' .* does not exist") as caught:
        Location.shared("s3://no-such-bucket/shared").check()
    assert "Create the bucket" in (caught.value.hint or "")
    with pytest.raises(InvalidSpec, match=r"not a URI pyarrow can open.*timeout"):
        Location.shared(s3_shared + "?timeout=3").check()
    Location.shared(s3_shared).check()  # the real bucket passes


def test_serve_refuses_an_unreachable_store_before_serving(project: Path, s3_shared: str) -> None:
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["deploy"] = {"shared_path": s3_shared, "shared_endpoint": f"http://127.0.0.1:{closed_port()}"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(app, ["--project", str(project), "serve", "--port", "0"], env={"SHIPYARD_PROJECT": ""})
    assert result.exit_code == BackendUnavailable.exit_code, result.output
    assert "could not reach" in result.output and s3_shared in result.output and "Traceback" not in result.output
    assert "AWS_ENDPOINT_URL" in result.output  # what to check


def test_retention_leaves_a_log_in_an_object_store_alone_and_says_why(project: Path, s3_shared: str) -> None:
    config = project / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["deploy"] = {"shared_path": s3_shared}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    with Shipyard.open(project, actor="ada", env={}) as service:
        old = NOW - 10 * 86400  # a day retention would compact on a local disk
        with PredictionLog(service.settings.predictions_dir) as log:
            log.append(
                model="churn",
                version=1,
                request_ids=["old-0", "old-1"],
                received_at=[old, old],
                routing=["champion"] * 2,
                features={"tenure": [1, 2]},
                predictions=[1, 0],
                scores=[0.6, 0.4],
                latency_ms=[1.0, 1.0],
                status=[200, 200],
            )
        before = objects(service.settings.predictions_dir)
        plan = service.retention_plan()
        assert plan.actions == ()
        assert [k["rule"] for k in plan.kept] == ["retention.predictions"] and "lifecycle" in plan.kept[0]["why"]
        assert service.retention_apply().done == ()
        assert objects(service.settings.predictions_dir) == before
        (churn,) = [m for m in service.costs("30d").models if m.model == "churn"]
        assert churn.logged_rows == 2 and churn.log_bytes > 0


@pytest.mark.parametrize(
    ("deploy", "retention", "expected"),
    [
        ({"shared_path": "gs://bucket/x"}, {}, "scheme 'gs'"),
        ({"shared_path": "s3:///x"}, {}, "no bucket"),
        ({"shared_path": "shared", "shared_endpoint": "http://minio:9000"}, {}, "shared_endpoint is set"),
        ({"shared_path": "s3://bucket/x"}, {"predictions": {"compact_after": "1d"}}, "retention.predictions.compact_after"),
        ({"shared_path": "s3://bucket/x"}, {"predictions": {"delete_after": "90d"}}, "retention.predictions.delete_after"),
    ],
)
def test_settings_an_object_store_cannot_honour_are_refused(
    tmp_path: Path, deploy: dict[str, str], retention: dict[str, object], expected: str
) -> None:
    (tmp_path / "shipyard.yaml").write_text(yaml.safe_dump({"project": "p", "deploy": deploy, "retention": retention}))
    with pytest.raises(InvalidSpec, match=expected):
        load_settings(tmp_path, env={})


def test_an_object_store_keeps_the_default_retention_and_resolves_its_paths(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text(yaml.safe_dump({"project": "p", "deploy": {"shared_path": "s3://b/x/"}}))
    settings = load_settings(tmp_path, env={})
    assert str(settings.predictions_dir) == "s3://b/x/predictions" and settings.predictions_dir.local is None
    (tmp_path / "shipyard.yaml").write_text(yaml.safe_dump({"project": "p", "deploy": {"shared_path": "rel"}}))
    assert load_settings(tmp_path, env={}).labels_dir.local == tmp_path / "rel" / "labels"
