"""Fixtures of the fault tests: their own database and API process (they kill it), and the report hooks.

The fault tests never stop the shared test cluster: the PostgreSQL outage runs against a private cluster of its
own (``test_db_outage.py``). Everything else uses a database copied from the migrated template on the shared
cluster, served by an API process of its own, so killing it disturbs no other test.
"""
from __future__ import annotations

import os
import uuid

import psycopg
import pytest

from tests.faults.report import REPORT
from tests.support import Service, TestDatabase, new_database, running_service

FAULTS_DIR = os.path.dirname(__file__)
JWT_SECRET = "fault-secret-" + uuid.uuid4().hex


def _is_fault_item(item) -> bool:
    return str(item.path).startswith(FAULTS_DIR + os.sep)


def pytest_deselected(items) -> None:
    REPORT.deselected += [item.nodeid for item in items if _is_fault_item(item)]


def pytest_collection_finish(session) -> None:
    REPORT.selected = [item.nodeid for item in session.items if _is_fault_item(item)]


def pytest_runtest_logreport(report) -> None:
    if report.nodeid in REPORT.selected:
        REPORT.outcome(report.nodeid, report.when, report.outcome, report.duration)


def pytest_sessionfinish(session, exitstatus) -> None:
    if not any(REPORT.outcomes.get(n) for n in REPORT.selected):
        return  # no fault test actually ran (collection only, or all skipped before running)
    path = REPORT.write()
    if path is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"fault figures written to {path.relative_to(path.parents[1])}")


@pytest.fixture(scope="session")
def fault_db(admin_server_url: str, template_db: TestDatabase) -> TestDatabase:
    """A database of the fault tests' own, copied from the migrated template."""
    with new_database(admin_server_url, f"beidou_f_{os.getpid()}", template_db.name) as db:
        with psycopg.connect(db.admin_url, autocommit=True) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
            tsdb = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        REPORT.environment["database"] = f"PostgreSQL {pg.split()[0]}, TimescaleDB {tsdb[0] if tsdb else '?'}"
        yield db


@pytest.fixture(scope="session")
def fault_service(fault_db: TestDatabase, tmp_path_factory) -> Service:
    """An API process on the fault database; tests may kill and restart it (``stop(SIGKILL)``, ``start()``)."""
    with running_service(fault_db, JWT_SECRET, tmp_path_factory.mktemp("fault-service")) as svc:
        yield svc


@pytest.fixture
def figures():
    """The report, for tests to record what they measured."""
    return REPORT
