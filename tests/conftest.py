"""Test fixtures: a real TimescaleDB (the private test cluster, or DATABASE_URL's server) and the real service.

Databases are copied from a migrated template (``CREATE DATABASE ... TEMPLATE``), so a test that needs a
clean schema gets one in a fraction of a second. Most tests share one running service and make their
own tenant: tenants are walls, so tests cannot see each other's data.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests import support
from tests.support import Service, Tenant, TestDatabase, new_database, running_service

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
JWT_SECRET = "test-secret-" + uuid.uuid4().hex


def start_test_cluster():
    """The private test cluster (.data/test-pg, port BEIDOU_TEST_PG_PORT), started if it is not running."""
    from app.core import localdb
    cluster = localdb.LocalCluster(root=ROOT / ".data" / "test-pg",
                                   port=int(os.environ.get("BEIDOU_TEST_PG_PORT", "55433")))
    localdb.start(cluster)
    return cluster


@pytest.fixture(scope="session")
def admin_server_url() -> str:
    """Admin URL of the server tests create databases on (database part is replaced per test)."""
    from app.core import localdb
    url = os.environ.get("BEIDOU_TEST_ADMIN_URL") or os.environ.get("DATABASE_ADMIN_URL")
    if url:
        return url
    if os.environ.get("DATABASE_URL"):
        pytest.exit("DATABASE_URL is set: also set BEIDOU_TEST_ADMIN_URL (a role that may create databases)", 2)
    cluster = start_test_cluster()
    support.use_app_password(cluster.credentials()[localdb.APP_ROLE])
    return cluster.admin_url("postgres")


@pytest.fixture(scope="session")
def template_db(admin_server_url: str) -> TestDatabase:
    """A migrated database that per-test databases are copied from."""
    from app.core import migrate
    name = f"beidou_tpl_{os.getpid()}"
    with support.cluster_wide(admin_server_url):
        tpl = TestDatabase.create(admin_server_url, name)
        migrate.upgrade(tpl.admin_url)
        tpl.ensure_app_login()
        tpl.freeze_as_template()
    yield tpl
    tpl.drop()


@pytest.fixture
def fresh_db(admin_server_url: str, template_db: TestDatabase) -> TestDatabase:
    """A database of its own, migrated, for tests that need a clean schema."""
    with new_database(admin_server_url, f"beidou_t_{uuid.uuid4().hex[:12]}", template_db.name) as db:
        yield db


@pytest.fixture
def empty_db(admin_server_url: str) -> TestDatabase:
    """A database with nothing in it (migration tests)."""
    with new_database(admin_server_url, f"beidou_e_{uuid.uuid4().hex[:12]}") as db:
        yield db


@pytest.fixture(scope="session")
def shared_db(admin_server_url: str, template_db: TestDatabase) -> TestDatabase:
    with new_database(admin_server_url, f"beidou_s_{os.getpid()}", template_db.name) as db:
        yield db


@pytest.fixture(scope="session")
def service(shared_db: TestDatabase, tmp_path_factory) -> Service:
    """The real API as a separate process (`beidou api`) on a free loopback port."""
    with running_service(shared_db, JWT_SECRET, tmp_path_factory.mktemp("service")) as svc:
        yield svc


@pytest.fixture
def tenant(service: Service) -> Tenant:
    """A brand-new insurer on the shared service."""
    return service.new_tenant()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
