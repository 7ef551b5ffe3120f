"""A real control-plane server on 127.0.0.1 over a trained team-mode project, and its people's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from shipyard.server.app import create_app
from shipyard.service import Shipyard
from shipyard.serving.server import BackgroundServer, free_port

# One person per role (the project's principals, tests/conftest.py PRINCIPALS).
BY_ROLE = {"viewer": "val", "scientist": "bob", "approver": "vera", "deployer": "rui", "admin": "ada"}


@dataclass
class Team:
    root: Path
    url: str
    env: dict[str, str]  # the store the server owns (what a local command would need credentials for)
    service: Shipyard  # the server's own, hosted service
    server: BackgroundServer
    tokens: dict[str, str] = field(default_factory=dict)  # principal → secret

    def client(self, who: str | None) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def token_for(self, who: str) -> str:
        if who not in self.tokens:
            _, secret = self.service.as_actor("ada").create_token(f"{who}-cli", principal=who)
            self.tokens[who] = secret
        return self.tokens[who]

    def cli_env(self, who: str) -> dict[str, str]:
        return {"SHIPYARD_URL": self.url, "SHIPYARD_TOKEN": self.token_for(who)}


def declare_server(root: Path, url: str, **extra: object) -> None:
    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    data["server"] = {"url": url, **extra}
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def start_team(root: Path, env: dict[str, str], **server: object) -> Team:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    declare_server(root, url, **server)
    service = Shipyard.open_hosted(root, env=env)
    running = BackgroundServer(create_app(service), port=port).start()
    team = Team(root=root, url=url, env=env, service=service, server=running)
    for who in BY_ROLE.values():  # ada is an admin in shipyard.yaml, seeded into the store
        team.token_for(who)
    return team


@pytest.fixture
def team(trained_project: Path) -> Iterator[Team]:
    """The trained churn project (SQLite store) in team mode, served on a free loopback port."""
    running = start_team(trained_project, env={})
    yield running
    running.server.stop()
    running.service.close()
