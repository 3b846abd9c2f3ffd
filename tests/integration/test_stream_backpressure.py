"""A stream whose frames cannot be committed fast enough is told to slow down, and loses nothing."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from websockets.sync.client import connect

from tests.conftest import JWT_SECRET
from tests.support import start_service

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def tight_service(shared_db, tmp_path_factory):
    svc = start_service(shared_db, JWT_SECRET, tmp_path_factory.mktemp("tight"), BEIDOU_WS_MAX_INFLIGHT_FRAMES="3")
    yield svc
    svc.stop()


def frame(seq: int, n: int = 5) -> str:
    return json.dumps({"seq": seq, "readings": [
        {"metric": "heart_rate", "time": (NOW - timedelta(seconds=100 * seq + i)).isoformat(), "value": 60 + i}
        for i in range(n)]})


def test_a_stalled_database_gets_slow_down_and_every_frame_is_stored_once_it_recovers(tight_service):
    tenant = tight_service.new_tenant()
    token = tenant.person_token("bo")
    assert tenant.client(token).put("/v1/me/consents/heart_rate/monitoring",
                                    json={"notice_version": "v1"}).status_code == 200
    blocker = psycopg.connect(tight_service.db.admin_url)
    # Commits queue behind this lock: the stream's frames wait for the database.
    blocker.execute("LOCK TABLE detection_work IN EXCLUSIVE MODE")
    messages = []
    with connect(tight_service.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                 open_timeout=10) as ws:
        try:
            for seq in range(8):
                ws.send(frame(seq))
            deadline = time.monotonic() + 5
            while not any(m["type"] == "slow_down" for m in messages) and time.monotonic() < deadline:
                messages.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
        finally:
            blocker.rollback()
            blocker.close()
        assert [m["type"] for m in messages] == ["slow_down"]  # nothing acknowledged while nothing is committed
        acks = {}
        while len(acks) < 8:
            m = json.loads(ws.recv(timeout=10))
            if m["type"] == "ack":
                acks[m["seq"]] = m["accepted"]
    assert acks == {seq: 5 for seq in range(8)}
    with tight_service.app_conn(tenant.id) as conn:
        assert conn.execute("SELECT count(*) FROM readings WHERE tenant_id = %s", (tenant.id,)).fetchone()[0] == 40
