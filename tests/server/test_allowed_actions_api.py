"""What a caller may do with a version, over the API and through the command line's client."""

from __future__ import annotations

from server.conftest import Team
from shipyard.cli.remote import RemoteShipyard
from shipyard.server.endpoints import API
from shipyard.service import Allowance


def test_the_api_answers_for_the_token_holder(team: Team) -> None:
    with team.client("val") as val, team.client("vera") as vera:
        as_val = val.get(f"{API}/models/churn/versions/1/allowed")
        as_vera = vera.get(f"{API}/models/churn/versions/1/allowed")
        unknown = vera.get(f"{API}/models/churn/versions/9/allowed")
    assert as_val.status_code == 200 and as_vera.status_code == 200
    refused = as_val.json()["result"]["approve:production"]
    assert refused["allowed"] is False and refused["roles"] == ["admin", "approver"]
    assert refused["reason"].startswith("val may not approve churn/1 for production: the policy asks for the role approver")
    assert as_vera.json()["result"]["approve:production"] == {
        "allowed": True,
        "reason": None,
        "hint": None,
        "roles": ["admin", "approver"],
    }
    assert unknown.status_code == 404
    events = [e.action for e in team.service.audit_log()]
    assert not [a for a in events if a.endswith(".denied")], "asking is not a refusal to audit"


def test_the_command_lines_client_decodes_it(team: Team) -> None:
    client = RemoteShipyard(team.url, team.tokens["rui"])
    try:
        allowed = client.allowed_actions("churn", 1)
    finally:
        client.close()
    assert isinstance(allowed["promote:staging"], Allowance) and allowed["promote:staging"].allowed
    assert allowed["promote:production"].reason == "churn/1 cannot move from candidate to production"
    assert allowed["promote:production"].hint == "Allowed moves from candidate: staging, archived, rejected."
