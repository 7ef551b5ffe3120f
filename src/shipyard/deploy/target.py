"""What one exported model serves, and the resources it asks for: the input every manifest is built from."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.config import AlertRule, DeploySpec

PORT = 8080
# A Python process with NumPy, pandas and scikit-learn loaded, before any model: what a replica needs at least.
BASE_MEMORY_MB = 384
DEFAULT_RESOURCES = {"requests": {"cpu": "500m", "memory": "768Mi"}, "limits": {"cpu": "1", "memory": "1536Mi"}}


def dns_name(text: str) -> str:
    """A Kubernetes object name (RFC 1123 label) from a model or project name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "model"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServingTarget:
    project: str
    model: str
    version: int
    image: str  # repository:tag of the packaged version (KServe serves it)
    project_image: str  # the packaged project: the gateway following the shared store (the Deployment)
    namespace: str
    deploy: DeploySpec
    alerts: list[AlertRule] = field(default_factory=list)
    monitor_seconds: float = 1800.0  # the longest gap between scheduled monitor runs (monitor_schedule)
    resources: dict[str, dict[str, str]] = field(default_factory=lambda: DEFAULT_RESOURCES)
    resources_from: str = "defaults"

    @property
    def name(self) -> str:
        return dns_name(f"{self.model}-gateway")

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/part-of": dns_name(self.project)}

    @property
    def annotations(self) -> dict[str, str]:
        return {
            "shipyard.dev/model": self.model,
            "shipyard.dev/version": str(self.version),
            "shipyard.dev/resources-from": self.resources_from,
        }


def monitor_schedule(interval: float) -> tuple[str, float]:
    """The cron schedule of `shipyard monitor run` and the longest gap between two of its runs, in seconds: the
    worker's monitoring interval when one is set (whole minutes, at least one), else every 30 minutes."""
    minutes = max(1, round(interval / 60)) if interval > 0 else 30
    if minutes < 60:
        return f"*/{minutes} * * * *", minutes * 60.0
    hours = minutes // 60
    if hours < 24:
        return f"0 */{hours} * * *", hours * 3600.0
    # A day or more: cron's hour field counts 0–23 only, so the step moves to the day of the month (a month's end
    # makes one gap shorter, never longer); beyond 28 days, once a month.
    days = hours // 24
    if days == 1:
        return "0 0 * * *", 86400.0
    if days <= 28:
        return f"0 0 */{days} * *", days * 86400.0
    return "0 0 1 * *", 31 * 86400.0


def image_for(deploy: DeploySpec, project: str, model: str, version: int) -> str:
    repository = deploy.image or dns_name(f"{project}-{model}")
    return f"{repository}:v{version}"


def project_image_for(deploy: DeploySpec, project: str) -> str:
    return deploy.project_image or f"{dns_name(project)}:latest"


def resources_from_footprint(evidence: Mapping[str, Any] | None) -> tuple[dict[str, dict[str, str]], str]:
    """Requests and limits from the version's measured footprint when its evidence has one, else defaults.

    The footprint is read by key and defensively: a resident-memory figure in MB (any numeric key naming
    memory or rss) sizes the memory request; nothing found means the defaults.
    """
    footprint = (evidence or {}).get("footprint")
    if not isinstance(footprint, Mapping):
        return DEFAULT_RESOURCES, "defaults"
    memory = _memory_mb(footprint)
    if memory is None:
        return DEFAULT_RESOURCES, "defaults"
    request = BASE_MEMORY_MB + math.ceil(memory * 1.5)
    limit = request * 2
    resources = {
        "requests": {"cpu": "500m", "memory": f"{request}Mi"},
        "limits": {"cpu": "1", "memory": f"{limit}Mi"},
    }
    return resources, "footprint"


def _memory_mb(footprint: Mapping[str, Any]) -> float | None:
    for key, value in footprint.items():
        lowered = str(key).lower()
        if isinstance(value, Mapping):
            nested = _memory_mb(value)
            if nested is not None:
                return nested
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            continue
        if ("memory" in lowered or "rss" in lowered) and "mb" in lowered:
            return float(value)
        if ("memory" in lowered or "rss" in lowered) and lowered.endswith("bytes"):
            return float(value) / 2**20
    return None
