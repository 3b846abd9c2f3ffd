"""Helpers for tests that drive the real service and database from the outside."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from app.core import localdb
from app.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# The service role is cluster-wide: every test session on a cluster must use the same password for it, or
# concurrent sessions lock each other out. The local test cluster's own credentials provide it.
APP_PASSWORD = os.environ.get("BEIDOU_TEST_APP_PASSWORD", "beidou-test-app")


def use_app_password(password: str) -> None:
    global APP_PASSWORD
    APP_PASSWORD = password


def with_db(url: str, dbname: str, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{user}:{password}@{host}"
    return urlunsplit((parts.scheme, netloc, "/" + dbname, parts.query, parts.fragment))


@dataclass
class TestDatabase:
    server_admin_url: str
    name: str

    @classmethod
    def create(cls, server_admin_url: str, name: str, template: str | None = None) -> TestDatabase:
        cls(server_admin_url, name).drop()  # a leftover of an interrupted run
        with psycopg.connect(server_admin_url, autocommit=True) as conn:
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            conn.execute(stmt)
        return cls(server_admin_url, name)

    @property
    def admin_url(self) -> str:
        return with_db(self.server_admin_url, self.name)

    @property
    def app_url(self) -> str:
        return with_db(self.server_admin_url, self.name, "beidou_app", APP_PASSWORD)

    def freeze_as_template(self) -> None:
        """Make it a template nobody connects to: TimescaleDB's background scheduler would otherwise keep a
        session open in it, and ``CREATE DATABASE ... TEMPLATE`` refuses a template in use."""
        with psycopg.connect(self.server_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                sql.Identifier(self.name)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (self.name,))

    def ensure_app_login(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE beidou_app LOGIN PASSWORD {}").format(sql.Literal(APP_PASSWORD)))

    def drop(self) -> None:
        with psycopg.connect(self.server_admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)).fetchone()
            if exists:
                conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(self.name)))
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(self.name)))


@contextmanager
def new_database(server_admin_url: str, name: str, template: str | None = None) -> Iterator[TestDatabase]:
    """:meth:`TestDatabase.create` for the length of a ``with`` block (a fixture's lifetime), dropped after."""
    db = TestDatabase.create(server_admin_url, name, template)
    try:
        yield db
    finally:
        db.drop()


@contextmanager
def cluster_wide(server_admin_url: str):
    """One test process at a time: migrations and the service role's login change cluster-wide rows (roles),
    and parallel test processes share the cluster ("tuple concurrently updated" otherwise)."""
    with psycopg.connect(server_admin_url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(%s)", (localdb.ROLE_CHANGE_LOCK,))
        yield


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Tenant:
    id: uuid.UUID
    name: str
    service: Service

    def person_token(self, person: str, ttl_s: int = 3600) -> str:
        from app.auth import issue_token
        return issue_token(self.service.settings, tenant_id=self.id, subject=person, role="policyholder", ttl_s=ttl_s)

    def staff_token(self, staff: str, role: str = "care_agent") -> str:
        from app.auth import issue_token
        return issue_token(self.service.settings, tenant_id=self.id, subject=staff, role=role)

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@dataclass
class Service:
    db: TestDatabase
    settings: Settings
    env: dict
    port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    tenants: list = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def new_tenant(self, name: str | None = None) -> Tenant:
        from app import directory
        name = name or f"insurer-{uuid.uuid4().hex[:10]}"
        return Tenant(directory.add_tenant(self.db.admin_url, name), name, self)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "api", "--port", str(self.port)],
            env=self.env, cwd=ROOT, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"service did not become ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def app_conn(self, tenant_id=None, person_id=None) -> psycopg.Connection:
        """A connection as the service role with the given context, as the service itself would have."""
        conn = psycopg.connect(self.db.app_url, autocommit=True)
        conn.execute("SELECT set_config('beidou.tenant_id', %s, false), set_config('beidou.person_id', %s, false)",
                     ("" if tenant_id is None else str(tenant_id), "" if person_id is None else str(person_id)))
        return conn

    def admin_conn(self) -> psycopg.Connection:
        return psycopg.connect(self.db.admin_url, autocommit=True)


def service_env(db: TestDatabase, jwt_secret: str, data_dir: Path, port: int, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEIDOU_")}
    env.update({
        "DATABASE_URL": db.app_url, "DATABASE_ADMIN_URL": db.admin_url, "BEIDOU_JWT_SECRET": jwt_secret,
        "BEIDOU_DATA_DIR": str(data_dir), "BEIDOU_PORT": str(port), "BEIDOU_LOG_LEVEL": "WARNING",
        # One API process unless a test asks for more (the machine's cores are shared with PostgreSQL and the test).
        "BEIDOU_API_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def start_service(db: TestDatabase, jwt_secret: str, data_dir: Path, **extra: str) -> Service:
    port = free_port()
    env = service_env(db, jwt_secret, data_dir, port, **extra)
    settings = Settings(_env_file=None, database_url=db.app_url, jwt_secret=jwt_secret, data_dir=data_dir)
    svc = Service(db=db, settings=settings, env=env, port=port, log_path=data_dir / "service.log")
    svc.start()
    return svc


@contextmanager
def running_service(db: TestDatabase, jwt_secret: str, data_dir: Path, **extra: str) -> Iterator[Service]:
    """:func:`start_service` for the length of a ``with`` block (a fixture's lifetime)."""
    svc = start_service(db, jwt_secret, data_dir, **extra)
    try:
        yield svc
    finally:
        svc.stop()


def start_process(service: Service, *args: str, **extra_env: str) -> subprocess.Popen:
    """Another `beidou` process (worker, scheduler) against the same database as ``service``."""
    env = {**service.env, **extra_env}
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT,
                            stdout=service.log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def receive_until(ws, predicate, timeout: float = 10.0) -> dict:
    """The first WebSocket message ``predicate`` accepts (earlier ones are skipped); a timeout raises."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(message):
            return message


def wait_for(predicate, timeout: float = 30.0, every: float = 0.1):
    """Poll until ``predicate()`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
