"""The control plane over HTTP: who may ask, what a refusal looks like, and the document that describes it."""

from __future__ import annotations

from pathlib import Path

import httpx

from server.conftest import Team, start_team
from shipyard.server.endpoints import API, ENDPOINTS


def test_reads_answer_the_token_holder(team: Team) -> None:
    with team.client("val") as val:
        who = val.get(f"{API}/whoami")
        assert who.status_code == 200 and who.json()["result"] == {**who.json()["result"], "name": "val", "roles": ["viewer"]}
        versions = val.get(f"{API}/versions", params={"model": "churn", "limit": 1})
    page = versions.json()
    assert versions.status_code == 200 and page["total"] == 2 and len(page["items"]) == 1 and page["next"] == 1
    assert page["items"][0]["model"] == "churn" and page["items"][0]["stage"] == "candidate"


def test_no_token_and_bad_tokens_are_401_saying_which(team: Team) -> None:
    with httpx.Client(base_url=team.url) as anonymous:
        missing = anonymous.get(f"{API}/models")
        malformed = anonymous.get(f"{API}/models", headers={"authorization": "Bearer not-a-token"})
        basic = anonymous.get(f"{API}/models", headers={"authorization": "Basic YWRhOmFkYQ=="})
        claimed = anonymous.get(f"{API}/models", headers={"x-actor": "ada", "authorization": f"Bearer {team.tokens['val']}"})
    for response in (missing, malformed, basic, claimed):
        body = response.json()
        assert response.status_code == 401 and body["status"] == 401 and body["error"] == "unauthenticated", body
        assert body["message"] and body["hint"]
    assert "no token" in missing.json()["message"].lower()
    assert "bearer" in basic.json()["message"].lower()
    assert "x-actor" in claimed.json()["message"]


def test_a_proxy_header_counts_only_from_a_trusted_proxy(team: Team) -> None:
    with httpx.Client(base_url=team.url) as anonymous:
        refused = anonymous.get(f"{API}/whoami", headers={"x-forwarded-email": "ada"})
    assert refused.status_code == 401 and "not a trusted proxy" in refused.json()["message"]
    denied = [e for e in team.service.audit_log() if e.action == "sso.denied"]
    assert denied and denied[-1].subject == "ada" and denied[-1].actor.startswith("unauthenticated@")


def test_a_trusted_proxy_names_the_principal(trained_project: Path) -> None:
    running = start_team(trained_project, env={}, trusted_proxies=["127.0.0.1"])
    try:
        with httpx.Client(base_url=running.url) as proxy:
            vera = proxy.get(f"{API}/whoami", headers={"x-forwarded-email": "vera"})
            stranger = proxy.get(f"{API}/models", headers={"x-forwarded-email": "mallory@example.com"})
    finally:
        running.server.stop()
        running.service.close()
    assert vera.status_code == 200 and vera.json()["result"]["roles"] == ["approver"]
    assert stranger.status_code == 403 and "not a principal" in stranger.json()["message"]


def test_bad_requests_get_one_error_body(team: Team) -> None:
    with team.client("rui") as rui:
        unknown_field = rui.post(f"{API}/models/churn/versions/1/promote", json={"to": "staging", "reason": "r", "x": 1})
        not_json = rui.post(f"{API}/models/churn/versions/1/promote", content=b"{", headers={"content-type": "application/json"})
        bad_version = rui.get(f"{API}/models/churn/versions/abc/evidence")
        unknown_model = rui.get(f"{API}/models/nope/describe")
        no_path = rui.get(f"{API}/nothing-here")
        bad_page = rui.get(f"{API}/models", params={"limit": 0})
    assert unknown_field.status_code == 422 and "x: unknown field" in unknown_field.json()["message"]
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["message"]
    assert bad_version.status_code == 422 and "version" in bad_version.json()["message"]
    assert unknown_model.status_code == 404 and "nope" in unknown_model.json()["message"]
    assert no_path.status_code == 404 and no_path.json()["error"] == "not_found"
    assert bad_page.status_code == 422 and "limit" in bad_page.json()["message"]
    for response in (unknown_field, not_json, bad_version, unknown_model, no_path, bad_page):
        assert set(response.json()) == {"status", "error", "message", "hint"}


def test_a_body_over_the_limit_is_413(trained_project: Path) -> None:
    running = start_team(trained_project, env={}, max_body_bytes=1024)
    try:
        with running.client("bob") as bob:
            declared = bob.post(f"{API}/models/churn/labels", params={"filename": "l.csv"}, content=b"x" * 4096)

            def chunks():  # no Content-Length: the server counts what arrives
                for _ in range(8):
                    yield b"y" * 512

            streamed = bob.post(f"{API}/models/churn/labels", params={"filename": "l.csv"}, content=chunks())
    finally:
        running.server.stop()
        running.service.close()
    for response in (declared, streamed):
        assert response.status_code == 413 and response.json()["error"] == "too_large", response.text
        assert "1,024 bytes" in response.json()["message"]


def test_openapi_describes_every_endpoint(team: Team) -> None:
    with httpx.Client(base_url=team.url) as anonymous:
        document = anonymous.get("/openapi.json").json()
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == {e.name for e in ENDPOINTS}
    promote = document["paths"][f"{API}/models/{{model}}/versions/{{version}}/promote"]["post"]
    assert promote["requestBody"]["content"]["application/json"]["schema"]["required"] == ["reason", "to"]
    assert {p["name"] for p in promote["parameters"]} == {"model", "version"}
