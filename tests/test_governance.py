"""Gates, approvals, roles and separation of duties through the service and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import declare_principals
from shipyard.cli import app
from shipyard.domain.errors import GateBlocked, InvalidSpec, NotFound, PermissionDenied
from shipyard.domain.stages import Stage
from shipyard.service import Shipyard


def svc(root: Path, actor: str) -> Shipyard:
    return Shipyard.open(root, actor=actor, env={})


def cli(root: Path, actor: str, *args: str) -> object:
    return CliRunner().invoke(app, ["--project", str(root), "--actor", actor, *args], catch_exceptions=False)


def to_staging(root: Path, version: int = 1) -> None:
    with svc(root, "alice") as service:
        service.promote("churn", version, "staging", reason="ready")


def audit_actions(root: Path) -> list[tuple[str, str, str]]:
    with svc(root, "val") as service:
        return [(e.action, e.subject, e.actor) for e in service.audit_log()]


# -- who may do what -----------------------------------------------------------------

MUTATIONS = {
    "pipeline run": lambda s: s.run_pipeline("churn"),
    "register": lambda s: s.register("churn", "0" * 32),
    "evidence collect": lambda s: s.collect_evidence("churn", 1),
    "promote to staging": lambda s: s.promote("churn", 1, "staging", reason="x"),
    "promote to rejected": lambda s: s.promote("churn", 1, "rejected", reason="x"),
    "promote to archived": lambda s: s.promote("churn", 1, "archived", reason="x"),
    "approve": lambda s: s.approve("churn", 1, "production"),
    "reject": lambda s: s.approve("churn", 1, "production", decision="reject"),
    "break-glass": lambda s: s.promote("churn", 1, "staging", reason="x", break_glass=True),
    "reconcile": lambda s: s.reconcile(),
    "db upgrade": lambda s: s.upgrade_store(),
}
# Which of the test principals may not do each (see PRINCIPALS in conftest.py).
REFUSED = {
    "pipeline run": ["val", "vera", "rui", "zoe"],
    "register": ["val", "vera", "rui"],
    "evidence collect": ["val", "vera", "rui"],
    "promote to staging": ["val", "vera"],
    "promote to rejected": ["val"],
    "promote to archived": ["val", "vera", "bob"],
    "approve": ["val", "alice", "bob", "rui"],
    "reject": ["val", "alice", "bob", "rui"],
    "break-glass": ["val", "alice", "rui", "vera"],
    "reconcile": ["val", "vera", "bob"],
    "db upgrade": ["val", "vera", "bob"],
    "unknown actor": [],
}


@pytest.mark.parametrize(("action", "actor"), [(a, p) for a, people in REFUSED.items() if a in MUTATIONS for p in people])
def test_every_mutating_command_checks_roles(trained_project: Path, action: str, actor: str) -> None:
    before = audit_actions(trained_project)
    with svc(trained_project, actor) as service, pytest.raises(PermissionDenied) as caught:
        MUTATIONS[action](service)
    assert actor in caught.value.message
    added = audit_actions(trained_project)[len(before) :]
    if action == "db upgrade":
        assert added == []  # refused before the store (maybe at an older schema) is trusted to hold the refusal
    else:
        [(event, _subject, who)] = added  # a refusal changes nothing, and leaves exactly one trace
        assert event.endswith(".denied") and who == actor


def test_refusals_are_audited_with_what_was_asked_and_why(trained_project: Path) -> None:
    declare_principals(trained_project, {"alice": ["scientist", "approver"], "rui": ["deployer"]})
    with svc(trained_project, "alice") as service, pytest.raises(PermissionDenied):
        service.approve("churn", 1, "production", comment="my own work is fine")
    with svc(trained_project, "mallory") as service, pytest.raises(PermissionDenied):
        service.promote("churn", 1, "staging", reason="let me in")
    with svc(trained_project, "val") as service:
        denied = [e for e in service.audit_log() if e.action.endswith(".denied")]
    assert [(e.action, e.subject, e.actor) for e in denied] == [
        ("approval.denied", "churn/1", "alice"),
        ("promote.denied", "churn/1", "mallory"),
    ]
    assert denied[0].details["asked"] == "approve churn/1 for production"
    assert "separation of duties: alice registered this version" in denied[0].details["reason"]
    assert denied[1].details["asked"] == "move churn/1 to staging" and denied[1].details["roles"] == []
    assert "mallory holds none" in denied[1].details["reason"]


@pytest.mark.parametrize("action", sorted(MUTATIONS))
def test_undeclared_actor_is_refused_everything(trained_project: Path, action: str) -> None:
    with svc(trained_project, "mallory") as service, pytest.raises(PermissionDenied) as caught:
        MUTATIONS[action](service)
    assert "mallory is not declared under principals" in (caught.value.hint or "")


def test_without_principals_everyone_holds_every_role_but_admin(trained_project: Path) -> None:
    declare_principals(trained_project, None)
    with svc(trained_project, "anyone") as service:
        service.promote("churn", 1, "staging", reason="open project")
        with pytest.raises(PermissionDenied, match="needs one of the roles admin"):
            service.promote("churn", 2, "staging", reason="x", break_glass=True)


@pytest.mark.parametrize("empty", ["null", "{}"])
def test_an_empty_principals_section_is_refused_not_open(trained_project: Path, empty: str) -> None:
    """It once switched role checks off: an undeclared user could archive the champion."""
    config = trained_project / "shipyard.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("principals:")] + f"principals: {empty}\n")
    with pytest.raises(InvalidSpec, match=r"principals: .*present but empty"):
        svc(trained_project, "mallory")
    archived = cli(trained_project, "mallory", "promote", "churn", "1", "--to", "archived", "--reason", "x")
    assert archived.exit_code == 2 and "remove the principals key" in archived.stderr


def test_separation_of_duties_for_approval(trained_project: Path) -> None:
    declare_principals(trained_project, {"alice": ["scientist", "approver"], "vera": ["approver"], "rui": ["deployer"]})
    with svc(trained_project, "alice") as service, pytest.raises(PermissionDenied) as caught:
        service.approve("churn", 1, "production")
    assert "separation of duties: alice registered this version" in caught.value.message
    with svc(trained_project, "vera") as service:
        assert service.approve("churn", 1, "production", comment="ok").actor == "vera"


def test_a_commit_tag_is_never_an_argument_to_git(trained_project: Path, tmp_path: Path) -> None:
    """An adopted run's `mlflow.source.git.commit` tag is data: `--output=PATH` once made the KPIs' git call write PATH."""
    written = tmp_path / "written-by-git"
    with svc(trained_project, "bob") as service:
        run_id = service.store.get_version("churn", 1).run_id
        assert run_id is not None
        service.registry.client.set_tag(run_id, "mlflow.source.git.commit", f"--output={written}")
        adopted = service.register("churn", run_id).version
        assert adopted.git_commit is None  # not a commit, so not recorded as one
    to_staging(trained_project, adopted.version)
    with svc(trained_project, "vera") as service:
        service.approve("churn", adopted.version, "production", comment="ok")
    with svc(trained_project, "rui") as service:
        service.promote("churn", adopted.version, "production", reason="ship")
        assert service.kpis("30d").deployments == 1  # the KPIs look up the commits of deployed versions
        assert service.commit_time(f"--output={written}") is None
        real = service.store.get_version("churn", 1).git_commit
        assert real is not None and service.commit_time(real) is not None  # real commits still resolve
    assert not written.exists()


def test_a_tampered_version_is_refused_by_every_gate(trained_project: Path) -> None:
    """A byte appended to a registered version's model file: neither a gate check nor a promotion judges it."""
    from shipyard.registry import TamperedModel

    with svc(trained_project, "alice") as service:
        folder = service.registry.local_model_dir(service.store.get_version("churn", 1).source)
    with (folder / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with svc(trained_project, "alice") as service:
        with pytest.raises(TamperedModel, match=r"changed: model\.skops") as caught:
            service.promote("churn", 1, "staging", reason="ready")
        assert "churn/1" in caught.value.message and caught.value.hint
        with pytest.raises(TamperedModel):
            service.gate("churn", 1, "production")
        assert service.store.get_version("churn", 1).stage is Stage.CANDIDATE
        service.promote("churn", 2, "staging", reason="its files are intact")  # the other version is unaffected
    refused = cli(trained_project, "alice", "promote", "churn", "1", "--to", "staging", "--reason", "again")
    assert refused.exit_code == 4 and "model.skops" in refused.output  # type: ignore[attr-defined]


def test_a_run_whose_model_runs_code_when_loaded_needs_the_trust_flag(trained_project: Path) -> None:
    import mlflow
    import mlflow.sklearn

    from shipyard.registry import UntrustedFormat

    with svc(trained_project, "bob") as service:
        model = service.registry.load_version(service.store.get_version("churn", 1)).model
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(service.settings.tracking_uri)
        try:
            experiment = service.registry.experiment_id("elsewhere")
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.sklearn.log_model(
                    model, name="model", serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
                )
        finally:
            mlflow.set_tracking_uri(previous)
        with pytest.raises(UntrustedFormat, match="cloudpickle") as caught:
            service.register("churn", run.info.run_id)
        assert "--trust-pickle" in (caught.value.hint or caught.value.message)
        assert len(service.versions("churn")) == 2
        adopted = service.register("churn", run.info.run_id, trust_pickle=True).version
        (event,) = [e for e in service.audit_log("churn") if e.action == "version.registered" and e.subject == adopted.subject]
    assert event.details["trusted_run"] is True and event.details["serialization_format"] == "cloudpickle"


def test_trainer_of_an_adopted_version_cannot_approve_it(trained_project: Path) -> None:
    """Registrant and trainer differ when a model is adopted from someone else's run."""
    with svc(trained_project, "bob") as service:
        run_id = service.store.get_version("churn", 1).run_id
        assert run_id is not None
        adopted = service.register("churn", run_id)
    assert adopted.version.registered_by == "bob"
    declare_principals(trained_project, {"alice": ["approver"], "bob": ["approver"], "vera": ["approver"]})
    for person, duty in (("alice", "trained"), ("bob", "registered")):
        with svc(trained_project, person) as service, pytest.raises(PermissionDenied, match=f"{person} {duty} this version"):
            service.approve("churn", adopted.version.version, "production")


# -- gates ------------------------------------------------------------------------------


def test_blocked_promotion_lists_every_blocking_rule_and_is_stored(trained_project: Path) -> None:
    to_staging(trained_project)
    with svc(trained_project, "rui") as service:
        with pytest.raises(GateBlocked) as caught:
            service.promote("churn", 1, "production", reason="ship")
        assert "1 blocking rule failed" in caught.value.message
        assert "approvals (approver): observed 0; expected ≥ 1 approval by approver" in (caught.value.hint or "")
        [_, report] = service.gate_reports("churn", 1)
        assert report["stage"] == "production" and report["passed"] is False
        assert service.store.get_version("churn", 1).stage is Stage.STAGING
    assert audit_actions(trained_project)[-1] == ("gate.evaluated", "churn/1", "rui")


def test_approval_then_promotion(trained_project: Path) -> None:
    to_staging(trained_project)
    with svc(trained_project, "vera") as service:
        service.approve("churn", 1, "production", comment="model card read")
    with svc(trained_project, "rui") as service:
        outcome = service.promote("churn", 1, "production", reason="ship")
    assert outcome.gate is not None and outcome.gate.passed
    assert {r.kind for r in outcome.gate.results} == {
        "compare_champion",
        "metric",
        "fairness",
        "approvals",
        "expr",
        "explainability",
        "resources",
    }
    assert audit_actions(trained_project)[-5:] == [
        ("gate.evaluated", "churn/1", "alice"),
        ("version.stage_changed", "churn/1", "alice"),
        ("approval.approve", "churn/1", "vera"),
        ("gate.evaluated", "churn/1", "rui"),
        ("version.stage_changed", "churn/1", "rui"),
    ]


def test_a_rejection_blocks(trained_project: Path) -> None:
    to_staging(trained_project)
    with svc(trained_project, "vera") as service:
        service.approve("churn", 1, "production", decision="reject", comment="fairness unclear")
    with svc(trained_project, "walt") as service:
        service.approve("churn", 1, "production")
    with svc(trained_project, "rui") as service, pytest.raises(GateBlocked, match="blocking rule") as caught:
        service.promote("churn", 1, "production", reason="ship")
    assert "rejected by vera (fairness unclear)" in (caught.value.hint or "")


def test_staging_gate_blocks_on_a_metric(trained_project: Path) -> None:
    policy = trained_project / "policies" / "churn.yaml"
    policy.write_text(policy.read_text().replace("value: 0.75", "value: 0.99"))
    with svc(trained_project, "alice") as service, pytest.raises(GateBlocked) as caught:
        service.promote("churn", 1, "staging", reason="x")
    assert "metric roc_auc: observed 0.83" in (caught.value.hint or "")
    assert "expected >= 0.99 (A churn model below 0.75 AUC is not worth a staging slot.)" in (caught.value.hint or "")


def test_a_policy_without_production_rules_blocks_production(trained_project: Path) -> None:
    """A policy file without a production section once let a version into production with no rule at all."""
    to_staging(trained_project)
    policy = trained_project / "policies" / "churn.yaml"
    text = policy.read_text()
    policy.write_text(text[: text.index("production:")])
    with svc(trained_project, "rui") as service, pytest.raises(GateBlocked) as caught:
        service.promote("churn", 1, "production", reason="ship")
    hint = caught.value.hint or ""
    assert f"rules for production: observed {policy} has no production rules" in hint
    assert "allow_empty: true" in hint


def test_a_model_without_a_policy_blocks_both_gates(trained_project: Path) -> None:
    config = trained_project / "shipyard.yaml"
    config.write_text(config.read_text().replace("policy: policies/churn.yaml", ""))
    with svc(trained_project, "alice") as service, pytest.raises(GateBlocked) as caught:
        service.promote("churn", 1, "staging", reason="x")
    assert "model churn has no policy" in (caught.value.hint or "")
    assert "models.churn.policy" in (caught.value.hint or "")


def test_break_glass_is_admin_only_and_flagged(trained_project: Path) -> None:
    to_staging(trained_project)
    with svc(trained_project, "rui") as service, pytest.raises(PermissionDenied, match="needs one of the roles admin"):
        service.promote("churn", 1, "production", reason="urgent", break_glass=True)
    with svc(trained_project, "ada") as service:
        outcome = service.promote("churn", 1, "production", reason="incident 42", break_glass=True)
        assert outcome.promotion.version.stage is Stage.PRODUCTION
        assert outcome.gate is not None and not outcome.gate.passed and outcome.gate.break_glass
        events = service.audit_log("churn")
    assert events[-1].details["break_glass"] is True and events[-1].details["reason"] == "incident 42"
    assert events[-2].action == "gate.evaluated" and events[-2].details["break_glass"] is True


def test_break_glass_needs_the_policy_to_allow_it(trained_project: Path) -> None:
    policy = trained_project / "policies" / "churn.yaml"
    policy.write_text(policy.read_text().replace("break_glass: {allowed: true}", "break_glass: {allowed: false}"))
    with svc(trained_project, "ada") as service, pytest.raises(PermissionDenied, match="does not allow break-glass"):
        service.promote("churn", 1, "staging", reason="x", break_glass=True)


def test_gate_check_changes_nothing(trained_project: Path) -> None:
    to_staging(trained_project)
    before = audit_actions(trained_project)
    blocked = cli(trained_project, "val", "gate", "check", "churn", "1", "--to", "production", "--json")
    assert blocked.exit_code == 1
    report = json.loads(blocked.stdout)
    assert report["passed"] is False
    [approvals] = [r for r in report["results"] if r["kind"] == "approvals"]
    assert (approvals["outcome"], approvals["observed"]) == ("failed", "0")
    table = cli(trained_project, "val", "gate", "check", "churn", "1", "--to", "staging")
    assert table.exit_code == 0 and "Gate staging for churn/1: passed" in " ".join(table.stdout.split())
    assert audit_actions(trained_project) == before
    bad = cli(trained_project, "val", "gate", "check", "churn", "1", "--to", "archived")
    assert bad.exit_code == 2 and "has no gate" in bad.stderr


def test_cli_approve_reject_and_blocked_promote(trained_project: Path) -> None:
    to_staging(trained_project)
    blocked = cli(trained_project, "rui", "promote", "churn", "1", "--to", "production", "--reason", "ship")
    assert blocked.exit_code == 1 and "may not enter production" in blocked.stderr and "approvals" in blocked.stderr
    refused = cli(trained_project, "alice", "approve", "churn", "1", "--to", "production")
    assert refused.exit_code == 5 and "the policy asks for the role approver" in refused.stderr
    approved = cli(trained_project, "vera", "approve", "churn", "1", "--to", "production", "--comment", "ok", "--json")
    assert approved.exit_code == 0 and json.loads(approved.stdout)["decision"] == "approve"
    promoted = cli(trained_project, "rui", "promote", "churn", "1", "--to", "production", "--reason", "ship")
    assert promoted.exit_code == 0 and "staging → production" in promoted.stdout
    shown = cli(trained_project, "val", "models", "show", "churn", "1", "--json")
    detail = json.loads(shown.stdout)
    assert [a["actor"] for a in detail["approvals"]] == ["vera"]
    assert [g["passed"] for g in detail["gate_reports"]] == [True, False, True]
    human = cli(trained_project, "val", "models", "show", "churn", "1")
    for label in ("fairness gender", "data validation", "robustness", "artifacts", "work tree"):
        assert label in human.stdout


def test_models_show_has_the_evidence(trained_project: Path) -> None:
    with svc(trained_project, "val") as service:
        evidence = service.describe("churn", 2).evidence
    assert evidence is not None
    assert set(evidence) >= {"metrics", "comparison", "fairness", "data_validation", "robustness", "artifacts", "lineage"}
    assert {"model_card.md", "lineage.json", "requirements.txt", "MLmodel"} <= set(evidence["artifacts"])
    assert set(evidence["fairness"]) == {"gender", "senior_citizen"}
    assert set(evidence["metrics"]["slices"]["contract_type"]) == {"month-to-month", "one-year", "two-year"}
    assert evidence["lineage"]["trained_by"] == "alice" and evidence["lineage"]["git_clean"] is True


# -- adopting a model trained elsewhere --------------------------------------------------


def test_register_adopts_an_existing_run(trained_project: Path) -> None:
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    with svc(trained_project, "bob") as service:
        uri = service.settings.tracking_uri
        experiment = service.registry.experiment_id(service.settings.experiment)
        frame = pd.read_parquet(trained_project / "data" / "churn.parquet")
    features = ["tenure_months", "monthly_charges", "support_calls", "senior_citizen"]
    # The team's own training code, elsewhere, with MLflow's fluent API.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            model = LogisticRegression(max_iter=500).fit(frame[features], frame["churned"])
            mlflow.sklearn.log_model(model, name="clf")
    finally:
        mlflow.set_tracking_uri(previous)

    with svc(trained_project, "bob") as service:
        with pytest.raises(NotFound):
            service.register("churn", "f" * 32)
        with pytest.raises(NotFound) as caught:
            service.register("churn", run.info.run_id, artifact_path="nope")
        assert "Models logged by the run: clf" in (caught.value.hint or "")
    result = cli(trained_project, "bob", "register", "churn", "--run-id", run.info.run_id, "--artifact-path", "clf", "--json")
    assert result.exit_code == 0, result.output
    adopted = json.loads(result.stdout)
    assert adopted["version"]["stage"] == "candidate" and adopted["version"]["registered_by"] == "bob"
    with svc(trained_project, "val") as service:
        evidence = service.evidence("churn", adopted["version"]["version"])
    assert evidence is not None and 0.5 < evidence["metrics"]["holdout"]["roc_auc"] < 1
    assert "model_card.md" in evidence["artifacts"]
    assert evidence["robustness"]["probes"]["unseen_categories"]["ok"] is True  # it ignores string columns
    # Monitoring and lineage treat it as a trained version: a reference profile, and OpenLineage events.
    from shipyard.lineage import read_events

    with svc(trained_project, "val") as service:
        version = service.store.get_version("churn", adopted["version"]["version"])
        profile = service.reference_profile(version)
        events = read_events(service.settings.lineage_dir)
    assert set(profile.features) == set(features) and profile.score is not None
    parent = next(e for e in events if e["job"]["name"] == "churn.adopt" and e["eventType"] == "COMPLETE")
    parent_id = parent["run"]["runId"]
    steps = [e for e in events if e["run"].get("facets", {}).get("parent", {}).get("run", {}).get("runId") == parent_id]
    assert [(e["job"]["name"], e["eventType"]) for e in steps][-1] == ("churn.register", "COMPLETE")
    (output,) = steps[-1]["outputs"]
    assert output["name"] == "models/churn" and output["facets"]["version"]["datasetVersion"] == str(version.version)


# -- real data: the arrests example -------------------------------------------------------


def test_arrests_gate_shows_the_real_disparity(tmp_path: Path) -> None:
    from conftest import make_project

    root = make_project(tmp_path / "arrests", example="arrests")
    with svc(root, "alice") as service:
        result = service.run_pipeline("arrests")
        report = service.gate("arrests", result.version.version, "staging")
    assert not report.passed
    [parity] = [r for r in report.results if r.name == "fairness demographic_parity_difference by colour"]
    assert parity.outcome.value == "failed"
    evidence = result.version
    assert evidence.metrics["roc_auc"] > 0.6
    with svc(root, "val") as service:
        facts = service.evidence("arrests", result.version.version)
    assert facts is not None
    groups = facts["fairness"]["colour"]["by_group"]
    assert set(groups) == {"Black", "White"}
    gap = abs(groups["White"]["selection_rate"] - groups["Black"]["selection_rate"])
    assert gap == pytest.approx(facts["fairness"]["colour"]["demographic_parity_difference"], abs=1e-12)
    assert gap > 0.02
    # The data's own disparity: White arrestees were released more often than Black ones.
    assert groups["White"]["positive_rate"] - groups["Black"]["positive_rate"] > 0.02
    assert "Black" in str(parity.observed) and "White" in str(parity.observed) and "actual positive" in str(parity.observed)
    # Why: skin colour is among the three columns the model leans on most (mean |SHAP|, the dummies summed back).
    [leaning] = [r for r in report.results if r.name.startswith("explainability")]
    ranking = facts["explanations"]["ranking"]
    assert sorted(ranking) == sorted(["colour", "age", "sex", "employed", "citizen", "checks"])
    assert ranking.index("colour") < 3 and leaning.outcome.value == "failed" and "colour" in str(leaning.observed)
    [resources] = [r for r in report.results if r.name.startswith("resources")]
    assert resources.outcome.value == "passed" and facts["footprint"]["p50_ms"]["1"] > 0
