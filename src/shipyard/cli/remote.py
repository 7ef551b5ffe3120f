"""The command line as a client of the control-plane server (team mode).

``RemoteShipyard`` answers the service methods the commands call, each through its endpoint in
``shipyard.server.endpoints``: arguments are bound to the service method's own signature, sent,
and the answer is decoded back into the same entities, so every command renders the same output,
JSON and exit codes as it does locally. An error body becomes the same ShipyardError again.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from enum import Enum
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from shipyard.domain.errors import BackendUnavailable, InvalidSpec, ShipyardError, error_class

if TYPE_CHECKING:
    import httpx
    from pydantic import TypeAdapter

    from shipyard.pipeline import StepReporter
    from shipyard.server.endpoints import Endpoint

LOCAL_ONLY = "runs on the machine that holds the project's files; it is not sent to a server"
PAGE = 1000


class RemoteShipyard:
    """The service's methods over HTTP, acting as the token's principal."""

    def __init__(self, url: str, token: str | None, *, project: Path | None = None, timeout: float = 300.0) -> None:
        import httpx

        if not token:
            raise InvalidSpec(
                f"SHIPYARD_URL points to {url}, but no token was given",
                hint=f"Set SHIPYARD_TOKEN, or run `shipyard login {url}` once; an admin creates tokens with "
                "`shipyard token create`.",
            )
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}", "user-agent": "shipyard-cli"}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._actor: str | None = None
        self.project = project  # where `pipeline run` finds train.py and the data it trains on

    def close(self) -> None:
        self.http.close()

    # -- what a command may ask of the service besides its methods ----------------------------

    @property
    def actor(self) -> str:
        if self._actor is None:
            self._actor = str(self.call("whoami").name)
        return self._actor

    @property
    def settings(self) -> Any:
        raise InvalidSpec(f"this command {LOCAL_ONLY}", hint="Unset SHIPYARD_URL to run it on this machine.")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        endpoint = _endpoints().get(name)
        if endpoint is None:
            raise InvalidSpec(f"this command {LOCAL_ONLY}", hint="Unset SHIPYARD_URL to run it on this machine.")
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    # -- the methods whose arguments are not plain values ---------------------------------------

    def create_token(self, name: str, **kwargs: Any) -> tuple[Any, str]:
        created = self.call("create_token", name, **kwargs)
        return created.token, created.secret

    def audit_export(self, out: IO[str], *, fmt: str = "jsonl") -> int:
        if fmt != "jsonl":
            raise InvalidSpec(f"unknown export format {fmt!r}; expected jsonl")
        exported = self.call("audit_export")
        out.write(exported.jsonl)
        return int(exported.events)

    def run_pipeline(self, model: str, *, progress: StepReporter | None = None, data_path: Path | None = None) -> Any:
        """Train here, with this project's code and data, and log the model to MLflow; the server adopts the run
        and collects its evidence itself (nothing computed here about the model is trusted)."""
        from shipyard.config import load_settings
        from shipyard.pipeline import no_progress, train_and_log
        from shipyard.service import Shipyard

        report = progress or no_progress
        settings = load_settings(self.project, actor=self.actor)
        local = Shipyard(settings)  # for its MLflow client only: the store is the server's
        try:
            run_id, train_seconds = train_and_log(settings, local.registry, model, progress=report, data_path=data_path)
        finally:
            local.close()
        with report("register (on the server)"):
            result = self.call("register", model, run_id)
        return dataclasses.replace(result, train_seconds=train_seconds)

    def audit_verify(self, public_keys: list[bytes] | None = None) -> Any:
        keys = [key.decode() for key in public_keys] if public_keys else None
        return self.call("audit_verify", public_keys=keys)

    def export_checkpoints(self, out: IO[str]) -> tuple[int, int]:
        exported = self.call("export_checkpoints")
        out.write(exported.jsonl)
        return int(exported.checkpoints), int(exported.keys)

    def ingest_labels(self, path: Path, *, model: str, entity_key: str | None = None, label_column: str | None = None) -> Any:
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InvalidSpec(f"cannot read the label file {path}: {exc.strerror}") from None
        query = {"filename": path.name, "entity_key": entity_key, "label_column": label_column}
        return self.call("ingest_labels", model=model, _body=body, _query=query)

    # -- one call ----------------------------------------------------------------------------------

    def call(self, name: str, *args: Any, _body: bytes | None = None, _query: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        endpoint = _endpoints()[name]
        params = _bind(name, args, kwargs, endpoint)
        if _query:
            params.update({k: v for k, v in _query.items() if v is not None})
        path = endpoint.path
        for field in re.findall(r"{(\w+)}", path):
            path = path.replace(f"{{{field}}}", _quote(params.pop(field)))
        if endpoint.paged:
            items: list[Any] = []
            offset: int | None = 0
            while offset is not None:
                page = self._send(endpoint, path, {**params, "offset": offset, "limit": PAGE}, _body)
                items.extend(page["items"])
                offset = page["next"]
            return _decoder(endpoint).validate_python(items)
        answer = self._send(endpoint, path, params, _body)
        return _decoder(endpoint).validate_python(answer["result"])

    def _send(self, endpoint: Endpoint, path: str, params: dict[str, Any], body: bytes | None) -> Any:
        import httpx

        from shipyard.server.endpoints import API

        url = f"{API}{path}"
        query = {k: _query_value(v) for k, v in params.items() if v is not None}
        try:
            if body is not None:
                response = self.http.request(endpoint.method, url, params=query, content=body)
            elif endpoint.method in ("POST", "PUT"):
                json_body = {k: v for k, v in params.items() if v is not None and k not in ("offset", "limit")}
                response = self.http.request(endpoint.method, url, json=json_body)
            else:
                response = self.http.request(endpoint.method, url, params=query)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the Shipyard server at {self.url}: {exc}",
                hint="Check SHIPYARD_URL and that `shipyard server` is running there.",
            ) from None
        return _answer(response, self.url)


def _answer(response: httpx.Response, url: str) -> Any:
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.status_code < 400 and isinstance(document, dict):
        return document
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        cls = error_class(str(document.get("error", "")))
        hint = document.get("hint")
        raise cls(document["message"], hint=hint if isinstance(hint, str) else None)
    raise BackendUnavailable(
        f"the server at {url} answered {response.status_code} without a Shipyard error body",
        hint="Is SHIPYARD_URL the address of `shipyard server` (not of a gateway or a proxy's login page)?",
    )


def _quote(value: Any) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@cache
def _endpoints() -> dict[str, Endpoint]:
    from shipyard.server.endpoints import ENDPOINTS

    return {e.name: e for e in ENDPOINTS}


@cache
def _decoder(endpoint: Endpoint) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    from shipyard.server.endpoints import result_type

    return TypeAdapter(result_type(endpoint))


def _bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    """The call's arguments by name, as the service method itself would bind them; only fields the endpoint takes."""
    from shipyard.service import Shipyard

    method = getattr(Shipyard, name, None)
    if method is None:  # an endpoint with no service method of its name (whoami)
        bound = dict(kwargs)
    else:
        try:
            bound = dict(inspect.signature(method).bind_partial(None, *args, **kwargs).arguments)
        except TypeError as exc:
            raise ShipyardError(f"{name}: {exc}") from None
        bound.pop("self", None)
        bound.update(bound.pop("kwargs", {}))
    fields = endpoint.params.model_fields
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in bound.items() if k in fields and k != "file"}


def store_credentials(url: str, token: str) -> Path:
    """Keep ``token`` for ``url`` in the user's credentials file, readable and writable by the user alone."""
    import json
    import os

    from shipyard.config import credentials_path

    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if not isinstance(stored, dict):
        stored = {}
    stored[url.rstrip("/")] = token
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(stored, handle, indent=2)
    os.chmod(temporary, 0o600)  # an existing temporary file keeps its mode through O_CREAT
    temporary.replace(path)
    return path
