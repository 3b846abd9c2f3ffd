"""A real streaming replica (pg_basebackup + hot standby of the test cluster) serves care charts; a replica
that falls behind is skipped, and one that is down leaves the primary to answer."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from app.core import localdb
from tests.conftest import JWT_SECRET, ROOT
from tests.support import free_port, start_service, with_db

MAX_LAG_S = 4


@pytest.fixture
def replica(admin_server_url):
    primary = localdb.LocalCluster(root=ROOT / ".data" / "test-pg",
                                   port=int(os.environ.get("BEIDOU_TEST_PG_PORT", "55433")))
    standby = localdb.start_replica(primary, primary.root.parent / f"{primary.root.name}-replica", free_port())
    try:
        yield standby
    finally:
        localdb.remove(standby)


def _chart_count(supervisor, since: datetime) -> int:
    answer = supervisor.get("/v1/care/people/lin/readings",
                            params={"metric": "heart_rate", "from": since.isoformat(),
                                    "to": (since + timedelta(hours=2)).isoformat(), "bucket": "1d"})
    assert answer.status_code == 200, answer.text
    return sum(p["count"] for p in answer.json()["points"])


def _write(admin_url: str, tenant_id, pid, since: datetime, n: int, offset: int) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        SELECT %s + make_interval(secs => %s + i), %s, %s, 'heart_rate', 70, 'watch', 0
                          FROM generate_series(1, %s) i""", (since, offset, tenant_id, pid, n))


def _replica_has(replica_admin: str, pid, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(replica_admin, autocommit=True) as conn:
            if conn.execute("SELECT count(*) FROM readings WHERE person_id = %s", (pid,)).fetchone()[0] >= n:
                return
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.2)


def test_reads_go_to_a_replica_that_is_close_enough_and_to_the_primary_otherwise(shared_db, replica,
                                                                                 tmp_path):
    replica_app = with_db(replica.url(localdb.APP_ROLE, shared_db.name), shared_db.name,
                          *_app_login(shared_db))
    replica_admin = with_db(replica.admin_url(shared_db.name), shared_db.name)
    service = start_service(shared_db, JWT_SECRET, tmp_path, BEIDOU_READ_DATABASE_URL=replica_app,
                            BEIDOU_READ_MAX_LAG_S=str(MAX_LAG_S))
    try:
        tenant = service.new_tenant()
        client = tenant.client(tenant.person_token("lin"))
        assert client.put("/v1/me/consents/heart_rate").status_code == 200
        with service.admin_conn() as conn:
            pid = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = 'lin'",
                               (tenant.id,)).fetchone()[0]
        supervisor = tenant.client(tenant.staff_token("sup-1", role="care_supervisor"))
        since = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
        _write(shared_db.admin_url, tenant.id, pid, since, 10, 0)
        _replica_has(replica_admin, pid, 10)

        # Replay paused: the replica still holds 10 readings while the primary has 15. The chart answers 10
        # (served by the replica) while the replica's lag is within the limit …
        with psycopg.connect(replica_admin, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            _write(shared_db.admin_url, tenant.id, pid, since, 5, 100)
            assert _chart_count(supervisor, since) == 10
            # … and 15 (the primary) once the replica is further behind than BEIDOU_READ_MAX_LAG_S.
            time.sleep(MAX_LAG_S + 1.5)
            assert _chart_count(supervisor, since) == 15
            conn.execute("SELECT pg_wal_replay_resume()")
        _replica_has(replica_admin, pid, 15)

        # The replica goes away: reads fall back to the primary, no error.
        localdb.remove(replica)
        _write(shared_db.admin_url, tenant.id, pid, since, 1, 200)
        time.sleep(1.2)
        assert _chart_count(supervisor, since) == 16
        export = client.get("/v1/me/export")
        assert export.status_code == 200 and export.json()["counts"]["readings"] == 16
    finally:
        service.stop()


def _app_login(db) -> tuple[str, str]:
    from psycopg.conninfo import conninfo_to_dict
    info = conninfo_to_dict(db.app_url)
    return info["user"], info["password"]
