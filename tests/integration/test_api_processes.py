"""`beidou api --workers 2`: two processes on one port, and what crosses processes still reaches every client."""
from __future__ import annotations

import json
from contextlib import ExitStack
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from websockets.sync.client import connect

from alerts.repository import ALERT_CHANNEL
from tests.conftest import JWT_SECRET
from tests.support import start_service, wait_for


@pytest.fixture(scope="module")
def two_process_service(shared_db, tmp_path_factory):
    svc = start_service(shared_db, JWT_SECRET, tmp_path_factory.mktemp("two-processes"), BEIDOU_API_WORKERS="2")
    yield svc
    svc.stop()


def children(pid: int) -> list[int]:
    """The API processes under uvicorn's supervisor (not multiprocessing's resource tracker)."""
    pids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def serving_process(svc, ws) -> int:
    """The API process holding the server side of this client connection (from /proc: socket inode → fd)."""
    client_port = ws.socket.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == svc.port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    assert inode is not None
    for pid in children(svc.process.pid):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                pass
    raise AssertionError("no API process holds the connection")


def frame(seq: int, seconds_ago: int) -> str:
    when = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return json.dumps({"seq": seq, "readings": [{"metric": "heart_rate", "time": when.isoformat(), "value": 66}]})


def receive_until(ws, predicate, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(message):
            return message


def open_on_both(svc, url: str, headers: dict, stack: ExitStack) -> dict[int, object]:
    """One connection served by each of the two processes (connections land where the kernel puts them)."""
    by_process: dict[int, object] = {}
    extra = []
    for _ in range(60):
        ws = stack.enter_context(connect(url, additional_headers=headers, open_timeout=10))
        pid = serving_process(svc, ws)
        if pid in by_process:
            extra.append(ws)
        else:
            by_process[pid] = ws
        if len(by_process) == 2:
            break
        time.sleep(0.02)
    for ws in extra:
        ws.close()
    assert len(by_process) == 2, "every connection landed on the same process"
    return by_process


def test_two_processes_share_the_port(two_process_service):
    wait_for(lambda: len(children(two_process_service.process.pid)) == 2, 10)


def test_a_withdrawal_reaches_streams_on_both_processes_and_both_then_refuse(two_process_service):
    tenant = two_process_service.new_tenant()
    token = tenant.person_token("pia")
    client = tenant.client(token)
    assert client.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "v1"}).status_code == 200
    with ExitStack() as stack:
        streams = open_on_both(two_process_service, two_process_service.ws_url, {"Authorization": f"Bearer {token}"},
                               stack)
        for n, ws in enumerate(streams.values()):
            ws.send(frame(1, 60 + n))
            assert receive_until(ws, lambda m: m.get("seq") == 1, 10)["accepted"] == 1
        assert client.delete("/v1/me/consents/heart_rate/monitoring").status_code == 200
        for n, ws in enumerate(streams.values()):
            note = receive_until(ws, lambda m: m["type"] == "consent", 2.0)
            assert note == {"type": "consent", "data_type": "heart_rate", "purpose": "monitoring", "granted": False}
            ws.send(frame(2, 30 + n))
            assert receive_until(ws, lambda m: m.get("seq") == 2, 5)["results"][0]["reason"] == "no_consent"


def test_an_alert_change_reaches_care_feeds_on_both_processes(two_process_service):
    tenant = two_process_service.new_tenant()
    url = two_process_service.ws_url.replace("/v1/stream", "/v1/care/live")
    with ExitStack() as stack:
        feeds = open_on_both(two_process_service, url, {"Authorization": f"Bearer {tenant.staff_token('ana')}"}, stack)
        with psycopg.connect(two_process_service.db.admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (ALERT_CHANNEL, f"{tenant.id}|4242|opened"))
        for ws in feeds.values():
            assert json.loads(ws.recv(timeout=3)) == {"type": "alert", "alert_id": "4242", "action": "opened"}


def test_group_commit_from_both_processes_stores_every_acknowledged_reading(two_process_service):
    tenant = two_process_service.new_tenant()
    token = tenant.person_token("lev")
    assert tenant.client(token).put("/v1/me/consents/heart_rate/monitoring",
                                    json={"notice_version": "v1"}).status_code == 200
    acked = 0
    with ExitStack() as stack:
        streams = open_on_both(two_process_service, two_process_service.ws_url, {"Authorization": f"Bearer {token}"},
                               stack)
        for n, ws in enumerate(streams.values()):
            for seq in range(5):
                ws.send(frame(seq, 1000 * n + 10 * seq + 100))
            for seq in range(5):
                acked += receive_until(ws, lambda m: m.get("type") == "ack", 10)["accepted"]
    with two_process_service.app_conn(tenant.id) as conn:
        stored = conn.execute("SELECT count(*) FROM readings WHERE tenant_id = %s", (tenant.id,)).fetchone()[0]
    assert acked == stored == 10
