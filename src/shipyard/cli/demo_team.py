"""`shipyard demo --team`: the demo's people act through a real `shipyard server`, each with their own token."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from shipyard.cli.render import esc
from shipyard.domain.errors import ShipyardError

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.cli.remote import RemoteShipyard
    from shipyard.service import Shipyard

ADMIN = "platform.admin"


class TeamServer:
    """Declare the project's server, start `shipyard server --bootstrap-admin` on a loopback port, and give each
    person a token created by that admin through the API. The server's stderr goes to .shipyard/demo-server.log."""

    def __init__(self, root: Path, console: Console, *, people: tuple[str, ...]) -> None:
        from shipyard.serving.server import free_port

        self.root, self.console, self.people = root, console, people
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root / ".shipyard" / "demo-server.log"
        self.process: subprocess.Popen[str] | None = None
        self.clients: dict[str, RemoteShipyard] = {}

    def __enter__(self) -> TeamServer:
        from shipyard.cli.remote import RemoteShipyard
        from shipyard.scaffold import commit_all

        self._declare()
        commit_all(self.root, "Team mode: the project's server")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "shipyard", "--project", str(self.root), "server", "--bootstrap-admin", ADMIN]
        with self.log.open("w") as errors:  # the child keeps its own handle on it
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        admin_token = self._admin_token()
        self._wait_healthy()
        admin = RemoteShipyard(self.url, admin_token)
        try:
            for person in self.people:
                _, secret = admin.create_token(f"{person}-demo", principal=person)
                self.clients[person] = RemoteShipyard(self.url, secret, project=self.root)
        finally:
            admin.close()
        self.console.print(
            f"Team mode: `shipyard server` on {esc(self.url)} holds the store and the audit key; "
            f"{ADMIN} (bootstrap admin) gave {len(self.people)} principals their own tokens, and every change below "
            "goes through the server's API as the token's principal",
            highlight=False,
        )
        return self

    def person(self, name: str) -> Shipyard:
        # The same methods, entities and errors as the local service: the demo's story cannot tell the difference.
        return cast("Shipyard", self.clients[name])

    def _declare(self) -> None:
        import yaml

        config = self.root / "shipyard.yaml"
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["server"] = {"url": self.url, "checkpoint_seconds": 5}
        config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def _admin_token(self) -> str:
        stdout = self.process.stdout if self.process is not None else None
        line = stdout.readline() if stdout is not None else ""
        found = re.search(r"(shp_[A-Za-z0-9_-]+)", line)
        if found is None:
            raise ShipyardError(f"`shipyard server` printed no admin token: {line.strip() or self._errors()}")
        return found.group(1)

    def _wait_healthy(self, seconds: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ShipyardError(f"`shipyard server` exited with {self.process.returncode}: {self._errors()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ShipyardError(f"`shipyard server` did not answer on {self.url} within {seconds:g} s: {self._errors()}")

    def _errors(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else ""

    def __exit__(self, *_exc: object) -> None:
        for client in self.clients.values():
            client.close()
        if self.process is not None:
            stop_process(self.process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """SIGTERM a child the demo started (a server drains and exits 0 on it), and kill it if it does not stop."""
    import signal

    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
