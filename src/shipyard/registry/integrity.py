"""Whether a registered version's files may be loaded: the digests recorded at registration.

Loading a scikit-learn model deserialises it, and deserialising can run code, so a
registered version is loaded only when its files are byte for byte the ones recorded at
registration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.domain.errors import Conflict, InvalidSpec

# MLflow writes this into a model folder after registration: it names the registered model, it is not the model.
NOT_MODEL_FILES = frozenset({"registered_model_meta"})
# MLflow's default when an MLmodel's sklearn flavor names no format (models logged before skops existed).
MLFLOW_DEFAULT_FORMAT = "pickle"


class IntegrityRefused(Conflict):
    """Shipyard refuses to load a model's files. Not retryable: someone has to repair the files or
    the trust decision, so it is a conflict with the recorded state, not an unavailable backend."""

    code = "integrity"


class TamperedModel(IntegrityRefused):
    """A version's files no longer match the digests recorded when it was registered."""

    code = "tampered"


class UnverifiedModel(IntegrityRefused):
    """A version registered before Shipyard recorded digests: its files cannot be checked."""

    code = "unverified"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFiles:
    """A model loaded from a private copy of its files, with what was read from exactly that copy."""

    model: Any
    digests: dict[str, str]
    serialization_format: str
    mlmodel: dict[str, Any]
    input_example: Any | None = None


@dataclass(frozen=True, slots=True)
class Differences:
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.unexpected)

    def describe(self) -> str:
        parts = (("changed", self.changed), ("missing", self.missing), ("unexpected", self.unexpected))
        return "; ".join(f"{label}: {', '.join(names)}" for label, names in parts if names)


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by its path relative to the folder."""
    digests = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_MODEL_FILES):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return digests


def differences(expected: Mapping[str, str], actual: Mapping[str, str]) -> Differences:
    return Differences(
        changed=tuple(sorted(n for n in expected if n in actual and actual[n] != expected[n])),
        missing=tuple(sorted(n for n in expected if n not in actual)),
        unexpected=tuple(sorted(n for n in actual if n not in expected)),
    )


def require_digests(subject: str, expected: Mapping[str, str] | None) -> Mapping[str, str]:
    """The recorded digests; a version without them is refused (fail closed): nothing says its files are the registered ones."""
    if not expected:
        raise UnverifiedModel(
            f"refusing to load {subject}: it was registered before Shipyard recorded the digests of model files, "
            "so nothing shows that its files are the ones that were registered",
            hint="Register the model again (`shipyard pipeline run`, or `shipyard register --run-id` on its run) "
            "and promote the new version.",
        )
    return expected


def check(subject: str, source: str, expected: Mapping[str, str] | None, actual: Mapping[str, str]) -> None:
    """Raise TamperedModel unless ``actual`` are exactly the digests recorded for ``subject``."""
    found = differences(require_digests(subject, expected), actual)
    if found:
        raise TamperedModel(
            f"refusing to load {subject}: its files differ from the digests recorded at registration ({found.describe()}) "
            f"at {source}",
            hint="Someone changed the model's files after it was registered. Restore the original files, "
            "or register the model again (`shipyard pipeline run`) and promote the new version.",
        )


def read_mlmodel(folder: Path, source: str) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidSpec(f"no MLflow model at {source}: it has no MLmodel file") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidSpec(f"the MLmodel file of {source} cannot be read: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InvalidSpec(f"the MLmodel file of {source} is not a YAML mapping")
    return loaded


def sklearn_flavor(mlmodel: Mapping[str, Any], source: str) -> dict[str, Any]:
    flavor = (mlmodel.get("flavors") or {}).get("sklearn")
    if not isinstance(flavor, dict):
        found = ", ".join(sorted(mlmodel.get("flavors") or {})) or "none"
        raise InvalidSpec(
            f"the model at {source} is not a scikit-learn model (its flavors: {found})",
            hint="Shipyard governs models logged with the scikit-learn flavor (mlflow.sklearn.log_model).",
        )
    return flavor


def serialization_format(flavor: Mapping[str, Any]) -> str:
    return str(flavor.get("serialization_format") or MLFLOW_DEFAULT_FORMAT)
