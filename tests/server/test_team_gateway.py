"""Team mode's gateway: it reads the shared store through a PostgreSQL role that may only SELECT,
and a token revoked through the server stops working there within a second."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from conftest import make_project
from server.conftest import Team, start_team
from serving.harness import ROW, Server, ship
from shipyard.service import Shipyard


@pytest.fixture
def shipped_team(tmp_path: Path, postgres_url: str) -> Iterator[Team]:
    root = make_project(tmp_path / "project")
    env = {"SHIPYARD_STORE_URL": postgres_url}
    with Shipyard.open(root, actor="alice", env=env) as trainer:
        trainer.upgrade_store()
        trainer.run_pipeline("churn")
    ship(root, 1, env)
    running = start_team(root, env=env)
    yield running
    running.server.stop()
    running.service.close()


def read_only_role(store_url: str) -> str:
    """A login role that may read every table of the store and change none: what a gateway is given."""
    url = make_url(store_url)
    role = f"shipyard_gateway_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CONNECT ON DATABASE "{url.database}" TO "{role}"')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    return url.set(username=role).render_as_string(hide_password=False)


def predict(client: httpx.Client, url: str, secret: str) -> httpx.Response:
    body = json.dumps({"instances": [ROW]})
    return client.post(f"{url}/v1/models/churn:predict", content=body, headers={"authorization": f"Bearer {secret}"})


def test_a_gateway_on_a_select_only_role_serves_and_honours_revocation(shipped_team: Team) -> None:
    reader = read_only_role(shipped_team.env["SHIPYARD_STORE_URL"])
    plain = make_url(reader).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):  # it cannot change a row
        conn.execute("UPDATE deployments SET challenger_weight = 1")
    with shipped_team.client("rui") as rui:
        created = rui.post("/api/v1/tokens", json={"name": "dashboard", "scope": "predict"}).json()["result"]
        secret = created["secret"]
        with Server(shipped_team.root, env={"SHIPYARD_STORE_URL": reader}, auth=True) as gateway, httpx.Client() as client:
            answered = predict(client, gateway.url, secret)
            assert answered.status_code == 200, answered.text
            assert rui.delete("/api/v1/tokens/dashboard").status_code == 200
            revoked_at = time.monotonic()
            while predict(client, gateway.url, secret).status_code == 200:
                # The promise is one second; the gateway re-reads tokens every half second.
                assert time.monotonic() - revoked_at < 1.0, "a revoked token still worked a second later"
                time.sleep(0.05)
            refused = predict(client, gateway.url, secret)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
