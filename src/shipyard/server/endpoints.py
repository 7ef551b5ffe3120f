"""The control plane's operations: one table, each row a path, its parameters and the service method it calls.

Routes, the OpenAPI document, the role matrix and the command line's client all read this table, so an
operation is declared once. No rule lives here: every call goes to the ``Shipyard`` service acting as the
authenticated principal, which authorizes, audits and refuses exactly as it does for a local command.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.domain.checkpoints import AuditKey
from shipyard.domain.entities import AuditEvent, AuditVerification, Model, ModelVersion
from shipyard.domain.errors import InvalidSpec
from shipyard.domain.governance import Approval, GateReport
from shipyard.domain.identity import Principal, Token
from shipyard.domain.mirror import PendingMirror
from shipyard.domain.monitoring import Alert
from shipyard.domain.retention import LegalHold, RetentionOutcome, RetentionPlan
from shipyard.domain.rollouts import Analysis, Rollout

if TYPE_CHECKING:
    from shipyard.service import Shipyard

API = "/api/v1"


class Params(BaseModel):
    """Path, query and body fields of one call, validated together; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    pass


class ModelParam(Params):
    model: str


class OptionalModel(Params):
    model: str | None = None


VersionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]  # a registry's version numbers fit the store's integers


class VersionParams(Params):
    model: str
    version: VersionNumber


class DescribeParams(Params):
    model: str
    version: VersionNumber | None = None
    with_run: bool = False


class GateParams(VersionParams):
    stage: str


class PromoteParams(VersionParams):
    to: str
    reason: str = Field(min_length=1)
    break_glass: bool = False


class ApproveParams(VersionParams):
    stage: str
    comment: str = ""
    decision: Literal["approve", "reject"] = "approve"


class RegisterParams(ModelParam):
    run_id: str = Field(min_length=1)
    artifact_path: str = "model"
    trust_pickle: bool = False


class RolloutStartParams(VersionParams):
    strategy: str | None = None
    steps: list[float] | None = None
    interval: float | None = None
    checks: dict[str, Any] | None = None


class RolloutStatusParams(ModelParam):
    judge: bool = True


class RolloutActionParams(ModelParam):
    action: Literal["pause", "resume", "abort"]
    reason: str | None = None


class ReconcileParams(OptionalModel):
    grace_seconds: float = Field(default=60.0, ge=0.0)


class MonitorParams(OptionalModel):
    window: float | None = Field(default=None, gt=0.0)
    last: int | None = None
    act: bool = True


class AlertParams(OptionalModel):
    state: str | None = None


class TraceParams(Params):
    request_id: str


class KpiParams(Params):
    since: str = "30d"


class HoldParams(VersionParams):
    reason: str = Field(min_length=1)


class TokenCreateParams(Params):
    name: str = Field(min_length=1, max_length=200)
    principal: str | None = None
    scope: Literal["api", "predict"] = "api"
    expires_seconds: float | None = Field(default=None, gt=0.0, le=10 * 365 * 86400.0)


class TokenListParams(Params):
    principal: str | None = None


class NameParam(Params):
    name: str


class PrincipalParams(Params):
    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1)


class LabelParams(ModelParam):
    filename: str = Field(default="labels.csv", description="the uploaded file's name; .csv or .parquet says its format")
    entity_key: str | None = None
    label_column: str | None = None
    file: str | None = Field(default=None, exclude=True)  # set by the server to where it stored the body; never by a caller


class VerifyParams(Params):
    public_keys: list[str] | None = Field(default=None, description="PEM public keys the caller holds")


class Created(BaseModel):
    """A token, with its secret: shown this once."""

    token: Token
    secret: str


class Exported(BaseModel):
    events: int
    jsonl: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    method: str
    path: str  # under /api/v1, with {placeholders} named like fields of ``params``
    name: str  # the operation id, and the client's method name
    summary: str
    params: type[Params]
    returns: Any  # the result's type, encoded with pydantic; "module:Name" (or "list:module:Name") is imported on first use
    call: Callable[[Shipyard, Any], Any]
    mutating: bool = False
    paged: bool = False  # a list: ?limit=&offset=, answered as {"items": [...], "total": n, "next": offset|null}
    body: Literal["json", "raw"] = "json"  # raw: the request body is a file (labels)


def _export(service: Shipyard, _: NoParams) -> Exported:
    out = io.StringIO()
    count = service.audit_export(out)
    return Exported(events=count, jsonl=out.getvalue())


class ExportedCheckpoints(BaseModel):
    checkpoints: int
    keys: int
    jsonl: str


def _export_checkpoints(service: Shipyard, _: NoParams) -> ExportedCheckpoints:
    out = io.StringIO()
    checkpoints, keys = service.export_checkpoints(out)
    return ExportedCheckpoints(checkpoints=checkpoints, keys=keys, jsonl=out.getvalue())


def _created(service: Shipyard, p: TokenCreateParams) -> Created:
    token, secret = service.create_token(p.name, principal=p.principal, scope=p.scope, expires_seconds=p.expires_seconds)
    return Created(token=token, secret=secret)


def _revoke(service: Shipyard, p: NameParam) -> Token:
    return service.revoke_token(p.name)


def _remove_principal(service: Shipyard, p: NameParam) -> None:
    service.remove_principal(p.name)


def _ingest(service: Shipyard, p: LabelParams) -> Any:
    from pathlib import Path

    if p.file is None:
        raise InvalidSpec("no label file was uploaded", hint="Send the CSV or Parquet file as the request body.")
    return service.ingest_labels(Path(p.file), model=p.model, entity_key=p.entity_key, label_column=p.label_column)


def _whoami(service: Shipyard, _: NoParams) -> Principal:
    return Principal(name=service.actor, roles=tuple(sorted(service.access.roles(service.actor))))


def result_type(endpoint: Endpoint) -> Any:
    """The endpoint's result type, importing it when named by a string (it lives above the domain):
    "module:Name", or "list:module:Name" / "dict:module:Name" for a list of them or a mapping from str to them."""
    import importlib

    if not isinstance(endpoint.returns, str):
        return endpoint.returns
    container, named = "", endpoint.returns
    if named.startswith(("list:", "dict:")):
        container, _, named = named.partition(":")
    module, _, name = named.partition(":")
    found: Any = getattr(importlib.import_module(module), name)
    return list[found] if container == "list" else dict[str, found] if container == "dict" else found


ENDPOINTS: tuple[Endpoint, ...] = (
    # -- reading -----------------------------------------------------------------------------
    Endpoint(method="GET", path="/whoami", name="whoami", summary="The authenticated principal and its roles.",
             params=NoParams, returns=Principal, call=_whoami),
    Endpoint(method="GET", path="/models", name="models", summary="Registered models.",
             params=NoParams, returns=list[Model], call=lambda s, p: s.models(), paged=True),
    Endpoint(method="GET", path="/versions", name="versions", summary="Versions of every model, or of one.",
             params=OptionalModel, returns=list[ModelVersion], call=lambda s, p: s.versions(p.model), paged=True),
    Endpoint(method="GET", path="/models/{model}/describe", name="describe",
             summary="A version (default: the latest) with its history, evidence, approvals and gate reports.",
             params=DescribeParams, returns="shipyard.service.versions:VersionDetail",
             call=lambda s, p: s.describe(p.model, p.version, with_run=p.with_run)),
    Endpoint(method="GET", path="/models/{model}/versions/{version}/evidence", name="evidence",
             summary="The evidence collected about a version.",
             params=VersionParams, returns=dict[str, Any] | None, call=lambda s, p: s.evidence(p.model, p.version)),
    Endpoint(method="GET", path="/models/{model}/versions/{version}/gate/{stage}", name="gate",
             summary="Evaluate the gate of a stage on a version, changing nothing.",
             params=GateParams, returns=GateReport, call=lambda s, p: s.gate(p.model, p.version, p.stage)),
    Endpoint(method="GET", path="/models/{model}/versions/{version}/allowed", name="allowed_actions",
             summary="What the caller may do with a version now (approve, reject, promote, roll out), and why not.",
             params=VersionParams, returns="dict:shipyard.service.allowed:Allowance",
             call=lambda s, p: s.allowed_actions(p.model, p.version)),
    Endpoint(method="GET", path="/mirror/backlog", name="mirror_backlog",
             summary="What MLflow may not show yet.", params=OptionalModel, returns=list[PendingMirror],
             call=lambda s, p: s.mirror_backlog(p.model)),
    Endpoint(method="GET", path="/models/{model}/rollout", name="rollout_status",
             summary="The latest rollout of a model and a live judgement of its step.",
             params=RolloutStatusParams, returns=tuple[Rollout | None, Analysis | None],
             call=lambda s, p: s.rollout_status(p.model, judge=p.judge)),
    Endpoint(method="GET", path="/alerts", name="alerts", summary="Alerts, newest last.",
             params=AlertParams, returns=list[Alert], call=lambda s, p: s.alerts(p.model, state=p.state), paged=True),
    Endpoint(method="GET", path="/predictions/{request_id}/trace", name="trace",
             summary="From a prediction to the version, its data, code and gates.",
             params=TraceParams, returns=dict[str, Any], call=lambda s, p: s.trace(p.request_id)),
    Endpoint(method="GET", path="/kpis", name="kpis", summary="DORA and governance figures over a window.",
             params=KpiParams, returns="shipyard.kpis:Kpis", call=lambda s, p: s.kpis(p.since)),
    Endpoint(method="GET", path="/costs", name="costs",
             summary="Per model: CPU time predicting, predictions served, CPU-seconds per 1,000, storage used.",
             params=KpiParams, returns="shipyard.costs:Costs", call=lambda s, p: s.costs(p.since)),
    Endpoint(method="GET", path="/holds", name="holds", summary="Versions under legal hold.",
             params=OptionalModel, returns=list[LegalHold], call=lambda s, p: s.holds(p.model)),
    Endpoint(method="GET", path="/retention/plan", name="retention_plan",
             summary="Every action a retention pass would take now, with the bytes it frees. Changes nothing.",
             params=NoParams, returns=RetentionPlan, call=lambda s, p: s.retention_plan()),
    Endpoint(method="GET", path="/audit/events", name="audit_log", summary="The audit log, oldest first.",
             params=OptionalModel, returns=list[AuditEvent], call=lambda s, p: s.audit_log(p.model), paged=True),
    Endpoint(method="POST", path="/audit/verify", name="audit_verify",
             summary="Verify the chain, every signed checkpoint (with the public keys given, else the listed ones) "
                     "and the state rows against the events. Changes nothing.",
             params=VerifyParams, returns=AuditVerification,
             call=lambda s, p: s.audit_verify([k.encode() for k in p.public_keys] if p.public_keys else None)),
    Endpoint(method="GET", path="/audit/public-key", name="audit_public_key",
             summary="The current audit signing key's public key (PEM).",
             params=NoParams, returns=str, call=lambda s, p: s.audit_public_key()),
    Endpoint(method="GET", path="/audit/keys", name="audit_keys", summary="Every audit signing key, current and retired.",
             params=NoParams, returns=list[AuditKey], call=lambda s, p: s.audit_keys()),
    Endpoint(method="GET", path="/audit/checkpoints", name="export_checkpoints",
             summary="Every public key, then every signed checkpoint, as JSON lines.",
             params=NoParams, returns=ExportedCheckpoints, call=_export_checkpoints),
    Endpoint(method="GET", path="/audit/export", name="audit_export", summary="The audit log as JSON lines.",
             params=NoParams, returns=Exported, call=_export),
    Endpoint(method="GET", path="/tokens", name="tokens", summary="Tokens (admins: all; others: their own).",
             params=TokenListParams, returns=list[Token], call=lambda s, p: s.tokens(principal=p.principal), paged=True),
    Endpoint(method="GET", path="/principals", name="principals", summary="Principals and their roles.",
             params=NoParams, returns=list[Principal], call=lambda s, p: s.principals(), paged=True),
    Endpoint(method="GET", path="/principals/drift", name="principals_drift",
             summary="Where shipyard.yaml's principals differ from the server's (only the server's count).",
             params=NoParams, returns=list[str], call=lambda s, p: s.principals_drift()),
    # -- changing ----------------------------------------------------------------------------
    Endpoint(method="POST", path="/models/{model}/versions", name="register", mutating=True,
             summary="Adopt a model an MLflow run logged as a governed candidate; the server recomputes the evidence.",
             params=RegisterParams, returns="shipyard.pipeline.registration:PipelineResult",
             call=lambda s, p: s.register(p.model, p.run_id, artifact_path=p.artifact_path, trust_pickle=p.trust_pickle)),
    Endpoint(method="POST", path="/models/{model}/versions/{version}/evidence", name="collect_evidence", mutating=True,
             summary="Collect the evidence of a version again.",
             params=VersionParams, returns=dict[str, Any], call=lambda s, p: s.collect_evidence(p.model, p.version)),
    Endpoint(method="POST", path="/models/{model}/versions/{version}/promote", name="promote", mutating=True,
             summary="Move a version to a stage through that stage's gate.",
             params=PromoteParams, returns="shipyard.service.versions:PromotionOutcome",
             call=lambda s, p: s.promote(p.model, p.version, p.to, reason=p.reason, break_glass=p.break_glass)),
    Endpoint(method="POST", path="/models/{model}/versions/{version}/approvals", name="approve", mutating=True,
             summary="Approve or reject a version for a gated stage.",
             params=ApproveParams, returns=Approval,
             call=lambda s, p: s.approve(p.model, p.version, p.stage, comment=p.comment, decision=p.decision)),
    Endpoint(method="POST", path="/models/{model}/versions/{version}/rollout", name="start_rollout", mutating=True,
             summary="Start rolling a version out (it must pass its production gate).",
             params=RolloutStartParams, returns=Rollout,
             call=lambda s, p: s.start_rollout(
                 p.model, p.version, strategy=p.strategy, steps=p.steps, interval=p.interval, checks=p.checks)),
    Endpoint(method="POST", path="/models/{model}/rollout/{action}", name="rollout_action", mutating=True,
             summary="Pause, resume or abort a model's rollout.",
             params=RolloutActionParams, returns=Rollout,
             call=lambda s, p: s.rollout_action(p.model, p.action, reason=p.reason)),
    Endpoint(method="POST", path="/rollouts/reconcile", name="reconcile_rollouts", mutating=True,
             summary="One controller pass over every running rollout.",
             params=NoParams, returns="list:shipyard.rollout:Decision", call=lambda s, p: s.reconcile_rollouts()),
    Endpoint(method="POST", path="/mirror/reconcile", name="reconcile", mutating=True,
             summary="Repair MLflow's aliases and tags from the store.",
             params=ReconcileParams, returns="list:shipyard.service.mirror:Reconciled",
             call=lambda s, p: s.reconcile(p.model, grace_seconds=p.grace_seconds)),
    Endpoint(method="POST", path="/monitor", name="monitor", mutating=True,
             summary="One monitor run per model (or the one named): alerts recorded and acted on.",
             params=MonitorParams, returns="list:shipyard.service.loop:MonitorOutcome",
             call=lambda s, p: s.monitor(p.model, window=p.window, last=p.last, act=p.act)),
    Endpoint(method="POST", path="/models/{model}/labels", name="ingest_labels", mutating=True, body="raw",
             summary="Upload outcomes (CSV or Parquet, as the body) and join them to logged predictions.",
             params=LabelParams, returns="shipyard.labels:Ingested", call=_ingest),
    Endpoint(method="POST", path="/models/{model}/versions/{version}/hold", name="add_hold", mutating=True,
             summary="Put a version under legal hold (admins): retention never touches it.",
             params=HoldParams, returns=LegalHold, call=lambda s, p: s.add_hold(p.model, p.version, reason=p.reason)),
    Endpoint(method="DELETE", path="/models/{model}/versions/{version}/hold", name="remove_hold", mutating=True,
             summary="Lift a legal hold (admins).",
             params=HoldParams, returns=LegalHold, call=lambda s, p: s.remove_hold(p.model, p.version, reason=p.reason)),
    Endpoint(method="POST", path="/retention/apply", name="retention_apply", mutating=True,
             summary="Carry the retention plan out, each action audited; safe to interrupt and run again.",
             params=NoParams, returns=RetentionOutcome, call=lambda s, p: s.retention_apply()),
    Endpoint(method="POST", path="/audit/rotate-key", name="rotate_audit_key", mutating=True,
             summary="Start a new audit signing key (admins); old public keys stay listed.",
             params=NoParams, returns=AuditKey, call=lambda s, p: s.rotate_audit_key()),
    Endpoint(method="POST", path="/tokens", name="create_token", mutating=True,
             summary="Create a bearer token; its secret is in this answer only.",
             params=TokenCreateParams, returns=Created, call=_created),
    Endpoint(method="DELETE", path="/tokens/{name}", name="revoke_token", mutating=True,
             summary="Revoke a token: every server and gateway refuses it within a second.",
             params=NameParam, returns=Token, call=_revoke),
    Endpoint(method="PUT", path="/principals/{name}", name="set_principal", mutating=True,
             summary="Create a principal or change its roles (admins).",
             params=PrincipalParams, returns=Principal, call=lambda s, p: s.set_principal(p.name, p.roles)),
    Endpoint(method="DELETE", path="/principals/{name}", name="remove_principal", mutating=True,
             summary="Remove a principal (admins); its tokens stop working.",
             params=NameParam, returns=None, call=_remove_principal),
)  # fmt: skip
