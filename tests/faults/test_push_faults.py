"""Pushes under faults: the sender killed mid-send, and FCM answering errors and timeouts for a while.

Every due notification ends ``sent``; a message may reach FCM twice (at least once), but always under the same
collapse key, so the phone shows it once; retries wait at least what FCM's Retry-After asked.
"""
from __future__ import annotations

import collections
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from alerts.push.emulator import FcmEmulator
from tests.support import start_process, stop_process, wait_for

PUSH_TIMEOUT_S = 0.5
LEASE_S = 4
APP_VISIBLE = ("delivered", "timeout")  # "timeout": FCM accepted it after the client had given up


@pytest.fixture(scope="module")
def fcm():
    with FcmEmulator(hold_seconds=2) as emulator:
        yield emulator


def worker_env(fcm) -> dict:
    return {"BEIDOU_FCM_ENDPOINT": fcm.url, "BEIDOU_FCM_PROJECT_ID": "beidou-faults",
            "BEIDOU_PUSH_TIMEOUT_S": str(PUSH_TIMEOUT_S), "BEIDOU_PUSH_BACKOFF_BASE_S": "0.2",
            "BEIDOU_PUSH_LEASE_S": str(LEASE_S), "BEIDOU_PUSH_MAX_ATTEMPTS": "6"}


def open_alerts(tenant, devices: list[str]) -> list[str]:
    """One person per device token, each with outreach consent, no quiet hours and an open alert; returns the
    alert ids (the worker must be running: it opens the alerts)."""
    agent = tenant.client(tenant.staff_token("agent-1"))
    assert agent.get("/v1/care/alerts").status_code == 200
    start = datetime.now(timezone.utc) - timedelta(days=1)
    with tenant.service.admin_conn() as conn:
        for device in devices:
            person = tenant.client(tenant.person_token(f"person-{device}"))
            assert person.put("/v1/me/consents/heart_rate").status_code == 200
            assert person.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "2026-11"}).status_code == 200
            assert person.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
            assert person.post("/v1/me/devices", json={"token": device, "platform": "android"}).status_code == 201
            person_id = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                                     (tenant.id, f"person-{device}")).fetchone()[0]
            conn.execute(
                """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                               value, baseline, reason)
                   VALUES (%s, %s, 'health', 'overnight_rhr', 'heart_rate', 'alert', %s, %s, 74, 65,
                           'overnight resting HR 74 bpm vs your 28-day baseline 65 (+9), 2 nights running')""",
                (tenant.id, person_id, start, start + timedelta(hours=6)))
        conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(tenant.id),))
    alerts = wait_for(lambda: (lambda a: a if len(a) == len(devices) else None)(
        agent.get("/v1/care/alerts", params={"limit": 200}).json()["alerts"]), timeout=30)
    return [a["id"] for a in alerts]


def reach_out(tenant, alert_ids: list[str]) -> None:
    agent = tenant.client(tenant.staff_token("agent-1"))
    for alert_id in alert_ids:
        assert agent.post(f"/v1/care/alerts/{alert_id}/reach-out").status_code == 200


def notifications(tenant) -> list[tuple]:
    with tenant.service.admin_conn() as conn:
        return conn.execute("SELECT id::text, status, attempts, status_detail FROM notifications WHERE tenant_id = %s",
                            (tenant.id,)).fetchall()


def all_sent(tenant, timeout: float, since: float) -> tuple[list[tuple], float]:
    """The tenant's notifications, once every one of them is ``sent``, and the seconds from ``since`` (a
    ``time.monotonic()``) until then."""
    final = wait_for(lambda: (lambda ns: ns if all(n[1] == "sent" for n in ns) else None)(notifications(tenant)),
                     timeout=timeout, every=0.2)
    return final, time.monotonic() - since


def fcm_received(fcm, devices: list[str]) -> tuple[dict[str, list[dict]], dict]:
    """What FCM received for these devices, per notification (the opaque message id in ``data``), and how the
    phone saw it: collapse keys per notification and copies that reached it."""
    received: dict[str, list[dict]] = collections.defaultdict(list)
    for device in devices:
        for record in fcm.messages(device):
            received[record["message"]["data"]["message_id"]].append(record)
    keys = {m: {r["message"]["android"]["collapse_key"] for r in records} for m, records in received.items()}
    visible = {m: sum(r["outcome"] in APP_VISIBLE for r in records) for m, records in received.items()}
    return received, {"keys": keys, "visible": visible,
                      "more_than_one_key": sum(len(k) != 1 for k in keys.values()),
                      "reached_twice": sum(v > 1 for v in visible.values()),
                      "never_reached": sum(v == 0 for v in visible.values())}


def test_a_sender_killed_mid_send_sends_every_due_push_and_the_phone_shows_each_once(fault_service, fcm, figures):
    tenant = fault_service.new_tenant()
    devices = [f"kill-{i:02d}" for i in range(12)]
    for i, device in enumerate(devices):  # the first sends hang: the client gives up, FCM delivers anyway
        fcm.set_behaviour(device, "timeout", times=2 if i < len(devices) // 2 else 1, hold_seconds=2)
    env = worker_env(fcm)
    worker = start_process(fault_service, "worker", **env)
    kills = []
    try:
        alert_ids = open_alerts(tenant, devices)
        reach_out(tenant, alert_ids)
        for _ in range(2):
            before = sum(len(fcm.messages(d)) for d in devices)
            wait_for(lambda: sum(len(fcm.messages(d)) for d in devices) >= before + 2, timeout=30, every=0.02)
            time.sleep(0.15)  # the last of them is in flight: its answer is being held
            now = datetime.now(timezone.utc)
            held = sum(1 for d in devices for r in fcm.messages(d) if r["outcome"] == "timeout"
                       and now - datetime.fromisoformat(r["received_at"]) < timedelta(seconds=PUSH_TIMEOUT_S))
            claimed = sum(n[1] == "sending" for n in notifications(tenant))
            stop_process(worker, signal.SIGKILL)
            kills.append((held, claimed))
            worker = start_process(fault_service, "worker", **env)
        final, settled = all_sent(tenant, timeout=60, since=time.monotonic())
    finally:
        stop_process(worker)
    received, figures_ = fcm_received(fcm, devices)
    section = figures.section("sender_sigkill")
    section.add("notifications due (one per person, one device each)", len(final))
    section.add("worker SIGKILLs while sends were in flight", len(kills))
    section.add("at each kill: sends in flight (held by FCM) / notifications claimed (`sending`)",
                ", ".join(f"{h} / {c}" for h, c in kills))
    section.add("claim lease (BEIDOU_PUSH_LEASE_S) / push timeout, s", f"{LEASE_S} / {PUSH_TIMEOUT_S}")
    section.add("last restart → every notification `sent`, s", settled)
    section.add("notifications `sent` at the end", sum(n[1] == "sent" for n in final))
    section.add("attempts per notification (attempts: count)",
                dict(collections.Counter(n[2] for n in final)))
    section.add("sends FCM received in all", sum(len(r) for r in received.values()))
    section.add("copies that reached the phone per notification (copies: notifications), all under one collapse "
                "key: the phone shows one", dict(collections.Counter(figures_["visible"].values())))
    section.add("notifications sent under more than one collapse key", figures_["more_than_one_key"])
    section.add("notifications that never reached the phone", figures_["never_reached"])

    assert all(n[1] == "sent" for n in final) and len(final) == len(devices), final
    assert any(h for h, _ in kills), f"a send was in flight at a kill: {kills}"
    assert figures_["more_than_one_key"] == 0 and figures_["never_reached"] == 0, figures_
    assert {next(iter(k)) for k in figures_["keys"].values()} == {f"alert-{a}" for a in alert_ids}


SCRIPT = [  # (behaviour, failed sends, Retry-After) — each on several tokens
    ("unavailable", 2, 1),
    ("internal", 2, None),
    ("quota_exceeded", 1, 2),
    ("timeout", 1, None),
    ("success", 0, None),
]


def test_fcm_errors_and_timeouts_for_a_while_lose_nothing_and_honour_retry_after(fault_service, fcm, figures):
    tenant = fault_service.new_tenant()
    plan = {}
    for behaviour, times, retry_after in SCRIPT:
        for i in range(3 if behaviour != "success" else 2):
            device = f"{behaviour}-{i}"
            plan[device] = (behaviour, times, retry_after)
            if times:
                fcm.set_behaviour(device, behaviour, times=times, retry_after=retry_after, hold_seconds=2)
    devices = list(plan)
    worker = start_process(fault_service, "worker", **worker_env(fcm))
    try:
        alert_ids = open_alerts(tenant, devices)
        started = time.monotonic()
        reach_out(tenant, alert_ids)
        final, elapsed = all_sent(tenant, timeout=90, since=started)
    finally:
        stop_process(worker)
    received, collapse = fcm_received(fcm, devices)
    rows, short_gaps = [], 0
    for behaviour, times, retry_after in SCRIPT:
        tokens = [d for d, p in plan.items() if p[0] == behaviour]
        attempts, gaps = [], []
        for device in tokens:
            stamps = [datetime.fromisoformat(r["received_at"]) for r in fcm.messages(device)]
            attempts.append(len(stamps))
            gaps += [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
            outcomes = [r["outcome"] for r in fcm.messages(device)]
            assert outcomes[-1] == "delivered", (device, outcomes)
            assert len(stamps) == times + 1, (device, outcomes)
        if retry_after:
            short_gaps += sum(g < retry_after for g in gaps)
        rows.append((behaviour, len(tokens), times, retry_after, attempts, gaps))

    section = figures.section("fcm_errors")
    for behaviour, n, times, retry_after, attempts, gaps in rows:
        section.add(f"`{behaviour}` for {times} send(s) on {n} tokens" + (f", Retry-After {retry_after} s" if retry_after
                                                                         else ""),
                    f"sends per notification {sorted(set(attempts))}; gaps between sends "
                    + (f"{min(gaps):.1f}–{max(gaps):.1f} s" if gaps else "—"))
    section.add("notifications `sent` at the end / due", f"{sum(n[1] == 'sent' for n in final)} / {len(final)}")
    section.add("retries sooner than Retry-After", short_gaps)
    section.add("notifications that reached the phone twice (same collapse key: shown once)",
                f"{collapse['reached_twice']} (all of them `timeout`: FCM delivered after the client gave up)")
    section.add("notifications sent under more than one collapse key / never reaching the phone",
                f"{collapse['more_than_one_key']} / {collapse['never_reached']}")
    section.add("reach-out → every notification `sent`, s", elapsed)

    assert all(n[1] == "sent" for n in final) and len(final) == len(devices), final
    assert short_gaps == 0
    assert collapse["more_than_one_key"] == collapse["never_reached"] == 0, collapse
    twice = {m for m, v in collapse["visible"].items() if v > 1}
    assert all(received[m][0]["outcome"] == "timeout" for m in twice), "only a timed-out send reaches a phone twice"
