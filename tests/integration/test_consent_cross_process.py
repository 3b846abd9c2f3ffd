"""A consent change made through one service process takes effect in every other one within a second."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import JWT_SECRET
from tests.support import receive_until, running_service


@pytest.fixture(scope="module")
def second_service(service, tmp_path_factory):
    """Another API process on the same database, as production runs several side by side."""
    with running_service(service.db, JWT_SECRET, tmp_path_factory.mktemp("second-service")) as svc:
        yield svc


def frame(seq: int, seconds_ago: int) -> str:
    when = datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)
    return json.dumps({"seq": seq, "readings": [{"metric": "heart_rate", "time": when.isoformat(), "value": 66}]})


def test_a_withdrawal_through_one_process_reaches_a_stream_on_another_within_a_second(service, second_service, tenant):
    token = tenant.person_token("quinn")
    first = tenant.client(token)
    assert first.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "v1"}).status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    with connect(second_service.ws_url, additional_headers=headers, open_timeout=10) as ws:
        ws.send(frame(1, 30))
        assert receive_until(ws, lambda m: m.get("seq") == 1, 10)["accepted"] == 1
        started = time.monotonic()
        assert first.delete("/v1/me/consents/heart_rate/monitoring").status_code == 200
        note = receive_until(ws, lambda m: m["type"] == "consent", 1.0)
        ws.send(frame(2, 20))
        ack = receive_until(ws, lambda m: m.get("seq") == 2, 1.0)
        elapsed = time.monotonic() - started
    assert note == {"type": "consent", "data_type": "heart_rate", "purpose": "monitoring", "granted": False}
    assert ack["results"][0]["reason"] == "no_consent"
    assert elapsed < 1.0


def test_a_grant_through_one_process_is_honoured_by_another_at_once(service, second_service, tenant):
    token = tenant.person_token("rosa")
    other = httpx.Client(base_url=second_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    when = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    batch = {"readings": [{"metric": "steps", "time": when, "value": 12}]}
    assert other.post("/v1/readings", json=batch).json()["results"][0]["reason"] == "no_consent"
    assert tenant.client(token).put("/v1/me/consents/steps/monitoring",
                                    json={"notice_version": "v1"}).status_code == 200
    assert other.post("/v1/readings", json=batch).json()["accepted"] == 1
