"""When consent cannot be read, nothing is accepted: the gate fails closed, and recovers by itself."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import JWT_SECRET
from tests.support import running_service


@pytest.fixture
def impatient_service(fresh_db, tmp_path):
    """A service of its own that gives up on a statement after one second."""
    with running_service(fresh_db, JWT_SECRET, tmp_path, BEIDOU_STATEMENT_TIMEOUT_MS="1000") as svc:
        yield svc


def batch() -> dict:
    return {"readings": [{"metric": "heart_rate", "value": 70,
                          "time": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()}]}


def test_readings_are_refused_while_consent_cannot_be_read(impatient_service):
    tenant = impatient_service.new_tenant()
    token = tenant.person_token("pia")
    pia = tenant.client(token)
    assert pia.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "v1"}).status_code == 200
    blocker = psycopg.connect(impatient_service.db.admin_url)  # owner; holds the lock until rollback
    try:
        blocker.execute("LOCK TABLE consent_state IN ACCESS EXCLUSIVE MODE")
        refused = pia.post("/v1/readings", json=batch())
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert refused.json()["code"] == "unavailable"
        assert pia.get("/v1/me/consents").status_code == 503
        with connect(impatient_service.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                     open_timeout=10) as ws:
            ws.send(json.dumps({"seq": 1, **batch()}))
            answer = json.loads(ws.recv(timeout=10))
        assert (answer["type"], answer["code"], answer["seq"]) == ("error", "unavailable", 1)
    finally:
        blocker.rollback()
        blocker.close()
    with psycopg.connect(impatient_service.db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
    assert pia.post("/v1/readings", json=batch()).json()["accepted"] == 1


def test_both_websocket_handshakes_answer_a_database_outage_the_same_way(impatient_service):
    tenant = impatient_service.new_tenant()
    base = impatient_service.ws_url.rsplit("/v1/", 1)[0]
    blocker = psycopg.connect(impatient_service.db.admin_url)
    answers = []
    try:
        blocker.execute("LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")  # nobody new can be looked up
        for path, token in (("/v1/stream", tenant.person_token("new-person")),
                            ("/v1/care/live", tenant.staff_token("new-agent"))):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{base}{path}", additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)
            response = refused.value.response
            answers.append((response.status_code, response.headers.get("Retry-After") is not None,
                            json.loads(response.body)["code"]))
    finally:
        blocker.rollback()
        blocker.close()
    assert answers == [(503, True, "unavailable"), (503, True, "unavailable")]
