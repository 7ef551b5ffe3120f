"""Shipyard: a governed, fast path from a trained model to production traffic."""

from __future__ import annotations

__version__ = "0.1.0"
