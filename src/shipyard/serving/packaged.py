"""Serving a packaged version (`shipyard serve --package DIR`): the container's gateway, without a store.

The package's manifest stands in for the store (one deployment: that version, as champion) and its model files
for the registry's. The files are checked against the recorded digests before anything is served, and again
by the registry when the gateway loads them, so a changed file stops the start instead of serving.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.domain.entities import Deployment, ModelVersion
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.stages import Stage

if TYPE_CHECKING:
    from shipyard.serving.gateway import Gateway, GatewayConfig


class PackagedState:
    """What the gateway reads from a store, answered from a package's manifest."""

    def __init__(self, folder: Path) -> None:
        path = folder / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidSpec(
                f"{path} cannot be read as a package manifest ({exc})", hint="Point --package at a `shipyard package` folder."
            ) from None
        at = datetime.fromisoformat(self.manifest["registered_at"])
        self.version = ModelVersion(
            model=self.manifest["model"],
            version=int(self.manifest["version"]),
            stage=Stage.PRODUCTION,
            run_id=self.manifest.get("run_id"),
            source=str((folder / "model").resolve()),
            data_uri=self.manifest.get("data_uri"),
            data_fingerprint=self.manifest.get("data_fingerprint"),
            git_commit=self.manifest.get("git_commit"),
            metrics=self.manifest.get("metrics") or {},
            files_sha256=self.manifest.get("files_sha256"),
            registered_by=self.manifest.get("registered_by") or "unknown",
            registered_at=at,
            updated_at=at,
        )

    def token_hashes(self) -> dict[str, Any]:
        return {}

    def serving_generation(self) -> int:
        return 1

    def deployments(self, models: list[str] | None = None) -> list[Deployment]:
        return [Deployment(model=self.version.model, champion=self.version.version)]

    def get_version(self, model: str, version: int) -> ModelVersion:
        return self.version

    def evidence(self, model: str, version: int) -> dict[str, Any]:
        equivalence = self.manifest.get("serving_equivalence")
        return {"serving_equivalence": equivalence} if equivalence else {}


def packaged_gateway(folder: Path, config: GatewayConfig) -> Gateway:
    """A gateway serving the package in ``folder``; TamperedModel when a file differs from its recorded digest."""
    from shipyard.registry import Registry, integrity
    from shipyard.serving.gateway import Gateway

    state = PackagedState(folder)
    version = state.version
    digests = integrity.require_digests(version.subject, version.files_sha256)
    integrity.check(version.subject, version.source, digests, integrity.file_digests(Path(version.source)))
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-package-"))  # no tracking server: the files are local
    registry = Registry(f"file://{scratch}", f"file://{scratch}", cache_dir=scratch / "cache")
    return Gateway(state, registry, config)  # type: ignore[arg-type]  # the package stands in for the store
