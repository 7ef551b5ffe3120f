"""The exact requirements of a model: the distributions its classes come from, pinned.

MLflow's own inference imports the model in a subprocess (about 5 s a model) and pins whatever
else the process had imported; walking the model's pickle graph is exact and takes milliseconds.
Which distribution provides a module is `importlib.metadata.packages_distributions()`, which
reads the file list of every installed distribution — about a second on a full environment —
so its answer is kept in a cache keyed by the environment's folders and their modification
times (installing or removing anything changes them).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

CACHE_FILE = "packages-distributions-{key}.json"


def model_requirements(model: Any, *, cache_dir: Path | None = None) -> list[str]:
    """Pin exactly the distributions whose classes the model is made of (and MLflow's, which saved it)."""
    import importlib.metadata as md
    import io

    modules: set[str] = {"skops", "pandas", "numpy"}

    class _Walker(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            owner = obj if isinstance(obj, type) else type(obj)
            modules.add(owner.__module__.partition(".")[0])
            return NotImplemented

    _Walker(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    by_module = packages_distributions(cache_dir)
    pins: set[str] = {f"mlflow=={md.version('mlflow')}"}
    for module in modules:
        if module in sys.stdlib_module_names or module in ("builtins", "mlflow"):
            continue
        for dist in by_module.get(module, []):
            try:
                pins.add(f"{dist}=={md.version(dist)}")
            except md.PackageNotFoundError:
                continue
    return sorted(pins, key=str.lower)


def packages_distributions(cache_dir: Path | None) -> dict[str, list[str]]:
    """`importlib.metadata.packages_distributions()`, read from ``cache_dir`` while the environment is unchanged."""
    import importlib.metadata as md

    if cache_dir is None:
        return {k: list(v) for k, v in md.packages_distributions().items()}
    path = cache_dir / CACHE_FILE.format(key=environment_key())
    try:
        cached: dict[str, list[str]] = json.loads(path.read_text(encoding="utf-8"))
        return cached
    except (OSError, ValueError):
        pass
    found = {k: list(v) for k, v in md.packages_distributions().items()}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(found, sort_keys=True), encoding="utf-8")
        partial.replace(path)  # readers see the whole file or none
    except OSError:
        pass  # a cache that cannot be written costs the next command its second, nothing else
    return found


def environment_key() -> str:
    """What the installed distributions depend on: the folders they are installed in and when each last
    changed (installing, upgrading or removing a distribution adds or removes entries there). Other
    import path entries, such as the working folder, change all the time and hold no distribution."""
    sites = [entry for entry in sys.path if os.path.basename(entry) in ("site-packages", "dist-packages")]
    parts = [sys.version]
    for entry in sites or sys.path:
        try:
            parts.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
