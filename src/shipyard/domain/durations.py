"""Lengths of time as people type them: 30s, 5m, 1.5h, 30d, 2w."""

from __future__ import annotations

import re

from shipyard.domain.errors import InvalidSpec

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_FORM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str, *, unit_required: bool = False) -> float:
    """Seconds in ``text``: a positive number and a unit; a bare number is seconds unless ``unit_required``."""
    found = _FORM.match(text)
    if found is None or (unit_required and not found.group(2)) or float(found.group(1)) == 0:
        bare = "" if unit_required else " (a bare number is seconds)"
        raise InvalidSpec(
            f"{text!r} is not a duration; expected a positive number and a unit, like 30s, 5m, 12h, 30d or 2w{bare}",
            hint="Units: s (seconds), m (minutes), h (hours), d (days), w (weeks).",
        )
    return float(found.group(1)) * _UNITS[(found.group(2) or "s").lower()]
