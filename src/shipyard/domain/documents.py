"""Documents Shipyard stores as JSON (evidence, reports, audit details)."""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """Strict JSON: PostgreSQL refuses NaN and Infinity, so an infinite statistic becomes None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value
