"""A registered version is loaded (or promoted) only when its files are the ones recorded at registration."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from mlflow_store import model_folder, small_frame
from shipyard.domain.entities import ModelVersion
from shipyard.domain.errors import Conflict, http_status
from shipyard.registry import Registry, TamperedModel, UnverifiedModel


def append_a_byte(folder: Path) -> None:
    with (folder / "model.skops").open("ab") as handle:
        handle.write(b"\0")


def remove_the_example(folder: Path) -> None:
    (folder / "input_example.json").unlink()


def add_a_file(folder: Path) -> None:
    (folder / "extra.py").write_text("import os\n")


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (append_a_byte, "changed: model.skops"),
        (remove_the_example, "missing: input_example.json"),
        (add_a_file, "unexpected: extra.py"),
    ],
    ids=["changed", "missing", "unexpected"],
)
def test_a_tampered_version_is_refused_by_the_check_and_by_the_load(
    registry: Registry, registered: ModelVersion, tamper: Callable[[Path], None], named: str
) -> None:
    tamper(model_folder(registered))
    for attempt in (lambda: registry.verify_version(registered), lambda: registry.load_version(registered)):
        with pytest.raises(TamperedModel) as caught:
            attempt()
        error = caught.value
        assert "refusing to load churn/1" in error.message and named in error.message
        assert "differ from the digests recorded at registration" in error.message
        assert "Restore the original files" in (error.hint or "") and "register the model again" in (error.hint or "")


def test_every_difference_is_named_in_one_error(registry: Registry, registered: ModelVersion) -> None:
    folder = model_folder(registered)
    append_a_byte(folder)
    remove_the_example(folder)
    add_a_file(folder)
    with pytest.raises(TamperedModel) as caught:
        registry.verify_files(registered.source, registered.files_sha256, subject=registered.subject)
    assert "changed: model.skops; missing: input_example.json; unexpected: extra.py" in caught.value.message


def test_an_intact_version_loads_from_the_files_it_checked(registry: Registry, registered: ModelVersion) -> None:
    registry.verify_version(registered)
    loaded = registry.load_version(registered)
    assert loaded.digests == registered.files_sha256 and loaded.serialization_format == "skops"
    assert loaded.mlmodel["flavors"]["sklearn"]["pickled_model"] == "model.skops"
    assert loaded.input_example["columns"] == ["age", "income"]
    frame, _ = small_frame(rows=5, seed=1)
    assert loaded.model.predict_proba(frame).shape == (5, 2)


def test_a_version_registered_before_digests_were_recorded_is_refused(registry: Registry, registered: ModelVersion) -> None:
    """Fail closed: nothing shows that its files are the registered ones."""
    unrecorded = dataclasses.replace(registered, files_sha256=None)
    for attempt in (lambda: registry.verify_version(unrecorded), lambda: registry.load_version(unrecorded)):
        with pytest.raises(UnverifiedModel) as caught:
            attempt()
        assert "refusing to load churn/1" in caught.value.message and "Register the model again" in (caught.value.hint or "")


def test_an_integrity_refusal_is_a_conflict_not_an_outage(registry: Registry, registered: ModelVersion) -> None:
    """Retrying cannot help (503 would say it may); someone has to restore the files or register again."""
    append_a_byte(model_folder(registered))
    with pytest.raises(Conflict) as caught:
        registry.load_version(registered)
    assert http_status(caught.value) == 409 and caught.value.code == "tampered" and caught.value.exit_code == 4
