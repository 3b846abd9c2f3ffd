"""What the benchmarks share: the database server they run on, a fresh migrated database, the service under
load, the CPU and memory of processes, and percentiles.

Each benchmark is a script (``.venv/bin/python bench/x.py``) that puts the checkout on ``sys.path`` and then
imports from here.
"""
from __future__ import annotations

import argparse
import os
import re
import uuid
from pathlib import Path

import psycopg

from tests.support import Service, TestDatabase, start_service, use_app_password

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def command_line(doc: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser, its ``--help`` the module's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def server(*, local: bool = False):
    """``(admin URL of the server, local cluster or None)``: BEIDOU_TEST_ADMIN_URL's server unless ``local``,
    else the local test cluster (BEIDOU_TEST_PG_PORT), started if it is not running; the service role then
    logs in with the cluster's own password, as the tests do."""
    from app.core import localdb
    admin = None if local else os.environ.get("BEIDOU_TEST_ADMIN_URL")
    if admin:
        return admin, None
    cluster = localdb.start(localdb.LocalCluster(ROOT / ".data" / "test-pg",
                                                 int(os.environ.get("BEIDOU_TEST_PG_PORT", "55433"))))
    use_app_password(cluster.credentials()[localdb.APP_ROLE])
    return cluster.admin_url("postgres"), cluster


def fresh_database(admin_url: str, prefix: str, *, app_login: bool = True) -> TestDatabase:
    """A new database named ``prefix_<random>``, migrated, the service role able to log in; dropped again if
    that fails."""
    from app.core import migrate
    db = TestDatabase.create(admin_url, f"{prefix}_{uuid.uuid4().hex[:8]}")
    try:
        migrate.upgrade(db.admin_url)
        if app_login:
            db.ensure_app_login()
    except BaseException:
        db.drop()
        raise
    return db


def start_api(db: TestDatabase, name: str, **env: str) -> Service:
    """`beidou api` on ``db``, its data and log under ``.data/<name>``, with a fresh signing secret."""
    data_dir = ROOT / ".data" / name
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_service(db, f"{name}-{uuid.uuid4().hex}", data_dir, **env)


def migration_statement(file_name: str, opening: str) -> str:
    """The statement of ``migrations/<file_name>`` that begins with ``opening``, up to its semicolon: a bench
    that loads rows with triggers off fills what the triggers keep exactly as the migration's backfill does."""
    text = (ROOT / "migrations" / file_name).read_text()
    match = re.search(re.escape(opening) + r".*?;\n", text, re.S)
    if match is None:
        raise LookupError(f"{file_name} has no statement beginning {opening!r}")
    return match.group(0)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank from below; NaN for none)."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it (uvicorn's supervisor and its API processes)."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            pids += [int(c) for c in Path(f"/proc/{pids[i]}/task/{pids[i]}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass
        i += 1
    return pids


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every live process below it."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += cpu_seconds(p)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def tree_memory_mib(pid: int, field: str = "VmHWM:") -> float:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1024


def postgres_cpu(admin_url: str) -> float:
    """CPU seconds of this benchmark's PostgreSQL server: the postmaster, its live processes, and (cutime/cstime)
    every backend it has already reaped, so connections closed during a scenario still count. Other clusters on
    the machine do not."""
    global _POSTMASTER
    if _POSTMASTER is None:
        with psycopg.connect(admin_url) as conn:
            data = conn.execute("SHOW data_directory").fetchone()[0]
        _POSTMASTER = int(Path(data, "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{_POSTMASTER}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / TICKS
    for pid in process_tree(_POSTMASTER)[1:]:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


_POSTMASTER: int | None = None
