"""Webhooks: POST a JSON document with a timeout and retries (an alert's webhook action, team-mode notifications)."""

from __future__ import annotations

import time
from typing import Any


def post(
    url: str,
    payload: dict[str, Any],
    *,
    timeout: float,
    retries: int,
    backoff: float = 0.5,
    user_agent: str = "shipyard-monitor",
) -> dict[str, Any]:
    """Deliver once; retry on connection errors and 5xx/429 answers with a doubling pause.

    Returns what happened (``delivered``, ``attempts``, ``status`` or ``error``) instead of
    raising: a receiver that is down must not stop the work that sent it (a monitor run, a notifier pass).
    """
    import httpx

    attempts = 0
    last: dict[str, Any] = {}
    for attempt in range(retries + 1):
        attempts = attempt + 1
        try:
            response = httpx.post(url, json=payload, timeout=timeout, headers={"user-agent": user_agent})
        except httpx.HTTPError as exc:
            last = {"error": f"{type(exc).__name__}: {exc}"}
        else:
            if response.status_code < 300:
                return {"delivered": True, "attempts": attempts, "status": response.status_code, "url": url}
            last = {"status": response.status_code, "error": response.text[:200]}
            if response.status_code < 500 and response.status_code != 429:
                break  # the receiver refused this payload; sending it again will not help
        if attempt < retries:
            time.sleep(backoff * 2**attempt)
    return {"delivered": False, "attempts": attempts, "url": url, **last}
