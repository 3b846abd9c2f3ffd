"""The outcomes report from a known history: every figure checked against what happened, in the insurer's
time zone; JSON and CSV; who may read it; bad ranges are a 4xx."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

UTC = timezone.utc
POLICY = json.dumps({"steps": []})


@pytest.fixture
def history(tenant):
    return seed_history(tenant)


def seed_history(tenant):
    """One insurer in Asia/Shanghai (UTC+8) with three alerts, two people's consent history and a check-in."""
    svc = tenant.service
    with svc.admin_conn() as conn:
        conn.execute("UPDATE tenants SET time_zone = 'Asia/Shanghai' WHERE id = %s", (tenant.id,))
        people = {}
        for name in ("li", "wang"):
            people[name] = conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, %s) RETURNING id",
                                        (tenant.id, name)).fetchone()[0]
        agent = conn.execute("INSERT INTO staff (tenant_id, external_id, role) VALUES (%s, 'agent-1', 'care_agent') "
                             "RETURNING id", (tenant.id,)).fetchone()[0]

        def consent(person, data_type, action, at):
            conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action, created_at)
                            VALUES (%s, %s, %s, 'monitoring', %s, %s)""", (tenant.id, people[person], data_type,
                                                                           action, at))

        consent("li", "heart_rate", "grant", datetime(2026, 10, 1, tzinfo=UTC))
        consent("li", "spo2", "grant", datetime(2026, 10, 1, tzinfo=UTC))
        consent("li", "heart_rate", "withdraw", datetime(2026, 11, 5, 4, tzinfo=UTC))   # still monitored (spo2)
        consent("wang", "heart_rate", "grant", datetime(2026, 11, 4, 4, tzinfo=UTC))
        consent("wang", "heart_rate", "withdraw", datetime(2026, 11, 6, 4, tzinfo=UTC))

        def alert(feature, severity, opened, status, claimed=None, resolved=None, resolution=None):
            return conn.execute(
                """INSERT INTO alerts (tenant_id, person_id, kind, feature, metric, tier, severity, severity_rank, status,
                                       summary, episode_start, episode_end, opened_at, assignee_id, claimed_at,
                                       resolved_at, resolution, policy)
                   VALUES (%s, %s, 'health', %s, 'heart_rate', 'alert', %s, 2, %s, 'resting HR 74 vs 63', %s, %s, %s,
                           %s, %s, %s, %s, %s) RETURNING id""",
                (tenant.id, people["li"], feature, severity, status, opened, opened, opened,
                 agent if claimed else None, claimed, resolved, resolution, POLICY)).fetchone()[0]

        def step(alert_id, at, action, actor_kind="staff", actor="agent-1", detail=None):
            conn.execute("""INSERT INTO alert_timeline (alert_id, tenant_id, person_id, at, actor_kind, actor_id, action,
                                                        detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                         (alert_id, tenant.id, people["li"], at, actor_kind, actor, action, json.dumps(detail or {})))

        # A: opened 17:00 UTC on the 2nd = 01:00 on the 3rd in Shanghai. Claimed, pushed, "help", needed help.
        a0 = datetime(2026, 11, 2, 17, tzinfo=UTC)
        a = alert("overnight_rhr", "high", a0, "resolved", a0 + timedelta(minutes=10), a0 + timedelta(minutes=60),
                  "needed_help")
        step(a, a0, "opened", "system", "detector")
        step(a, a0 + timedelta(minutes=10), "claim")
        step(a, a0 + timedelta(minutes=20), "reach_out")
        step(a, a0 + timedelta(minutes=40), "person_replied", "person", "li", {"answer": "help"})
        step(a, a0 + timedelta(minutes=60), "resolve")
        # B: the 3rd, 10:00 Shanghai. Claimed after 30 min (one escalation fired first), a false alarm.
        b0 = datetime(2026, 11, 3, 2, tzinfo=UTC)
        b = alert("overnight_rhr", "high", b0, "resolved", b0 + timedelta(minutes=30), b0 + timedelta(hours=2),
                  "false_alarm")
        step(b, b0 + timedelta(minutes=30), "escalated", "system", "escalation")
        step(b, b0 + timedelta(minutes=30), "claim")
        step(b, b0 + timedelta(hours=2), "resolve")
        # C: the 4th, a critical one nobody claimed; two escalations.
        c0 = datetime(2026, 11, 4, 3, tzinfo=UTC)
        c = alert("spo2_low", "critical", c0, "open")
        step(c, c0 + timedelta(minutes=10), "escalated", "system", "escalation")
        step(c, c0 + timedelta(minutes=30), "escalated", "system", "escalation")
        # The check-in of A went out through the gateway, was opened and answered.
        device = conn.execute("""INSERT INTO devices (tenant_id, person_id, provider, token, platform)
                                 VALUES (%s, %s, 'gateway', 'hw-1', 'android') RETURNING id""",
                              (tenant.id, people["li"])).fetchone()[0]
        n = conn.execute(
            """INSERT INTO notifications (tenant_id, recipient_kind, person_id, alert_id, purpose, status, created_at,
                                          opened_at, answered_at, answer, attempts)
               VALUES (%s, 'person', %s, %s, 'check_in', 'answered', %s, %s, %s, 'help', 1) RETURNING id""",
            (tenant.id, people["li"], a, a0 + timedelta(minutes=20), a0 + timedelta(minutes=30),
             a0 + timedelta(minutes=40))).fetchone()[0]
        conn.execute("""INSERT INTO notification_deliveries (notification_id, device_id, tenant_id, person_id, attempt,
                                                             ok, at, provider)
                        VALUES (%s, %s, %s, %s, 1, true, %s, 'gateway')""",
                     (n, device, tenant.id, people["li"], a0 + timedelta(minutes=21)))
    return tenant


def supervisor(tenant):
    return tenant.client(tenant.staff_token("sup-1", "care_supervisor"))


def test_the_report_tells_what_happened_in_the_insurers_days(history):
    report = supervisor(history).get("/v1/care/outcomes",
                                     params={"from": "2026-11-01", "to": "2026-11-08", "bucket": "day"})
    assert report.status_code == 200, report.text
    r = report.json()
    assert (r["from"], r["to"], r["time_zone"]) == ("2026-11-01", "2026-11-08", "Asia/Shanghai")
    f = r["funnel"]
    assert (f["opened"], f["claimed"], f["contacted"], f["answered"], f["answered_help"], f["resolved"]) == \
        (3, 2, 1, 1, 1, 2)
    assert f["reach_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["shares"]["claimed"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["times"]["claim"] == {"median_s": 1200.0, "p90_s": 1680.0}        # 10 and 30 minutes
    assert r["times"]["first_contact"] == {"median_s": 1200.0, "p90_s": 1200.0}
    assert r["times"]["answer"] == {"median_s": 2400.0, "p90_s": 2400.0}
    assert (r["escalations"], r["deadline_breaches"]) == (3, 2)
    by_feature = {x["feature"]: x for x in r["resolutions"]}
    assert (by_feature["overnight_rhr"]["needed_help"], by_feature["overnight_rhr"]["false_alarm"],
            by_feature["overnight_rhr"]["precision"]) == (1, 1, 0.5)
    assert by_feature["spo2_low"]["precision"] is None
    # Day buckets in Shanghai: A (17:00 UTC on the 2nd) counts on the 3rd, with B.
    series = {s["bucket"]: s for s in r["series"]}
    assert list(series) == [f"2026-11-0{d}" for d in range(1, 8)]
    assert [series[d]["opened"] for d in series] == [0, 0, 2, 1, 0, 0, 0]
    # Monitored: li all along; wang from the 4th (12:00 local) until the 6th.
    assert [series[d]["monitored"] for d in series] == [1, 1, 1, 2, 2, 1, 1]
    assert (r["people"]["monitored"], r["people"]["consent_grants"], r["people"]["consent_withdrawals"]) == (1, 1, 2)
    assert r["pushes"] == [{"provider": "gateway", "recipient": "person", "queued": 1, "sent": 1, "delivered": 1,
                            "opened": 1, "answered": 1, "dead_letters": 0}]
    [agent] = r["agents"]
    assert (agent["agent"], agent["assigned"], agent["contacted"], agent["resolved"], agent["unresolved"]) == \
        ("agent-1", 2, 1, 2, 0)
    # Times per feature and severity: A and B are the overnight_rhr/high ones; C was never claimed.
    by_kind = {(x["feature"], x["severity"]): x for x in r["times_by_feature"]}
    assert (by_kind["overnight_rhr", "high"]["claim_p50_s"], by_kind["overnight_rhr", "high"]["answer_p90_s"]) == \
        (1200.0, 2400.0)
    assert by_kind["spo2_low", "critical"]["claim_p50_s"] is None


def test_week_and_month_buckets_start_on_the_insurers_monday_and_first(history):
    weeks = supervisor(history).get("/v1/care/outcomes", params={"from": "2026-11-01", "to": "2026-11-15",
                                                                 "bucket": "week"}).json()
    assert [(s["bucket"], s["opened"]) for s in weeks["series"]] == [
        ("2026-10-26", 0), ("2026-11-02", 3), ("2026-11-09", 0)]
    months = supervisor(history).get("/v1/care/outcomes", params={"from": "2026-10-01", "to": "2026-12-01",
                                                                  "bucket": "month"}).json()
    assert [(s["bucket"], s["opened"]) for s in months["series"]] == [("2026-10-01", 0), ("2026-11-01", 3)]


def test_csv_has_a_row_per_day_feature_and_severity(history):
    client = supervisor(history)
    params = {"from": "2026-11-01", "to": "2026-11-08", "bucket": "day"}
    by_accept = client.get("/v1/care/outcomes", params=params, headers={"Accept": "text/csv"})
    by_format = client.get("/v1/care/outcomes", params={**params, "format": "csv"})
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_format.text
    rows = list(csv.DictReader(io.StringIO(by_accept.text)))
    assert [(r["bucket"], r["feature"], r["severity"], r["opened"], r["deadline_breaches"]) for r in rows] == [
        ("2026-11-03", "overnight_rhr", "high", "2", "1"), ("2026-11-04", "spo2_low", "critical", "1", "1")]


def test_only_supervisors_and_tenant_admins_see_outcomes_and_only_their_own(history, service):
    agent = history.client(history.staff_token("agent-1"))
    assert agent.get("/v1/care/outcomes").status_code == 403
    admin = history.client(history.staff_token("admin-1", "tenant_admin"))
    assert admin.get("/v1/care/outcomes", params={"from": "2026-11-01", "to": "2026-11-08"}).json()[
        "funnel"]["opened"] == 3
    other = service.new_tenant()
    theirs = other.client(other.staff_token("sup-9", "care_supervisor")).get(
        "/v1/care/outcomes", params={"from": "2026-11-01", "to": "2026-11-08"}).json()
    assert theirs["funnel"]["opened"] == 0 and theirs["agents"] == [] and theirs["pushes"] == []
    person = history.client(history.person_token("li"))
    assert person.get("/v1/care/outcomes").status_code == 403


@pytest.mark.parametrize("params, code", [
    ({"from": "2026-11-08", "to": "2026-11-01"}, "invalid_range"),
    ({"from": "2025-01-01", "to": "2026-11-01"}, "range_too_long"),
    ({"from": "1900-01-01", "to": "1900-02-01"}, "invalid_range"),
])
def test_bad_ranges_are_refused_with_a_reason(history, params, code):
    answer = supervisor(history).get("/v1/care/outcomes", params=params)
    assert answer.status_code == 422 and answer.json()["code"] == code


@pytest.mark.parametrize("params", [{"from": "yesterday"}, {"bucket": "year"}, {"to": "2026-13-01"},
                                    {"format": "xml"}])
def test_unreadable_parameters_are_a_422(history, params):
    assert supervisor(history).get("/v1/care/outcomes", params=params).status_code == 422


def test_without_dates_the_last_thirty_days_by_week(history):
    r = supervisor(history).get("/v1/care/outcomes").json()
    assert r["bucket"] == "week"
    assert (datetime.fromisoformat(r["to"]) - datetime.fromisoformat(r["from"])).days == 30


async def test_without_a_spare_connection_the_report_has_the_same_figures(history):
    """With no connection to spare (a pool of one), the report runs its queries one after another on the
    request's own connection; its figures are those the API gives."""
    from datetime import date

    from alerts import outcomes
    from app.core.db import Database

    api = supervisor(history).get("/v1/care/outcomes",
                                  params={"from": "2026-11-01", "to": "2026-11-08", "bucket": "day"}).json()
    db = Database(history.service.db.app_url, min_size=1, max_size=1)
    await db.open(wait=True)
    try:
        async with db.transaction(tenant_id=history.id) as conn:
            report = await outcomes.report(conn, tenant_id=history.id, first_day=date(2026, 11, 1),
                                           end_day=date(2026, 11, 8), bucket="day", db=db)
    finally:
        await db.close()
    assert report["funnel"]["opened"] == 3
    for part in ("people", "funnel", "times", "times_by_feature", "resolutions", "pushes", "agents", "series",
                 "rows"):
        assert report[part] == api[part], part
