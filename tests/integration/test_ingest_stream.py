"""WebSocket streaming ingest, driven from outside with a real WebSocket client."""
from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support import receive_until

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def frame(seq: int, *values: float, start: int = 0, source: str = "watch-1") -> str:
    readings = [{"metric": "heart_rate", "time": (NOW - timedelta(seconds=start + i)).isoformat(), "value": v,
                 "source": source} for i, v in enumerate(values)]
    return json.dumps({"seq": seq, "readings": readings})


def open_stream(service, token: str):
    return connect(service.ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)


def count(service, tenant, person: str) -> int:
    with service.admin_conn() as conn:
        return conn.execute("""SELECT count(*) FROM readings r JOIN people p ON p.id = r.person_id
                               WHERE p.tenant_id = %s AND p.external_id = %s""", (tenant.id, person)).fetchone()[0]


def group_commits(service) -> float:
    """Transactions the API process's ingest writer has committed so far (its metrics)."""
    text = httpx.get(service.base_url + "/metrics").text
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("beidou_ingest_group_rows_count")))


@pytest.fixture
def carol(tenant):
    token = tenant.person_token("carol")
    assert tenant.client(token).put("/v1/me/consents/heart_rate").status_code == 200
    return token


def test_each_frame_is_acknowledged_after_its_readings_are_committed(service, tenant, carol):
    with open_stream(service, carol) as ws:
        ws.send(frame(1, 70, 71, 72))
        ack = receive_until(ws, lambda m: m.get("seq") == 1)
        # The ack arrives only after commit: the readings are there the moment we see it.
        assert ack["type"] == "ack" and ack["accepted"] == 3
        assert count(service, tenant, "carol") == 3
        ws.send(frame(2, 70, 71, 72))  # a resend after a lost ack
        assert receive_until(ws, lambda m: m.get("seq") == 2)["duplicate"] == 3
    assert count(service, tenant, "carol") == 3


def test_a_malformed_or_oversized_frame_gets_an_error_and_the_connection_keeps_working(service, tenant, carol):
    with open_stream(service, carol) as ws:
        ws.send(frame(1, 60, start=100))
        ws.send("{not json")
        ws.send(json.dumps({"seq": "x", "readings": []}))
        ws.send(json.dumps({"seq": 9, "readings": [{"metric": "heart_rate"}] * 10}).ljust(600_000))
        ws.send(json.dumps({"seq": 10, "readings": [{"metric": "heart_rate", "time": NOW.isoformat(),
                                                     "value": 1}] * 5001}))
        ws.send(frame(2, 61, start=200))
        messages = [json.loads(ws.recv(timeout=10)) for _ in range(6)]
    by_kind = {}
    for m in messages:
        by_kind.setdefault(m.get("code") or m["type"], []).append(m)
    assert len(by_kind["malformed_frame"]) == 2
    assert "byte" in by_kind["malformed_frame"][0]["detail"] or "$.seq" in by_kind["malformed_frame"][0]["detail"]
    assert by_kind["frame_too_large"][0]["seq"] is None
    assert by_kind["batch_too_large"][0]["seq"] == 10
    assert sorted(m["seq"] for m in by_kind["ack"]) == [1, 2]
    assert count(service, tenant, "carol") == 2


def test_per_item_results_travel_in_the_ack(service, tenant, carol):
    with open_stream(service, carol) as ws:
        ws.send(json.dumps({"seq": 5, "readings": [
            {"metric": "heart_rate", "time": NOW.isoformat(), "value": 64},
            {"metric": "heart_rate", "time": NOW.isoformat(), "value": 500, "source": "b"},
            {"metric": "steps", "time": NOW.isoformat(), "value": 12}]}))
        ack = receive_until(ws, lambda m: m.get("seq") == 5)
    assert [(r["status"], r.get("reason")) for r in ack["results"]] == [
        ("accepted", None), ("rejected", "implausible_value"), ("rejected", "no_consent")]


def test_a_withdrawal_reaches_every_open_stream_at_once(service, tenant, carol):
    with open_stream(service, carol) as phone, open_stream(service, carol) as watch:
        phone.send(frame(1, 70))
        receive_until(phone, lambda m: m.get("seq") == 1)
        started = time.monotonic()
        assert tenant.client(carol).delete("/v1/me/consents/heart_rate").status_code == 200
        for ws in (phone, watch):
            note = receive_until(ws, lambda m: m["type"] == "consent", timeout=2)
            assert note == {"type": "consent", "data_type": "heart_rate", "purpose": "monitoring", "granted": False}
        assert time.monotonic() - started < 2
        watch.send(frame(2, 71, start=50))
        ack = receive_until(watch, lambda m: m.get("seq") == 2)
        assert ack["results"][0]["reason"] == "no_consent"
    assert count(service, tenant, "carol") == 1


def test_another_persons_withdrawal_does_not_reach_my_stream(service, tenant, carol):
    dave = tenant.person_token("dave")
    tenant.client(dave).put("/v1/me/consents/heart_rate")
    with open_stream(service, carol) as ws:
        tenant.client(dave).delete("/v1/me/consents/heart_rate")
        ws.send(frame(1, 70))
        first = json.loads(ws.recv(timeout=5))
    assert first["type"] == "ack"


@pytest.mark.parametrize("token", [None, "garbage"])
def test_the_handshake_refuses_missing_or_bad_tokens(service, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with pytest.raises(InvalidStatus) as refused:
        connect(service.ws_url, additional_headers=headers, open_timeout=5)
    assert refused.value.response.status_code == 403


def test_the_token_may_come_as_a_query_parameter_for_browsers(service, tenant, carol):
    with connect(service.ws_url + f"?access_token={carol}", open_timeout=5) as ws:
        ws.send(frame(1, 70))
        assert receive_until(ws, lambda m: m.get("seq") == 1)["accepted"] == 1


def test_frames_from_many_streams_are_committed_together(service, tenant):
    """200 concurrent streams each send frames; all are stored once, in fewer commits than frames."""
    tokens = [tenant.person_token(f"p{i}") for i in range(200)]
    for t in tokens:
        tenant.client(t).put("/v1/me/consents/heart_rate")
    before = group_commits(service)
    errors = []
    barrier = threading.Barrier(len(tokens))

    def run(token: str) -> None:
        try:
            with open_stream(service, token) as ws:
                barrier.wait(timeout=30)
                for seq in range(3):
                    ws.send(frame(seq, 60, 61, start=seq * 10))
                acks = [receive_until(ws, lambda m: m["type"] == "ack") for _ in range(3)]
                assert sum(a["accepted"] for a in acks) == 6
        except Exception as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    with service.admin_conn() as conn:
        total = conn.execute("SELECT count(*) FROM readings WHERE tenant_id = %s", (tenant.id,)).fetchone()[0]
    assert total == 200 * 6
    assert group_commits(service) - before < 600


def test_frames_trickling_in_from_many_streams_share_transactions(service, tenant):
    """Frames a few ms apart on different streams are committed together (group commit across streams),
    each still acknowledged on its own after the commit."""
    tokens = [tenant.person_token(f"trickle{i}") for i in range(20)]
    for t in tokens:
        assert tenant.client(t).put("/v1/me/consents/heart_rate").status_code == 200
    with contextlib.ExitStack() as opened:
        streams = [opened.enter_context(open_stream(service, t)) for t in tokens]
        before = group_commits(service)
        started = time.monotonic()
        for seq in range(2):
            for i, ws in enumerate(streams):  # one frame every ~5 ms: each alone would find the writer idle
                ws.send(frame(seq, 60 + i, start=1000 + seq * 10))
                time.sleep(0.005)
        sending = time.monotonic() - started
        acks = [receive_until(ws, lambda m: m["type"] == "ack" and m["seq"] == seq)
                for ws in streams for seq in range(2)]
    assert [a["accepted"] for a in acks] == [1] * 40
    # 40 frames over ~0.25 s: each frame alone would be one transaction; gathered, about one per 20 ms window
    # (however long a slow machine took to send them).
    commits = group_commits(service) - before
    assert commits < 40 and commits <= sending / 0.020 + 2, (commits, sending)


def test_one_transaction_stores_each_persons_readings_only_as_far_as_their_own_consent_allows(service, tenant):
    """People in different consent states send at the same moment (their frames share a transaction, where
    consent is read for all of them at once): each person's readings are stored only for the data types
    whose consent is in force for that person, whatever the others have granted."""
    names = ["granted", "steps-only", "withdrawn", "never", "lapsed"]
    tokens = {name: tenant.person_token(f"mixed-{name}") for name in names}

    def consent(name: str, method: str, data_type: str) -> None:
        answer = getattr(tenant.client(tokens[name]), method)(f"/v1/me/consents/{data_type}")
        assert answer.status_code == 200, answer.text

    consent("granted", "put", "heart_rate")
    consent("steps-only", "put", "steps")
    consent("withdrawn", "put", "heart_rate")
    consent("withdrawn", "delete", "heart_rate")
    consent("lapsed", "put", "heart_rate")
    with service.admin_conn() as conn:  # its valid_until has just passed; the expiry job has not run yet
        conn.execute("""UPDATE consent_state SET valid_until = now() - interval '1 second'
                         WHERE person_id = (SELECT id FROM people WHERE tenant_id = %s AND external_id = %s)""",
                     (tenant.id, "mixed-lapsed"))
    body = json.dumps({"seq": 1, "readings": [
        {"metric": "heart_rate", "time": (NOW - timedelta(seconds=5)).isoformat(), "value": 64},
        {"metric": "steps", "time": (NOW - timedelta(seconds=5)).isoformat(), "value": 12}]})
    with contextlib.ExitStack() as opened:
        streams = {name: opened.enter_context(open_stream(service, tokens[name])) for name in names}
        for ws in streams.values():
            ws.send(body)
        acks = {name: receive_until(ws, lambda m: m["type"] == "ack") for name, ws in streams.items()}
    stored = {name: [r["status"] for r in acks[name]["results"]] for name in names}
    assert stored == {"granted": ["accepted", "rejected"], "steps-only": ["rejected", "accepted"],
                      "withdrawn": ["rejected", "rejected"], "never": ["rejected", "rejected"],
                      "lapsed": ["rejected", "rejected"]}
    assert {name: count(service, tenant, f"mixed-{name}") for name in names} == {
        "granted": 1, "steps-only": 1, "withdrawn": 0, "never": 0, "lapsed": 0}
