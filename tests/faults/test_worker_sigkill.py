"""The detection worker is killed (SIGKILL) mid-batch, several times: on restart no baseline is forgotten, no
anomaly event or alert is repeated, and the result is what an uninterrupted worker makes of the same data."""
from __future__ import annotations

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.conftest import JWT_SECRET
from tests.integration.test_detection_worker import synthetic_history
from tests import support
from tests.support import start_process, start_service, stop_process, wait_for

DAYS = 60          # ~63 k readings per person: more than one detection pass (50 k) each
KILLED = 3         # people whose worker is killed
KILLS = 5
SEED = 20261125


@pytest.fixture(scope="module")
def detection_service(admin_server_url, template_db, tmp_path_factory):
    """A database and API of this test's own: the worker it kills has nobody else's backlog to work on, so every
    transaction it holds open is one of the people below."""
    db = support.TestDatabase.create(admin_server_url, f"beidou_fw_{os.getpid()}", template=template_db.name)
    svc = start_service(db, JWT_SECRET, tmp_path_factory.mktemp("detection-service"))
    yield svc
    svc.stop()
    db.drop()


def load(tenant, person: str, items: list[dict]) -> None:
    client = tenant.client(tenant.person_token(person))
    for data_type in ("heart_rate", "steps"):
        assert client.put(f"/v1/me/consents/{data_type}").status_code == 200
    with tenant.service.admin_conn() as conn:
        conn.execute("UPDATE people SET time_zone = 'Asia/Shanghai' WHERE tenant_id = %s AND external_id = %s",
                     (tenant.id, person))
    for i in range(0, len(items), 5000):
        r = client.post("/v1/readings", json={"readings": items[i:i + 5000]})
        assert r.status_code == 200 and r.json()["rejected"] == 0, r.text[:300]


def states(conn, tenant_id) -> dict[str, tuple]:
    """Per person: (readings_seen, readings stored up to the cursor) — equal if nothing was forgotten or counted
    twice."""
    rows = conn.execute(
        """SELECT p.external_id, s.readings_seen,
                  (SELECT count(*) FROM readings r WHERE r.person_id = s.person_id AND r.time <= s.cursor_time)
             FROM detector_state s JOIN people p ON p.id = s.person_id WHERE s.tenant_id = %s""",
        (tenant_id,)).fetchall()
    return {person: (seen, upto) for person, seen, upto in rows}


def outcome(conn, tenant_id, person: str) -> dict:
    """What detection and alerting made of a person's data, without ids or wall-clock times."""
    events = conn.execute(
        """SELECT e.kind, e.feature, e.tier, e.start_time, e.end_time, e.reason, e.handled_at IS NOT NULL,
                  (SELECT count(*) FROM alert_evidence v WHERE v.anomaly_event_id = e.id)
             FROM anomaly_events e JOIN people p ON p.id = e.person_id
            WHERE e.tenant_id = %s AND p.external_id = %s ORDER BY e.start_time, e.feature, e.tier""",
        (tenant_id, person)).fetchall()
    alerts = conn.execute(
        """SELECT a.kind, a.feature, a.tier, a.severity, a.status, a.episode_start, a.episode_end,
                  (SELECT array_agg(t.action ORDER BY t.id) FROM alert_timeline t WHERE t.alert_id = a.id),
                  (SELECT count(*) FROM alert_evidence v WHERE v.alert_id = a.id)
             FROM alerts a JOIN people p ON p.id = a.person_id
            WHERE a.tenant_id = %s AND p.external_id = %s ORDER BY a.kind, a.feature, a.episode_start""",
        (tenant_id, person)).fetchall()
    return {"events": events, "alerts": alerts}


def in_transaction(conn, longer_than_ms: int = 0) -> bool:
    """The worker holds a transaction open (for longer than ``longer_than_ms``): a detection pass is under way."""
    return bool(conn.execute(
        """SELECT count(*) FROM pg_stat_activity WHERE application_name = 'beidou-worker'
              AND datname = current_database() AND state IN ('active', 'idle in transaction') AND xact_start IS NOT NULL
              AND now() - xact_start >= %s * interval '1 millisecond'""", (longer_than_ms,)).fetchone()[0])


def test_a_worker_killed_mid_batch_forgets_nothing_and_repeats_nothing(detection_service, figures):
    service = detection_service
    items = synthetic_history(days=DAYS, sick_nights=4)
    killed_tenant, reference_tenant = service.new_tenant(), service.new_tenant()
    people = [f"k{i}" for i in range(KILLED)]
    started = time.monotonic()
    with ThreadPoolExecutor(KILLED) as pool:
        list(pool.map(lambda p: load(killed_tenant, p, items), people))
    loaded = time.monotonic() - started
    rng = random.Random(SEED)
    kills = []  # (seconds after start, a pass was open at the kill, readings scored and committed after it)
    violations = []
    with service.admin_conn() as watch:
        committed = 0
        for i in range(KILLS):
            worker = start_process(service, "worker")
            launched = time.monotonic()
            if i % 2:  # let a pass commit first, so the next start has saved state to resume from
                wait_for(lambda: sum(s[0] for s in states(watch, killed_tenant.id).values()) > committed,
                         timeout=30, every=0.02)
            wait_for(lambda: in_transaction(watch, longer_than_ms=50), timeout=30, every=0.01)
            time.sleep(rng.uniform(0.0, 0.15))
            mid_batch = in_transaction(watch)
            stop_process(worker, signal.SIGKILL)
            # The server ends the dead worker's sessions (rolling back what they held) once it notices.
            wait_for(lambda: not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                               "'beidou-worker' AND datname = current_database()").fetchone()[0],
                     timeout=30, every=0.02)
            after = states(watch, killed_tenant.id)
            violations += [(p, s) for p, s in after.items() if s[0] != s[1]]
            committed = sum(s[0] for s in after.values())
            kills.append((time.monotonic() - launched, mid_batch, committed))
        worker = start_process(service, "worker")  # left alone to finish
        try:
            wait_for(lambda: sorted(s[0] for s in states(watch, killed_tenant.id).values()) == [len(items)] * KILLED,
                     timeout=90, every=0.2)
            wait_for(lambda: watch.execute("SELECT count(*) FROM anomaly_events WHERE tenant_id = %s AND "
                                           "handled_at IS NULL", (killed_tenant.id,)).fetchone()[0] == 0, timeout=30)
        finally:
            stop_process(worker)
        killed_run = time.monotonic() - started - loaded

        load(reference_tenant, "reference", items)
        reference_started = time.monotonic()
        worker = start_process(service, "worker")
        try:
            wait_for(lambda: states(watch, reference_tenant.id).get("reference", (0,))[0] == len(items),
                     timeout=90, every=0.2)
            wait_for(lambda: watch.execute("SELECT count(*) FROM anomaly_events WHERE tenant_id = %s AND "
                                           "handled_at IS NULL", (reference_tenant.id,)).fetchone()[0] == 0,
                     timeout=30)
        finally:
            stop_process(worker)
        reference_run = time.monotonic() - reference_started
        expected = outcome(watch, reference_tenant.id, "reference")
        results = {p: outcome(watch, killed_tenant.id, p) for p in people}
        final = states(watch, killed_tenant.id)

    events = len(expected["events"])
    section = figures.section("worker_sigkill")
    section.add("people killed mid-run / days of history / readings each (one detection pass reads 50 000)",
                f"{KILLED} / {DAYS} / {len(items)}")
    section.add("SIGKILLs", len(kills))
    section.add("of which mid-pass (a transaction of the worker open at the kill)", sum(k[1] for k in kills))
    section.add("seconds after worker start of each kill",
                ", ".join(f"{k[0]:.1f}" for k in kills))
    section.add(f"readings scored and committed after each kill (of {KILLED * len(items)})",
                ", ".join(str(k[2]) for k in kills))
    section.add("detector states where readings_seen ≠ readings up to the cursor (forgotten or counted twice), "
                "checked after every kill", len(violations))
    section.add("readings_seen at the end, per person", sorted(s[0] for s in final.values()))
    section.add("anomaly events per person (uninterrupted reference)",
                f"{[len(r['events']) for r in results.values()]} ({events})")
    section.add("alerts per person (uninterrupted reference)",
                f"{[len(r['alerts']) for r in results.values()]} ({len(expected['alerts'])})")
    section.add("events or alerts differing from the reference", sum(r != expected for r in results.values()))
    section.add("events linked to more than one alert / never handled",
                f"{sum(e[7] > 1 for r in results.values() for e in r['events'])} / "
                f"{sum(not e[6] for r in results.values() for e in r['events'])}")
    section.add("time: interrupted run (after loading) / uninterrupted reference, s", f"{killed_run:.1f} / {reference_run:.1f}")

    assert violations == []
    assert sum(k[1] for k in kills) >= KILLS - 1, kills
    assert all(s == (len(items), len(items)) for s in final.values()), final
    assert [e for e in expected["events"] if e[2] == "alert"], "the reference run finds the fever-like rise"
    assert expected["alerts"], "and opens an alert for it"
    assert all(e[6] and e[7] == 1 for e in expected["events"]), expected["events"]
    for person, result in results.items():
        assert result == expected, person
