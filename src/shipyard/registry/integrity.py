"""Whether a model's files may be loaded: recorded digests, and formats whose loading runs code.

Loading a scikit-learn model deserialises it, and deserialising can run code: always for
pickle and cloudpickle, and for skops when the file asks to trust types beyond
scikit-learn's (the list of trusted types is read from the model's own MLmodel file), or
when the MLmodel names code folders to import. So a registered version is loaded only when
its files are byte for byte the ones recorded at registration, and a model that is not
registered yet (a run being adopted) only when its format cannot run code, unless the
caller says the run is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.domain.errors import Conflict, InvalidSpec

# MLflow writes this into a model folder after registration: it names the registered model, it is not the model.
NOT_MODEL_FILES = frozenset({"registered_model_meta"})
PICKLE_FORMATS = frozenset({"pickle", "cloudpickle"})
TRUST_FLAG = "--trust-pickle"
# MLflow's default when an MLmodel's sklearn flavor names no format (models logged before skops existed).
MLFLOW_DEFAULT_FORMAT = "pickle"
# Types a skops file may ask to trust without the run being trusted: scikit-learn's own
# (a gradient boosting's TreePredictor, say). Anything else can be a callable that runs code.
SAFE_TYPE_PREFIXES = ("sklearn.",)


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


class UntrustedFormat(IntegrityRefused):
    """A model not registered yet whose loading would run code from its files."""

    code = "untrusted_format"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFiles:
    """A model loaded from a private copy of its files, with what was read from exactly that copy."""

    model: Any
    digests: dict[str, str]
    serialization_format: str
    mlmodel: dict[str, Any]
    input_example: Any | None = None
    onnx: bytes | None = None  # the model converted to ONNX, read from the same checked copy


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
    from shipyard.data import sha256_file

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_MODEL_FILES)
    return {path.relative_to(folder).as_posix(): sha256_file(path) for path in files}


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


def refuse_untrusted(folder: Path, flavor: Mapping[str, Any], *, source: str, run_id: str | None) -> None:
    """Raise UntrustedFormat when loading the model at ``folder`` would run code from its files."""
    found = serialization_format(flavor)
    of_run = f"run {run_id}" if run_id else source
    if found in PICKLE_FORMATS:
        reason = f"it is saved as {found}, and loading {found} runs whatever code the file holds"
    elif flavor.get("code"):
        reason = f"its MLmodel names a code folder ({flavor['code']}) that loading imports"
    else:
        risky = sorted(t for t in _types_to_trust(folder, flavor) if not t.startswith(SAFE_TYPE_PREFIXES))
        if not risky:
            return
        reason = f"its skops file needs types trusted beyond scikit-learn's ({', '.join(risky)}), which can run code"
    raise UntrustedFormat(
        f"refusing to load the model of {of_run}: {reason}",
        hint=f"Log the model with serialization_format='skops', or pass {TRUST_FLAG} if you trust the run and whoever "
        "could write its artifacts.",
    )


def _types_to_trust(folder: Path, flavor: Mapping[str, Any]) -> list[str]:
    """Every type the skops file needs beyond skops' defaults: those it would load, and those its MLmodel trusts."""
    import skops.io

    path = folder / str(flavor.get("pickled_model") or "model.skops")
    try:
        needed = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises many types on a malformed file; all mean "not loadable"
        raise InvalidSpec(f"the skops file {path.name} cannot be read: {exc}") from exc
    listed = flavor.get("skops_trusted_types") or []
    return sorted({*needed, *(str(t) for t in listed)})
