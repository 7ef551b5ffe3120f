"""The control plane over HTTP: who may ask, what a refusal looks like, and the document that describes it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.conftest import Team, start_team
from shipyard.domain.errors import InvalidSpec
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


def test_schemathesis_finds_no_server_error(team: Team, tmp_path: Path) -> None:
    """Generated requests against every operation of /openapi.json, as an admin: no 5xx, no undocumented shape."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{team.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {team.tokens['ada']}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "20",
            "--request-timeout",
            "60",
        ],
        cwd=tmp_path,  # its cache of findings stays out of the work tree
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_bad_values_found_by_fuzzing_are_422(team: Team) -> None:
    """Once 500 and 503: a lifetime past datetime's range, and an empty run id that MLflow called invalid."""
    with team.client("ada") as ada:
        forever = ada.post(f"{API}/tokens", json={"name": "x", "principal": "bob", "expires_seconds": 7.7e307})
        empty_run = ada.post(f"{API}/models/churn/versions", json={"run_id": ""})
        odd_run = ada.post(f"{API}/models/churn/versions", json={"run_id": "not a run id"})
    assert forever.status_code == 422 and "expires_seconds" in forever.json()["message"]
    assert empty_run.status_code == 422 and "run_id" in empty_run.json()["message"]
    assert odd_run.status_code in (404, 422), odd_run.text
    with team.client("val") as val:
        huge = val.get(f"{API}/models/churn/describe", params={"version": -(2**80)})
        beyond = val.get(f"{API}/models/churn/versions/{2**40}/evidence")
    assert huge.status_code == 422 and "version" in huge.json()["message"]
    assert beyond.status_code == 422 and "version" in beyond.json()["message"]
    service = team.service.as_actor("ada")  # shares the server's store: not closed here
    with pytest.raises(InvalidSpec, match="ten years"):  # the service refuses it too, for every face
        service.create_token("y", principal="bob", expires_seconds=7.7e307)


def test_a_bug_is_a_500_with_the_same_body_and_a_logged_traceback(
    team: Team, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug cannot be produced on purpose, so one is planted: the service's model listing raises."""
    from shipyard.service import Shipyard

    def broken(self: Shipyard) -> list[object]:
        raise RuntimeError("planted")

    monkeypatch.setattr(Shipyard, "models", broken)
    with team.client("val") as val:
        response = val.get(f"{API}/models")
    assert response.status_code == 500 and response.json()["error"] == "internal"
    assert set(response.json()) == {"status", "error", "message", "hint"} and "planted" not in response.text
    assert any("planted" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
