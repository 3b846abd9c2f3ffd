"""Every limit answers with a clear error, and none takes the service down."""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from tests.faults import Phone, check_exactly_once, reading
from tests.faults.conftest import JWT_SECRET
from tests.support import running_service, start_service

STATEMENT_TIMEOUT_MS = 300
FRAMES_PER_S = 10
FRAME_BURST = 5


@pytest.fixture(scope="module")
def limits_service(fault_db, tmp_path_factory):
    """An API with a low frame-rate limit, so the limit is reached without a flood."""
    with running_service(fault_db, JWT_SECRET, tmp_path_factory.mktemp("limits-service"),
                         BEIDOU_WS_MAX_FRAMES_PER_S=str(FRAMES_PER_S), BEIDOU_WS_FRAME_BURST=str(FRAME_BURST)) as svc:
        yield svc


@pytest.fixture(scope="module")
def person(limits_service):
    tenant = limits_service.new_tenant()
    token = tenant.person_token("limit-tester")
    client = tenant.client(token)
    assert client.put("/v1/me/consents/heart_rate").status_code == 200
    return tenant, token, client


def healthy(service) -> bool:
    return httpx.get(service.base_url + "/healthz", timeout=5).status_code == 200


def row(section, what: str, response: httpx.Response) -> None:
    detail = response.json().get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    section.add(what, f"{response.status_code} — {detail[:120]}")


def test_bodies_and_batches_over_the_limits_get_413(limits_service, person, figures):
    _, _, client = person
    section = figures.section("limits")
    limit = limits_service.settings.max_body_bytes
    big = b'{"readings": [' + b" " * limit + b"]}"
    declared = client.post("/v1/readings", content=big, headers={"content-type": "application/json"})
    chunked = client.post("/v1/readings", content=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                          headers={"content-type": "application/json"})
    batch = client.post("/v1/readings", json={"readings": [reading(i) for i in range(5001)]})
    row(section, f"HTTP body of {len(big)} bytes (limit {limit}), Content-Length declared", declared)
    row(section, "the same body chunked, no Content-Length", chunked)
    row(section, "HTTP batch of 5001 readings (limit 5000)", batch)
    assert declared.status_code == chunked.status_code == batch.status_code == 413
    assert "5000" in batch.json()["detail"]
    ok = client.post("/v1/readings", json={"readings": [reading(7)]})
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    assert healthy(limits_service)


def test_page_sizes_and_query_ranges_are_bounded(limits_service, person, figures):
    tenant, _, client = person
    section = figures.section("limits")
    agent = tenant.client(tenant.staff_token("limit-agent"))
    now = datetime.now(timezone.utc)
    cases = [
        ("`GET /v1/care/alerts?limit=1000` (max 200)", agent.get("/v1/care/alerts", params={"limit": 1000})),
        ("`GET /v1/me/readings?limit=100000` (max 5000)", client.get("/v1/me/readings", params={"limit": 100_000})),
        ("`GET /v1/me/readings` over 400 days (max 366)",
         client.get("/v1/me/readings", params={"from": (now - timedelta(days=400)).isoformat(),
                                               "to": now.isoformat()})),
        ("`GET /v1/care/people/{p}/readings` over 500 days (max 400)",
         agent.get("/v1/care/people/limit-tester/readings",
                   params={"metric": "heart_rate", "from": (now - timedelta(days=500)).isoformat(),
                           "to": now.isoformat(), "bucket": "1d"})),
        ("`GET /v1/care/people/{p}/readings` 300 days in 1-minute buckets (max 20 000 buckets)",
         agent.get("/v1/care/people/limit-tester/readings",
                   params={"metric": "heart_rate", "from": (now - timedelta(days=300)).isoformat(),
                           "to": now.isoformat(), "bucket": "1m"})),
    ]
    for what, response in cases:
        row(section, what, response)
    assert [r.status_code for _, r in cases] == [422] * len(cases)
    assert healthy(limits_service)


def test_an_oversized_frame_gets_an_error_and_the_stream_keeps_working(limits_service, person, figures):
    _, token, _ = person
    limit = limits_service.settings.max_frame_bytes
    with connect(limits_service.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        ws.send(json.dumps({"seq": 1, "readings": [reading(10)]}).ljust(limit + 1))
        error = json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"seq": 2, "readings": [reading(11)]}))
        ack = json.loads(ws.recv(timeout=10))
    figures.section("limits").add(f"WebSocket frame of {limit + 1} bytes (limit {limit})",
                                  f"error frame `{error['code']}` — {error['detail']}; the next frame on the same "
                                  f"stream: `{ack['type']}`")
    assert error["code"] == "frame_too_large" and ack == {**ack, "type": "ack", "seq": 2, "accepted": 1}
    assert healthy(limits_service)


def test_frames_beyond_the_rate_limit_get_rate_limited_and_resent_frames_lose_nothing(limits_service, figures):
    tenant = limits_service.new_tenant()
    token = tenant.person_token("flooder")
    assert tenant.client(token).put("/v1/me/consents/heart_rate").status_code == 200
    frames = 60
    phone = Phone(limits_service, token, "flooder", frames=frames, per_frame=2, period=0.0, window=frames)

    async def flood() -> float:
        started = time.monotonic()
        await phone.run(deadline=started + 60)
        return time.monotonic() - started

    elapsed = asyncio.run(flood())
    stored = check_exactly_once([phone], limits_service.db.admin_url, tenant.id)
    limited = phone.tally.errors["rate_limited"]
    figures.section("limits").add(
        f"{frames} WebSocket frames sent at once (limit {FRAMES_PER_S}/s, burst {FRAME_BURST})",
        f"{limited} `rate_limited` error frames (retry_after {_range(phone.tally.retry_after)} s), each resent "
        f"after retry_after: all {frames} acknowledged in {elapsed:.1f} s ({frames / elapsed:.1f} frames/s), "
        f"{stored['rows']} of {stored['sent']} readings stored once, {phone.tally.reconnects} reconnects")
    assert limited > 0 and phone.tally.reconnects == 0 and not phone.tally.closes
    assert stored["lost"] == stored["duplicates"] == stored["unexpected"] == 0 and stored["rows"] == frames * 2
    assert frames / elapsed <= FRAMES_PER_S * 1.5
    assert healthy(limits_service)


def _range(values) -> str:
    values = sorted(values)
    if not values:
        return "none"
    return f"{values[0]:g}" if values[0] == values[-1] else f"{values[0]:g}–{values[-1]:g}"


def test_a_statement_over_the_timeout_answers_503_and_the_service_carries_on(fault_db, tmp_path, figures):
    """A fresh API with a 300 ms statement timeout; a lock held by someone else makes ingest and reads wait."""
    service = start_service(fault_db, JWT_SECRET, tmp_path, BEIDOU_STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS))
    try:
        tenant = service.new_tenant()
        token = tenant.person_token("slow")
        client = tenant.client(token)
        assert client.put("/v1/me/consents/heart_rate").status_code == 200
        assert client.get("/v1/me/readings").status_code == 200
        with psycopg.connect(fault_db.admin_url) as locker:  # a transaction, held open until the block ends
            locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            with ThreadPoolExecutor(4) as pool:
                posts = list(pool.map(lambda i: _timed(lambda: client.post(
                    "/v1/readings", json={"readings": [reading(1000 + i)]})), range(4)))
            read = _timed(lambda: client.get("/v1/me/readings"))
            alive = healthy(service)
            ready = httpx.get(service.base_url + "/readyz", timeout=5).status_code
            locker.rollback()
        after = [client.post("/v1/readings", json={"readings": [reading(2000 + i)]}) for i in range(12)]
        with ThreadPoolExecutor(6) as pool:
            after += list(pool.map(lambda i: client.post("/v1/readings", json={"readings": [reading(3000 + i)]}),
                                   range(12)))
        section = figures.section("limits")
        latencies = [t for _, t in posts]
        section.add(f"ingest while a lock holds `readings`, statement timeout {STATEMENT_TIMEOUT_MS} ms "
                    f"({len(posts)} concurrent POSTs)",
                    f"{_codes([r for r, _ in posts])} in {min(latencies):.2f}–{max(latencies):.2f} s, "
                    f"Retry-After {posts[0][0].headers.get('Retry-After')} — {posts[0][0].json()['detail']}")
        section.add("a read (`GET /v1/me/readings`) behind the same lock",
                    f"{read[0].status_code} in {read[1]:.2f} s; meanwhile /healthz {200 if alive else 'down'}, "
                    f"/readyz {ready}")
        section.add("the same API once the lock is gone (24 POSTs, 6 at a time)",
                    f"{_codes(after)}; {sum(r.json().get('accepted', 0) for r in after if r.status_code == 200)} "
                    "readings accepted")
        assert all(r.status_code == 503 and r.headers.get("Retry-After") for r, _ in posts), [r.text for r, _ in posts]
        assert all("statement timeout" in r.json()["detail"] for r, _ in posts)
        assert read[0].status_code == 503 and alive and ready == 200
        assert [r.status_code for r in after] == [200] * len(after), [r.text for r in after if r.status_code != 200]
        assert healthy(service)
    finally:
        service.stop()


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _codes(responses) -> dict:
    counts: dict = {}
    for r in responses:
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
    return counts
