"""The detection worker against the real database and service: readings in, anomaly events out."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.support import ROOT

ZONE = ZoneInfo("Asia/Shanghai")


def synthetic_history(days: int, sick_nights: int, *, seed: int = 7, zone: ZoneInfo = ZONE,
                      end: datetime | None = None) -> list[dict]:
    """Heart rate and steps every minute at night (as a watch records a sleeping wearer) and every ten
    minutes by day: calm nights around 58 bpm, active days; the last ``sick_nights`` nights run 14 bpm
    higher (a fever-like change). The history ends at ``end`` (default: 09:00 yesterday, local time)."""
    rng = random.Random(seed)
    if end is None:
        end = datetime.now(zone).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    start = end - timedelta(days=days)
    items = []
    t = start
    while t < end:
        night = t.hour < 7
        sick = (end - t) < timedelta(days=sick_nights, hours=9)
        if night:
            bpm, steps = rng.gauss(58, 2) + (14 if sick else 0), 0
        else:
            steps = rng.choice([0, 0, 20, 60, 120])
            bpm = rng.gauss(72 + steps / 6, 5) + (10 if sick else 0)
        stamp = t.isoformat()
        items.append({"metric": "heart_rate", "time": stamp, "value": round(bpm, 1), "source": "watch"})
        items.append({"metric": "steps", "time": stamp, "value": steps, "source": "watch"})
        t += timedelta(minutes=1 if night else 10)
    return items


def send_all(client, items: list[dict]) -> int:
    accepted = 0
    for i in range(0, len(items), 5000):
        result = client.post("/v1/readings", json={"readings": items[i:i + 5000]}).json()
        accepted += result["accepted"] + result["duplicate"]
    return accepted


def start_worker(service) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=service.env, cwd=ROOT,
                            stdout=service.log_path.open("ab"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    process.send_signal(sig)
    process.wait(15)


def events_for(service, tenant_id, person: str) -> list[tuple]:
    with service.admin_conn() as conn:
        return conn.execute(
            """SELECT e.kind, e.feature, e.tier, e.start_time, e.reason FROM anomaly_events e
                 JOIN people p ON p.id = e.person_id WHERE p.tenant_id = %s AND p.external_id = %s
                ORDER BY e.id""", (tenant_id, person)).fetchall()


def state_for(service, tenant_id, person: str):
    with service.admin_conn() as conn:
        return conn.execute(
            """SELECT s.readings_seen, s.cursor_time, length(s.state) FROM detector_state s
                 JOIN people p ON p.id = s.person_id WHERE p.tenant_id = %s AND p.external_id = %s""",
            (tenant_id, person)).fetchone()


def wait_for(predicate, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


@pytest.fixture
def patient(tenant):
    client = tenant.client(tenant.person_token("wang"))
    for data_type in ("heart_rate", "steps"):
        client.put(f"/v1/me/consents/{data_type}")
    with tenant.service.admin_conn() as conn:
        conn.execute("UPDATE people SET time_zone = 'Asia/Shanghai' WHERE tenant_id = %s", (tenant.id,))
    return client


def test_a_sustained_overnight_rise_becomes_an_alert_event_with_its_reason(service, tenant, patient):
    items = synthetic_history(days=45, sick_nights=4)
    assert send_all(patient, items) == len(items)
    worker = start_worker(service)
    try:
        events = wait_for(lambda: [e for e in events_for(service, tenant.id, "wang") if e[2] == "alert"], timeout=90)
    finally:
        stop(worker)
    kind, feature, tier, start, reason = events[0]
    assert (kind, feature, tier) == ("health", "combined", "alert")
    assert "overnight resting HR +" in reason and "bpm" in reason and "usual" in reason
    with service.admin_conn() as conn:
        code, details = conn.execute(
            "SELECT reason_code, details FROM anomaly_events WHERE tenant_id = %s AND tier = 'alert'",
            (tenant.id,)).fetchone()
    assert code == "combined_evidence"
    night = next(s for s in details["signals"] if s["signal"] == "overnight_rhr")
    assert night["change"] > 3 and night["unit"] == "bpm" and night["direction"] == "up"
    assert start > datetime.now(timezone.utc) - timedelta(days=6)
    seen, cursor, size = state_for(service, tenant.id, "wang")
    assert seen == len(items) and size < 64 * 1024


def test_a_restart_neither_forgets_the_baseline_nor_repeats_events(service, tenant, patient):
    items = synthetic_history(days=45, sick_nights=4, seed=11)
    cut = next(i for i, it in enumerate(items) if it["time"] >= (datetime.fromisoformat(items[-1]["time"])
                                                                   - timedelta(days=4, hours=12)).isoformat())
    healthy, sick = items[:cut], items[cut:]
    send_all(patient, healthy)
    worker = start_worker(service)
    try:
        wait_for(lambda: (state_for(service, tenant.id, "wang") or (0,))[0] == len(healthy), timeout=60)
    finally:
        stop(worker, signal.SIGKILL)
    before = events_for(service, tenant.id, "wang")
    assert [e for e in before if e[2] == "alert"] == []
    send_all(patient, sick)
    worker = start_worker(service)
    try:
        wait_for(lambda: (state_for(service, tenant.id, "wang") or (0,))[0] == len(items), timeout=60)
        after_first = events_for(service, tenant.id, "wang")
    finally:
        stop(worker)
    # The baseline learned before the restart is what flags the new nights.
    assert [e for e in after_first if e[2] == "alert"], after_first
    worker = start_worker(service)  # a third start with nothing new: no event repeats
    try:
        time.sleep(3)
    finally:
        stop(worker)
    assert events_for(service, tenant.id, "wang") == after_first


def test_withdrawing_consent_drops_what_the_detector_learned_from_it(service, tenant, patient):
    items = synthetic_history(days=10, sick_nights=0)
    send_all(patient, items)
    worker = start_worker(service)
    try:
        wait_for(lambda: (state_for(service, tenant.id, "wang") or (0,))[0] == len(items))
        assert "overnight_rhr" in _features(service, tenant.id)
        patient.delete("/v1/me/consents/heart_rate")
        wait_for(lambda: "overnight_rhr" not in _features(service, tenant.id), timeout=5)
        patient.delete("/v1/me/consents/steps")
        # Nothing left to monitor: no model is kept at all.
        wait_for(lambda: state_for(service, tenant.id, "wang") is None, timeout=5)
    finally:
        stop(worker)


def _features(service, tenant_id) -> list[str]:
    from streaming.detection import PersonDetector
    with service.admin_conn() as conn:
        state = conn.execute("""SELECT s.state FROM detector_state s JOIN people p ON p.id = s.person_id
                                WHERE p.tenant_id = %s""", (tenant_id,)).fetchone()[0]
    return PersonDetector.from_bytes(bytes(state)).features


def test_state_from_an_incompatible_detector_version_is_rebuilt_from_stored_history(service, tenant, patient):
    from streaming.detection import STATE_VERSION, PersonDetector
    items = synthetic_history(days=20, sick_nights=0, seed=3)
    send_all(patient, items)
    worker = start_worker(service)
    try:
        wait_for(lambda: (state_for(service, tenant.id, "wang") or (0,))[0] == len(items))
    finally:
        stop(worker)
    with service.admin_conn() as conn:  # as if written by an older detector whose state this one cannot read
        conn.execute("""UPDATE detector_state SET state = %s, state_version = %s, readings_seen = 0
                        WHERE tenant_id = %s""", (b"HBD\x00old", STATE_VERSION - 1, tenant.id))
    # One more day of this person's history arrives (a watch syncing a day it had kept).
    more = [it for it in synthetic_history(days=21, sick_nights=0, seed=3) if it["time"] < items[0]["time"]]
    send_all(patient, more)
    worker = start_worker(service)
    try:
        # A rebuild replays up to 120 days: backfill, in several short passes.
        rebuilt = wait_for(lambda: (s := state_for(service, tenant.id, "wang")) and s[0] >= len(items) + len(more)
                           and s)
    finally:
        stop(worker)
    with service.admin_conn() as conn:
        state = bytes(conn.execute("SELECT state FROM detector_state WHERE tenant_id = %s", (tenant.id,)).fetchone()[0])
    detector = PersonDetector.from_bytes(state)  # readable again, by this version
    # The rebuild replayed the stored history, not just the new day: the baseline is back.
    assert rebuilt[0] == len(items) + len(more)
    assert "overnight_rhr" in detector.features
