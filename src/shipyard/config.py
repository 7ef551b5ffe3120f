"""shipyard.yaml and SHIPYARD_* environment variables → one typed settings object.

Read once at start-up and passed down; nothing else reads os.environ.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from shipyard.domain.errors import InvalidSpec, NotFound
from shipyard.domain.tasks import ALL_METRICS, DEFAULT_METRIC, Task, metric_error

if TYPE_CHECKING:
    from shipyard.location import Location

CONFIG_FILE = "shipyard.yaml"
STATE_DIR = ".shipyard"
ROLES = ("viewer", "scientist", "approver", "deployer", "admin")
Role = Literal["viewer", "scientist", "approver", "deployer", "admin"]


def _has_roles(value: Any) -> Any:
    # An empty list reads as "no access" to one reader and "forgot to fill in" to another: refuse it.
    if value is None or value == []:
        raise ValueError(
            f"no roles; expected a list of at least one of {', '.join(ROLES)}; "
            "write [viewer] for read-only access, or remove the principal"
        )
    return value


PrincipalRoles = Annotated[list[Role], BeforeValidator(_has_roles)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSpec(_Spec):
    url: str | None = None


class MlflowSpec(_Spec):
    tracking_uri: str | None = None
    registry_uri: str | None = None
    experiment: str | None = None


class FeastSpec(_Spec):
    """Training rows from a Feast repository: the entity file's keys and times, the feature service's values as of then."""

    repo: str = Field(description="the Feast repository (the folder with feature_store.yaml), relative to the project")
    feature_service: str = Field(description="the feature service whose features the model trains and serves on")
    entities: str = Field(description="CSV or Parquet file of entity keys, event times and labels, relative to the project")
    event_timestamp: str = Field(description="the entity file's column of times the features are looked up as of")


class DataSpec(_Spec):
    path: str | None = Field(default=None, description="CSV or Parquet file, relative to the project folder")
    feast: FeastSpec | None = Field(default=None, description="train from a Feast feature service instead of a file")
    target: str
    time_column: str | None = None
    id_column: str | None = None
    features: list[str] | None = None
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 42
    positive_label: str | int | bool | None = Field(
        default=None, description="target value that counts as the positive class, when the target is not 0/1"
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.path is None) == (self.feast is None):
            raise ValueError(
                "expected exactly one data source: `path` (a CSV or Parquet file) or `feast` "
                "(repo, feature_service, entities, event_timestamp)"
            )
        return self

    @property
    def source(self) -> str:
        """The file training reads: the data file, or a feature store's entity file."""
        return self.feast.entities if self.feast is not None else str(self.path)


class RolloutChecks(_Spec):
    min_requests: int = Field(default=50, ge=1, description="challenger requests before a step is judged")
    max_error_increase: float = Field(default=0.02, ge=0.0, description="challenger error rate minus the champion's")
    max_latency_factor: float = Field(
        default=3.0,
        gt=0.0,
        description="challenger p95 latency, model time over the champion's (judges unless max_latency_ms is set)",
    )
    latency_slack_ms: float = Field(
        default=1.0, ge=0.0, description="a challenger slower than the champion by less than this never fails on latency"
    )
    max_latency_ms: float | None = Field(
        default=None,
        gt=0.0,
        description="when set, an absolute limit instead of max_latency_factor: the challenger's p95 end-to-end latency "
        "(request received to answer ready, in milliseconds, as its clients see it) must be at most this; its p95 model "
        "time, a part of that latency, is held to the same limit",
    )
    max_divergence: float = Field(
        default=0.25, ge=0.0, description="PSI between the two score distributions (multiclass: on each class's probability)"
    )
    min_class_agreement: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="multiclass: share of shadowed requests to which both versions answer the same class",
    )
    max_pair_difference: float = Field(
        default=0.5,
        ge=0.0,
        description="regression: mean absolute difference of the two versions' predictions on shadowed requests, "
        "in standard deviations of the champion's predictions",
    )
    max_wait: float = Field(
        default=600.0, gt=0.0, description="seconds a step may wait for min_requests before it counts as a failed analysis"
    )


class RolloutSpec(_Spec):
    strategy: Literal["canary", "shadow", "bluegreen"] = "canary"
    steps: list[float] | None = Field(default=None, description="challenger traffic per step, percent")
    interval: float = Field(default=30.0, gt=0.0, description="seconds of traffic per step")
    failure_limit: int = Field(default=2, ge=1)
    checks: RolloutChecks = RolloutChecks()

    def steps_for(self, strategy: str) -> list[float]:
        if self.steps and strategy == self.strategy:
            return list(self.steps)
        return {"canary": [5.0, 25.0, 50.0, 100.0], "shadow": [0.0], "bluegreen": [0.0, 100.0]}[strategy]


Signal = Literal["feature_drift_share", "prediction_drift", "metric_decay", "error_rate"]
SIGNALS: tuple[str, ...] = get_args(Signal)


class AlertRule(_Spec):
    signal: Signal = Field(
        description="feature_drift_share: share of features drifted; prediction_drift: PSI of the scores; "
        "metric_decay: holdout primary metric minus the live one (significant only); error_rate: failed share"
    )
    threshold: float = Field(ge=0.0)
    action: Literal["retrain", "rollback", "webhook", "none"] = "none"
    url: str | None = Field(default=None, description="where the webhook action POSTs the alert")
    timeout: float = Field(default=5.0, gt=0.0, description="seconds per webhook attempt")
    retries: int = Field(default=3, ge=0, description="webhook attempts after the first")

    @model_validator(mode="after")
    def _webhook_has_url(self) -> AlertRule:
        if self.action == "webhook" and not self.url:
            raise ValueError("a webhook action needs `url`, e.g. url: https://hooks.example.com/shipyard")
        return self


class MonitoringSpec(_Spec):
    window: float = Field(default=3600.0, gt=0.0, description="seconds of prediction log a monitor run reads")
    min_rows: int = Field(default=200, ge=1, description="fewer rows than this give no drift verdict")
    interval: float = Field(default=0.0, ge=0.0, description="seconds between monitor runs by the worker; 0: off")
    actor: str = Field(default="shipyard.monitor", description="who automated actions (retrain, rollback) act as")
    drift: dict[str, Any] = Field(default_factory=dict, description="drift methods and thresholds (see docs)")
    alerts: list[AlertRule] = Field(default_factory=list)
    rollout: bool = Field(default=True, description="start a rollout when a retrained version passes its gates")


class ModelSpec(_Spec):
    owner: str
    description: str = ""
    risk_tier: Literal["low", "medium", "high"] = "medium"
    train: str = Field(default="train.py:train", description="FILE.py:FUNCTION, relative to the project folder")
    data: DataSpec
    task: Task | None = Field(default=None, description="binary, multiclass or regression; inferred from the target when absent")
    primary_metric: str | None = Field(
        default=None, description="what the champion comparison ranks by; default: roc_auc, f1_macro or rmse by task"
    )
    policy: str | None = None
    rollout: RolloutSpec = RolloutSpec()
    monitoring: MonitoringSpec = MonitoringSpec()

    @field_validator("train")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        path, sep, func = value.rpartition(":")
        if not sep or not path.endswith(".py") or not func.isidentifier():
            raise ValueError("expected FILE.py:FUNCTION, e.g. train.py:train")
        return value

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in ALL_METRICS:
            raise ValueError(f"unknown metric; expected one of {', '.join(ALL_METRICS)}")
        return value

    @model_validator(mode="after")
    def _metric_fits_task(self) -> ModelSpec:
        if self.task is not None and self.primary_metric is not None:
            problem = metric_error(self.task, self.primary_metric)
            if problem is not None:
                raise ValueError(f"primary_metric: {problem}")
        if self.task is not None and self.task != "binary" and self.data.positive_label is not None:
            raise ValueError(f"data.positive_label makes a binary target; remove it, or declare task: binary (not {self.task})")
        return self

    def metric(self, task: str | None = None) -> str:
        """The primary metric for the model's task (``task``: the one its evidence recorded, else the declared one)."""
        return self.primary_metric or DEFAULT_METRIC[task or self.task or "binary"]


class WorkerSpec(_Spec):
    actor: str = Field(default="shipyard.monitor", description="the service principal the worker's rollout controller acts as")
    lease_seconds: float = Field(
        default=30.0, ge=2.0, description="how long a worker's lease lasts unrenewed; another worker takes over after it"
    )


class GatewaySpec(_Spec):
    """`shipyard serve`'s settings that belong to the project (its command-line options override them)."""

    max_body_mb: float = Field(default=1.0, gt=0.0, description="larger request bodies get 413 (counted chunk by chunk)")
    runtime: Literal["auto", "scikit-learn"] = Field(
        default="auto",
        description="auto: the fastest runtime that answers as the model does (numpy tree walk, ONNX Runtime); "
        "scikit-learn: always the model's own predict_proba",
    )


class ServerSpec(_Spec):
    """Team mode: declaring a server makes it the only writer of the shared store."""

    url: str = Field(description="where clients reach the control-plane server, e.g. https://shipyard.example.com")
    key_file: str = Field(
        default=".shipyard/server/audit-signing.key", description="the server's Ed25519 audit key (created with mode 0600)"
    )
    checkpoint_file: str = Field(
        default=".shipyard/server/checkpoints.jsonl", description="append-only copy of signed audit checkpoints"
    )
    checkpoint_seconds: float = Field(default=60.0, gt=0.0, description="sign a checkpoint this often while events arrive")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses whose X-Forwarded-Email/-User headers are honoured (SSO); empty: off"
    )
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="larger request bodies get 413")
    notify_url: str | None = Field(
        default=None, description="a Slack-compatible webhook told when a version waits for approval or a gate blocks"
    )
    public_url: str | None = Field(default=None, description="the address links in notifications point to (default: url)")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address, e.g. http://127.0.0.1:8700")
        return value.rstrip("/")


class LineageSpec(_Spec):
    url: str | None = Field(default=None, description="an OpenLineage HTTP endpoint (Marquez-compatible); events go there too")
    api_key: str | None = None


class GitOpsSpec(_Spec):
    """A Git working tree Argo CD or Flux watches: every promotion and rollout step commits its manifests there."""

    repo: str = Field(description="path of the Git working tree (relative to the project folder, or absolute)")
    path: str = Field(default="overlays/prod", description="folder inside the repository the manifests are written to")

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        parts = Path(value).parts
        if not value.strip() or Path(value).is_absolute() or ".." in parts:
            raise ValueError("expected a relative folder inside the repository, e.g. overlays/prod")
        return value


class DeploySpec(_Spec):
    """How `shipyard export` and `shipyard package` describe the project's serving on a cluster."""

    image: str = Field(default="", description="image repository of packaged versions, tagged vN (default: PROJECT-MODEL)")
    project_image: str = Field(
        default="",
        description="image of the packaged project, for gateways following the store and pipeline steps "
        "(default: PROJECT:latest)",
    )
    namespace: str = Field(default="", description="Kubernetes namespace (default: the project's name)")
    environments: list[str] = Field(
        default_factory=lambda: ["staging", "production"], min_length=1, description="one kustomize overlay each"
    )
    replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=10, ge=1)
    target_cpu_percent: int = Field(default=70, ge=1, le=100)
    target_requests_per_second: float = Field(default=200.0, gt=0.0, description="per replica, for the HPA's Pods metric")
    gitops: GitOpsSpec | None = None
    shared_path: str | None = Field(
        default=None,
        description="where every gateway replica and the worker record: a folder they share (a shared volume) or an "
        "object store prefix (s3://bucket/prefix); the prediction log, labels and lineage events live there, so "
        "rollouts and monitors judge every replica's traffic",
    )
    shared_endpoint: str | None = Field(
        default=None,
        description="the S3-compatible endpoint of an s3:// shared_path, e.g. http://minio:9000 "
        "(default: $AWS_ENDPOINT_URL, else AWS S3)",
    )

    @field_validator("shared_path")
    @classmethod
    def _shared_uri(cls, value: str | None) -> str | None:
        from shipyard.location import check_uri

        return None if value is None else check_uri(value)

    @model_validator(mode="after")
    def _endpoint_needs_store(self) -> DeploySpec:
        from shipyard.location import is_object_store

        if self.shared_endpoint and not (self.shared_path and is_object_store(self.shared_path)):
            raise ValueError(
                f"shared_endpoint is set ({self.shared_endpoint!r}) but shared_path is not an s3:// URI "
                f"({self.shared_path!r}); expected both, e.g. shared_path: s3://bucket/prefix"
            )
        return self


def _duration(value: Any) -> float:
    """A length of time as people type it (30d, 12h) or seconds; never zero or negative."""
    from shipyard.domain.durations import parse_duration

    if isinstance(value, bool):
        raise ValueError("expected a duration like 30d or 12h")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("expected a positive duration like 30d or 12h")
        return float(value)
    try:
        return parse_duration(str(value), unit_required=True)
    except InvalidSpec as exc:
        raise ValueError(exc.message) from None


Duration = Annotated[float, BeforeValidator(_duration)]
DAY = 86400.0


class PredictionRetention(_Spec):
    compact_after: Duration | None = Field(
        default=DAY, description="a day's small files become one file per model and day once the day is this old"
    )
    drop_inputs_after: Duration | None = Field(
        default=None, description="raw inputs are dropped (a daily aggregate profile kept) once the day is this old"
    )
    delete_after: Duration | None = Field(default=None, description="a day of the log is deleted once it is this old")

    @model_validator(mode="after")
    def _in_order(self) -> PredictionRetention:
        if self.delete_after is not None and self.drop_inputs_after is not None and self.delete_after < self.drop_inputs_after:
            raise ValueError("delete_after is shorter than drop_inputs_after; expected delete_after >= drop_inputs_after")
        return self


RetiredStage = Literal["archived", "rejected", "candidate", "staging", "production"]  # staging/production: refused below
SERVING_STAGES = ("production", "staging")


def _archived_only() -> list[RetiredStage]:
    return ["archived"]


class ArtifactRule(_Spec):
    """Versions in one of ``stages`` for longer than ``after`` lose their files to the cold location
    (``action: cold``, re-hydrated on demand) or for good (``action: delete``)."""

    name: str = Field(min_length=1)
    stages: list[RetiredStage] = Field(default_factory=_archived_only)
    after: Duration = Field(description="time in that stage, e.g. 180d")
    action: Literal["cold", "delete"] = "cold"
    model: str | None = Field(default=None, description="only this model (default: every model)")
    versions: list[int] | None = Field(default=None, description="only these versions (default: every version)")

    @model_validator(mode="after")
    def _never_serving(self) -> ArtifactRule:
        serving = sorted(set(self.stages) & set(SERVING_STAGES))
        if serving:
            raise ValueError(
                f"retention rule {self.name!r} would {'delete' if self.action == 'delete' else 'move'} the files of "
                f"{'/'.join(serving)} versions, which serve or are about to; expected stages among archived, rejected, candidate"
            )
        if not self.stages:
            raise ValueError(f"retention rule {self.name!r} lists no stages; expected e.g. [archived]")
        return self


class RunRetention(_Spec):
    delete_unregistered_after: Duration | None = Field(
        default=None,
        description="runs no version was registered from, in experiments Shipyard created, are deleted with their "
        "artifacts once this old",
    )


class RetentionSpec(_Spec):
    interval: Duration | None = Field(default=None, description="how often the worker applies retention; unset: never")
    cold_location: str = Field(default=".shipyard/cold", description="where cold artifacts go (relative to the project)")
    predictions: PredictionRetention = PredictionRetention()
    artifacts: list[ArtifactRule] = Field(default_factory=list)
    runs: RunRetention = RunRetention()
    actor: str = Field(default="shipyard.retention", description="who the worker's retention passes act as")

    @field_validator("artifacts")
    @classmethod
    def _unique_names(cls, rules: list[ArtifactRule]) -> list[ArtifactRule]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique; {', '.join(twice)} appear more than once")
        return rules


class ProjectSpec(_Spec):
    project: str
    store: StoreSpec = StoreSpec()
    mlflow: MlflowSpec = MlflowSpec()
    lineage: LineageSpec = LineageSpec()
    worker: WorkerSpec = WorkerSpec()
    gateway: GatewaySpec = GatewaySpec()
    retention: RetentionSpec = RetentionSpec()
    server: ServerSpec | None = Field(default=None, description="declare it for team mode (see README: Team mode)")
    deploy: DeploySpec = DeploySpec()
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    principals: dict[str, PrincipalRoles] | None = Field(
        default=None, description="actor → roles; without the key every actor holds every role but admin"
    )

    @model_validator(mode="after")
    def _log_rewrites_need_a_disk(self) -> ProjectSpec:
        from shipyard.location import is_object_store

        shared = self.deploy.shared_path
        if not (shared and is_object_store(shared)):
            return self
        # compact_after's default (a day) is skipped quietly on an object store; a value written here is refused.
        kept = self.retention.predictions
        asked = [
            name
            for name in ("compact_after", "drop_inputs_after", "delete_after")
            if getattr(kept, name) is not None and (name != "compact_after" or name in kept.model_fields_set)
        ]
        if asked:
            settings = ", ".join(f"retention.predictions.{name}" for name in asked)
            raise ValueError(
                f"{settings} rewrites the prediction log in place with local renames, which an object store cannot do, "
                f"and deploy.shared_path is {shared}; expected them unset (null) there. Expire old objects with the "
                "bucket's lifecycle rules instead, or set deploy.shared_path to a folder on a shared volume"
            )
        return self

    @field_validator("principals", mode="before")
    @classmethod
    def _principals_declared(cls, value: Any) -> Any:
        # Only an absent key means one-person mode; an empty one would silently switch role checks off.
        if value is None or value == {}:
            raise ValueError(
                "the key is present but empty; expected a mapping of actor to roles, e.g. `dana.scientist: [scientist]`. "
                "Either remove the principals key for one-person mode (every actor holds every role but admin), "
                "or list each principal with its roles"
            )
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    root: Path
    spec: ProjectSpec
    store_url: str
    tracking_uri: str
    registry_uri: str
    experiment: str
    actor: str
    server_url: str | None = None  # $SHIPYARD_URL, else server.url: where a client sends its commands
    token: str | None = None  # $SHIPYARD_TOKEN
    hosted: bool = False  # this process is the control-plane server: the shared store's one writer

    @property
    def team(self) -> bool:
        """The project declares a server: only that server changes its store."""
        return self.spec.server is not None

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def shared_dir(self) -> Location:
        """Where what the gateways and pipelines record lives: deploy.shared_path (a volume every replica mounts,
        or an object-store prefix), else the project's own state folder."""
        from shipyard.location import Location, is_object_store

        shared = self.spec.deploy.shared_path
        if shared and is_object_store(shared):
            return Location.shared(shared, endpoint=self.spec.deploy.shared_endpoint)
        return Location.of(self.resolve(shared) if shared else self.state_dir)

    @property
    def predictions_dir(self) -> Location:
        return self.shared_dir / "predictions"

    @property
    def labels_dir(self) -> Location:
        return self.shared_dir / "labels"

    @property
    def lineage_dir(self) -> Location:
        return self.shared_dir / "lineage"

    def model(self, name: str) -> ModelSpec:
        try:
            return self.spec.models[name]
        except KeyError:
            known = ", ".join(sorted(self.spec.models)) or "none"
            raise NotFound(
                f"model {name!r} is not declared in {self.root / CONFIG_FILE}",
                hint=f"Declared models: {known}.",
            ) from None

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


def find_project(start: Path) -> Path:
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise NotFound(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        hint="Run inside a Shipyard project, pass --project DIR, or create one with `shipyard init DIR`.",
    )


def load_spec(path: Path) -> ProjectSpec:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist", hint="Create a project with `shipyard init DIR`.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidSpec(f"{path}{where}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise InvalidSpec(f"{path}: expected a mapping with keys project, store, mlflow, models; got {type(raw).__name__}")
    try:
        return ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpec(f"{path}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and error["type"] not in ("missing",):
            message = f"{message} (got {error['input']!r})"
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def _sqlite_url(root: Path, url: str) -> str:
    """Relative SQLite paths are relative to the project, not to the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(root / url[len(prefix) :])
    return url


def default_actor(env: Mapping[str, str] | None = None) -> str:
    """$SHIPYARD_ACTOR, else the OS user."""
    env = os.environ if env is None else env
    if env.get("SHIPYARD_ACTOR"):
        return env["SHIPYARD_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """Where the command line sends its commands in team mode, and with which token."""

    url: str
    token: str | None
    claimed_actor: str | None  # $SHIPYARD_ACTOR, which a client may not use


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    """Tokens stored by `shipyard login`: in the user's configuration folder, readable by the user alone."""
    env = os.environ if env is None else env
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "shipyard" / "credentials.json"


def stored_token(url: str, env: Mapping[str, str] | None = None) -> str | None:
    import json

    try:
        stored = json.loads(credentials_path(env).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    token = stored.get(url.rstrip("/")) if isinstance(stored, dict) else None
    return token if isinstance(token, str) else None


def client_settings(env: Mapping[str, str] | None = None) -> ClientSettings | None:
    """Team mode's client: $SHIPYARD_URL with $SHIPYARD_TOKEN, or the token `shipyard login` stored for it."""
    env = os.environ if env is None else env
    url = (env.get("SHIPYARD_URL") or "").strip().rstrip("/")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise InvalidSpec(f"SHIPYARD_URL must be an http:// or https:// address; got {url!r}")
    token = env.get("SHIPYARD_TOKEN") or stored_token(url, env)
    return ClientSettings(url=url, token=token, claimed_actor=env.get("SHIPYARD_ACTOR") or None)


def load_settings(
    project: Path | None = None,
    *,
    actor: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    root = find_project(project or Path(env.get("SHIPYARD_PROJECT") or Path.cwd()))
    spec = load_spec(root / CONFIG_FILE)
    state = root / STATE_DIR
    store_url = env.get("SHIPYARD_STORE_URL") or spec.store.url or f"sqlite:///{state / 'shipyard.db'}"
    tracking = env.get("SHIPYARD_TRACKING_URI") or spec.mlflow.tracking_uri or f"sqlite:///{state / 'mlflow.db'}"
    registry = env.get("SHIPYARD_REGISTRY_URI") or spec.mlflow.registry_uri or tracking
    return Settings(
        root=root,
        spec=spec,
        store_url=_sqlite_url(root, store_url),
        tracking_uri=_sqlite_url(root, tracking),
        registry_uri=_sqlite_url(root, registry),
        experiment=spec.mlflow.experiment or spec.project,
        actor=actor or default_actor(env),
        server_url=(env.get("SHIPYARD_URL") or (spec.server.url if spec.server else None) or None),
        token=env.get("SHIPYARD_TOKEN") or None,
    )
