"""Tokens at a real gateway: each refusal says why; revoked and expired tokens stop working while it runs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ROW, Server, ship, wait_for

from shipyard.service import Shipyard
from shipyard.serving.tokens import Tokens


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def predict(client: httpx.Client, url: str, secret: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret is not None else {}
    return client.post(f"{url}/v1/models/churn:predict", content=json.dumps({"instances": [ROW]}), headers=headers)


def refusal(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "unauthenticated" and "Bearer" in body["hint"]
    return str(body["error"])


def test_a_revoked_token_is_refused_even_while_a_reload_is_stuck(served: Path) -> None:
    """Tokens are re-read on their own schedule: a slow model load (here, a stuck store read in the deployment
    reload) must not keep a revoked token working."""
    with Shipyard.open(served, actor="ada", env={}) as ada:
        _, api = ada.create_token("alice-ci", principal="alice")
        _, gateway_token = ada.as_actor("rui").create_token("dashboard", scope="predict")
        with Server(served, auth=True, reload_seconds=0.1, token_seconds=0.1) as server, httpx.Client() as client:
            assert predict(client, server.url, api).status_code == 200  # api tokens reach gateways too
            assert predict(client, server.url, gateway_token).status_code == 200
            stuck, release = threading.Event(), threading.Event()
            generation = server.gateway.store.serving_generation

            def slow_generation() -> int:
                stuck.set()
                release.wait(60)
                return generation()

            server.gateway.store.serving_generation = slow_generation  # type: ignore[method-assign]
            try:
                assert stuck.wait(10)
                ada.revoke_token("dashboard")
                wait_for(lambda: predict(client, server.url, gateway_token).status_code == 401, timeout=20)
                assert not release.is_set()  # refused while the reload was still stuck
                message = refusal(predict(client, server.url, gateway_token))
                assert message.startswith("token dashboard was revoked at 20")
                assert predict(client, server.url, api).status_code == 200
            finally:
                release.set()


def test_refusals_name_the_case(served: Path) -> None:
    with Shipyard.open(served, actor="rui", env={}) as rui:
        _, short = rui.create_token("short", scope="predict", expires_seconds=1.0)
        with Server(served, auth=True) as server, httpx.Client() as client:
            assert refusal(predict(client, server.url, None)) == "no bearer token"
            assert refusal(predict(client, server.url, "shp_" + "A" * 43)) == "unknown bearer token"
            wait_for(lambda: predict(client, server.url, short).status_code == 401, timeout=20)
            assert refusal(predict(client, server.url, short)).startswith("token short expired at 20")


def test_the_in_memory_table_follows_the_store_records() -> None:
    from datetime import UTC, datetime, timedelta

    from shipyard.domain.identity import Token

    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = {"principal": "rui", "created_by": "rui", "created_at": now}
    tokens = Tokens()
    tokens.replace(
        {
            "a": Token(name="live", scope="predict", **base),
            "b": Token(name="api", scope="api", expires_at=now + timedelta(hours=1), **base),
            "c": Token(name="gone", scope="predict", revoked_at=now, revoked_by="ada", **base),
            "d": Token(name="odd", scope="admin", **base),
        }
    )
    t = now.timestamp()
    assert tokens.refusal("a", t) is None and tokens.refusal("b", t) is None
    assert tokens.refusal("b", t + 3600) == "token api expired at 2026-01-01 01:00:00 UTC"
    assert tokens.refusal("c", t) == "token gone was revoked at 2026-01-01 00:00:00 UTC"
    assert tokens.refusal("d", t) == "token odd has scope admin, which gateways do not accept"
    assert tokens.refusal("z", t) == "unknown bearer token"
    tokens.replace({})
    assert tokens.refusal("a", time.time()) == "unknown bearer token"
