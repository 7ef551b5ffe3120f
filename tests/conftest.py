"""Shared fixtures: fresh stores on SQLite and a real PostgreSQL, and scaffolded projects."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.repository import Store

# Where the test PostgreSQL is; CI starts it (see .ci/run). Each test gets a new database.
PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_admin_available() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    problem = _pg_admin_available()
    if problem is not None:
        message = f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(message)
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """A brand-new, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_admin).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(postgres_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, auto_migrate=True)
    yield opened
    opened.close()


# Who holds which role in test projects (the churn example's own people are replaced).
PRINCIPALS = {
    "alice": ["scientist", "deployer"],
    "bob": ["scientist"],
    "rui": ["deployer"],
    "zoe": ["deployer"],
    "vera": ["approver"],
    "walt": ["approver"],
    "ada": ["admin"],
    "val": ["viewer"],
}


def declare_principals(root: Path, principals: dict[str, list[str]] | None) -> None:
    """Rewrite the project's principals (None: no roles declared, every actor holds all but admin) and commit."""
    import yaml

    from shipyard.scaffold import commit_all

    config = root / "shipyard.yaml"
    data = yaml.safe_load(config.read_text())
    if principals is None:
        data.pop("principals", None)
    else:
        data["principals"] = principals
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(root, "Declare test principals")


def make_project(root: Path, example: str = "churn") -> Path:
    from shipyard.scaffold import init_project

    project = init_project(root, example=example)
    declare_principals(project, PRINCIPALS)
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A freshly scaffolded churn project (no training yet)."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn project with two trained candidate versions (by alice), built once per session."""
    from shipyard.service import Shipyard

    root = make_project(tmp_path_factory.mktemp("trained") / "project")
    with Shipyard.open(root, actor="alice", env={}) as service:
        service.run_pipeline("churn")
        service.run_pipeline("churn")
    return root


@pytest.fixture
def trained_project(trained_template: Path, tmp_path: Path) -> Path:
    """A private copy of the trained project: its stores and model files can be changed freely
    (a copied project reads only its own files)."""
    target = tmp_path / "trained"
    shutil.copytree(trained_template, target)
    return target


# `make test` spreads the suite over two workers per core (pytest-xdist, --dist loadgroup). Tests sharing an expensive
# session fixture run on one worker, so it is built once, not once per worker.
SHARED_FIXTURE_GROUPS = {"features_template": "feast-example"}


# The longest tests (minutes each: the demo twice, load tests through real gateways, the feature-store example)
# start first, so that neither worker is left running one alone at the end.
SLOW_FIRST = (
    "tests/test_demo.py",
    "tests/features/",
    "tests/serving/test_rollout.py",
    "tests/serving/test_task_loops.py",
    "tests/server/test_api.py::test_schemathesis",
    "tests/test_packaging.py",
    "tests/deploy/test_shared_log.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))  # stable: the same order on every worker
    for item in items:
        for fixture, group in SHARED_FIXTURE_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))


# -- an S3-compatible object store: moto's server on a free local port (installs from PyPI with `.[dev]`) ----------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_shared(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket on the S3-compatible server, with the standard AWS variables pointing at it (child processes
    inherit them): returns the ``s3://bucket/shared`` prefix a project's deploy.shared_path names."""
    import pyarrow.fs as pafs

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "shipyard-test",
        "AWS_SECRET_ACCESS_KEY": "shipyard-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance for credentials
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"shipyard-{uuid.uuid4().hex[:12]}"
    host = s3_endpoint.removeprefix("http://")
    pafs.S3FileSystem(endpoint_override=host, scheme="http", allow_bucket_creation=True).create_dir(bucket)
    return f"s3://{bucket}/shared"
