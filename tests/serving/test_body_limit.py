"""The gateway's body limit, set in shipyard.yaml or with `shipyard serve --max-body-mb`, in a real `shipyard serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import ROW, ServeProcess, ship

from shipyard.config import load_spec


@pytest.fixture
def served(trained_project: Path) -> Path:
    ship(trained_project, 1)
    return trained_project


def body_of(size: int) -> bytes:
    """A valid request padded with whitespace to ``size`` bytes."""
    body = json.dumps({"instances": [ROW]}).encode()
    return body + b" " * (size - len(body))


def chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 4096):
        yield body[start : start + 4096]


def test_the_limit_comes_from_shipyard_yaml_and_the_option_overrides_it(served: Path) -> None:
    config = served / "shipyard.yaml"
    config.write_text(config.read_text() + "\ngateway:\n  max_body_mb: 0.01\n")  # 10,486 bytes
    body = body_of(15_000)
    with ServeProcess(served) as gateway, httpx.Client() as client:
        url = f"{gateway.url}/v1/models/churn:predict"
        assert client.post(url, content=body_of(10_000)).status_code == 200
        declared = client.post(url, content=body)
        assert declared.status_code == 413 and "exceeds the limit of 10486 bytes" in declared.json()["error"]
        chunked = client.post(url, content=chunks(body))  # no Content-Length: counted as it arrives
        assert chunked.status_code == 413 and "limit of 10486 bytes" in chunked.json()["error"]
    with ServeProcess(served, args=("--max-body-mb", "0.02")) as gateway, httpx.Client() as client:
        url = f"{gateway.url}/v1/models/churn:predict"
        assert client.post(url, content=body).status_code == 200
        assert client.post(url, content=chunks(body)).status_code == 200
        assert client.post(url, content=body_of(25_000)).status_code == 413


def test_a_limit_that_is_not_positive_is_refused_in_shipyard_yaml(served: Path) -> None:
    from shipyard.domain.errors import InvalidSpec

    config = served / "shipyard.yaml"
    config.write_text(config.read_text() + "\ngateway:\n  max_body_mb: 0\n")
    with pytest.raises(InvalidSpec) as refused:
        load_spec(config)
    assert "max_body_mb" in str(refused.value)
