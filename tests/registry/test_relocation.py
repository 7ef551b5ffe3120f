"""A project folder can be copied or moved: the copy reads, checks and writes only its own files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlflow_store import embedded_registry, model_folder, register_small_model, small_frame
from shipyard.domain.entities import ModelVersion
from shipyard.registry import Registry, TamperedModel


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///work/a/proj/.shipyard/artifacts/1/model", "file:///srv/b/.shipyard/artifacts/1/model"),
        ("/work/a/proj/.shipyard/artifacts/0", "/srv/b/.shipyard/artifacts/0"),
        ("file:///work/a/proj", "file:///srv/b"),
        ("file:///work/a/proj/my%20runs/x/", "file:///srv/b/my%20runs/x/"),
        ("file:///work/a/proj2/model", "file:///work/a/proj2/model"),  # a sibling folder, not under the root
        ("file:///elsewhere/model", "file:///elsewhere/model"),
        ("s3://bucket/work/a/proj/model", "s3://bucket/work/a/proj/model"),
        ("models:/churn/1", "models:/churn/1"),
        ("runs:/abc/model", "runs:/abc/model"),
    ],
)
def test_relocate_moves_only_what_lies_under_the_old_root(uri: str, expected: str) -> None:
    from shipyard.registry import relocate

    assert relocate(uri, Path("/work/a/proj"), Path("/srv/b")) == expected


def test_relocate_keeps_percent_encoding_of_the_new_root() -> None:
    from shipyard.registry import relocate

    moved = relocate("file:///old%20place/.shipyard/artifacts/x", Path("/old place"), Path("/new place"))
    assert moved == "file:///new%20place/.shipyard/artifacts/x"


def mlflow_locations(registry: Registry) -> list[str]:
    """Every artifact location MLflow holds for the store: experiments, runs and model versions."""
    client = registry.client
    found = [e.artifact_location for e in client.search_experiments()]
    for experiment in client.search_experiments():
        found += [r.info.artifact_uri for r in client.search_runs([experiment.experiment_id])]
    for mv in client.search_model_versions():
        found += [mv.source, client.get_model_version_download_uri(mv.name, mv.version)]
    return found


def copy_of(root: Path, target: Path) -> Path:
    shutil.copytree(root, target)
    return target


def test_a_copy_reads_only_its_own_files_while_the_original_still_exists(tmp_path: Path) -> None:
    original = tmp_path / "original"
    version = register_small_model(embedded_registry(original))
    copy = copy_of(original, tmp_path / "copy")
    in_copy = embedded_registry(copy)
    # Every location MLflow holds now lies in the copy; the store's source (recorded in the original) resolves there too.
    assert all(loc.startswith((copy.as_uri(), str(copy))) for loc in mlflow_locations(in_copy)), mlflow_locations(in_copy)
    assert in_copy.local_model_dir(version.source) == copy / model_folder(version).relative_to(original)
    in_copy.verify_version(version)
    # A change to the original's files is none of the copy's business; a change to the copy's is.
    tamper(model_folder(version))
    in_copy.verify_version(version)
    assert in_copy.load_version(version).digests == version.files_sha256
    with pytest.raises(TamperedModel, match=r"changed: model\.skops"):
        embedded_registry(original).verify_version(version)
    tamper(copy / model_folder(version).relative_to(original))
    with pytest.raises(TamperedModel, match=r"changed: model\.skops"):
        in_copy.load_version(version)


def tamper(folder: Path) -> None:
    with (folder / "model.skops").open("ab") as handle:
        handle.write(b"\0")


def test_a_moved_store_serves_plain_mlflow_by_alias_and_logs_new_runs_in_place(tmp_path: Path) -> None:
    import mlflow
    import mlflow.pyfunc

    original = tmp_path / "original"
    registry = embedded_registry(original)
    version = register_small_model(registry)
    registry.client.set_registered_model_alias("churn", "production", "1")
    moved = tmp_path / "moved"
    shutil.move(original, moved)
    in_moved = embedded_registry(moved)
    assert in_moved.aliases("churn") == {"production": 1}  # the first use repairs the store
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(in_moved.tracking_uri)
    try:
        served = mlflow.pyfunc.load_model("models:/churn@production")
    finally:
        mlflow.set_tracking_uri(previous)
    assert served.predict(small_frame(rows=3)[0]).shape == (3,)
    # The run's artifacts download from the moved folder; a new version is logged there.
    assert version.run_id is not None
    downloaded = in_moved.download_artifact(version.run_id, "model", tmp_path / "download")
    assert (downloaded / "MLmodel").is_file()
    second = register_small_model(in_moved)
    assert second.source.startswith(moved.as_uri()) and second.version == 2
    assert in_moved.model_source(version.run_id, "model").startswith(moved.as_uri())


def test_the_repair_is_recorded_once_and_a_second_move_repairs_again(tmp_path: Path) -> None:
    first = register_small_model(embedded_registry(tmp_path / "a"))
    shutil.move(tmp_path / "a", tmp_path / "b")
    in_b = embedded_registry(tmp_path / "b")
    assert in_b.relocation is not None and in_b.relocation.moved_from == (tmp_path / "a",)
    assert embedded_registry(tmp_path / "b").relocation is None  # nothing left to repair
    second = register_small_model(in_b)
    shutil.move(tmp_path / "b", tmp_path / "c")
    in_c = embedded_registry(tmp_path / "c")
    assert in_c.relocation is not None and in_c.relocation.moved_from == (tmp_path / "b",)
    assert set(in_c.previous_roots) == {tmp_path / "a", tmp_path / "b"}
    for version in (first, second):  # sources recorded at a and at b both resolve in c
        assert in_c.load_version(version).digests == version.files_sha256
    assert all(loc.startswith(((tmp_path / "c").as_uri(), str(tmp_path / "c"))) for loc in mlflow_locations(in_c))


def test_mlflows_default_experiment_keeps_its_files_in_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow puts experiment 0's artifacts under the creating process's working folder (./mlruns)."""
    monkeypatch.chdir(tmp_path)
    registry = embedded_registry(tmp_path / "project")
    registry.experiment_id("tests")
    default = registry.client.get_experiment("0").artifact_location
    assert default == (tmp_path / "project" / ".shipyard" / "artifacts" / "0").as_uri()


def test_a_store_outside_the_project_layout_is_never_rewritten(tmp_path: Path) -> None:
    """A tracking database shared by several projects holds their locations as they are."""
    from mlflow_store import local_registry

    shared = local_registry(tmp_path / "shared")
    version: ModelVersion = register_small_model(shared)
    before = mlflow_locations(shared)
    shutil.copytree(tmp_path / "shared", tmp_path / "copy")
    copied = local_registry(tmp_path / "copy")
    assert copied.relocation is None and copied.previous_roots == ()
    assert mlflow_locations(copied) == before
    assert copied.local_model_dir(version.source) == model_folder(version)
