"""The insurer chooses the detector's operating point; a combined reason reaches the care team as data."""
from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg.types.json import Jsonb

from streaming.detection.operating_points import table
from tests.integration.test_alerts import NOW, Clinic, worker  # noqa: F401  (the worker fixture)
from tests.support import wait_for


@pytest.fixture
def clinic(tenant, worker):  # noqa: F811
    return Clinic(tenant)


def test_staff_see_the_choice_and_what_each_choice_means(clinic):
    answer = clinic.agent.get("/v1/tenant/detection")
    assert answer.status_code == 200
    body = answer.json()
    assert body["operating_point"] == "standard"
    points = {c["name"]: c for c in body["choices"]}
    assert list(points) == ["low", "standard", "high"]
    committed = table()["choices"]
    for name, point in points.items():
        assert point["threshold"] == committed[name]["threshold"]
        assert point["expected_sensitivity"] == committed[name]["expected_sensitivity"]
        assert point["expected_alert_episodes_per_30_days"] == committed[name]["expected_alert_episodes_per_30_days"]
    assert points["standard"]["expected_alert_episodes_per_30_days"] <= 0.5
    assert points["high"]["threshold"] < points["standard"]["threshold"] < points["low"]["threshold"]


def test_only_a_tenant_admin_changes_it_and_only_for_their_insurer(clinic, tenant, service):
    refused = clinic.agent.put("/v1/tenant/detection", json={"operating_point": "high"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert clinic.agent.get("/v1/tenant/detection").json()["operating_point"] == "standard"

    changed = clinic.admin.put("/v1/tenant/detection", json={"operating_point": "low"})
    assert changed.status_code == 200 and changed.json()["operating_point"] == "low"
    assert clinic.agent.get("/v1/tenant/detection").json()["operating_point"] == "low"
    with service.admin_conn() as conn:
        row = conn.execute("SELECT operating_point, updated_by FROM tenant_detection_settings WHERE tenant_id = %s",
                           (tenant.id,)).fetchone()
    assert row == ("low", "admin-1")

    other = service.new_tenant()
    other_admin = other.client(other.staff_token("admin-9", "tenant_admin"))
    assert other_admin.get("/v1/tenant/detection").json()["operating_point"] == "standard"


@pytest.mark.parametrize("body", [{"operating_point": "maximum"}, {"operating_point": None}, {},
                                  {"operating_point": "low", "threshold": 1}, ["low"]])
def test_a_bad_choice_is_refused_and_changes_nothing(clinic, body):
    answer = clinic.admin.put("/v1/tenant/detection", json=body)
    assert answer.status_code == 422
    assert clinic.admin.get("/v1/tenant/detection").json()["operating_point"] == "standard"


def test_policyholders_cannot_read_or_change_it(clinic):
    assert clinic.app.get("/v1/tenant/detection").status_code == 403
    assert clinic.app.put("/v1/tenant/detection", json={"operating_point": "high"}).status_code == 403


def test_a_combined_reason_is_copied_into_the_alert_as_data(clinic):
    details = {"signals": [
        {"signal": "overnight_rhr", "metric": "heart_rate", "value": 64.0, "baseline": 58.0, "change": 6.0,
         "unit": "bpm", "days": 2, "direction": "up"},
        {"signal": "daily_steps", "metric": "steps", "value": 3000.0, "baseline": 10000.0, "change": -7000.0,
         "unit": "steps", "days": 2, "direction": "down"}], "score": 5.0, "threshold": 3.75}
    start = NOW - timedelta(days=1)
    with clinic.service.admin_conn() as conn:
        conn.execute(
            """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                           value, baseline, reason, reason_code, details)
               VALUES (%s, %s, 'health', 'combined', 'heart_rate', 'alert', %s, %s, 64, 58, %s,
                       'combined_evidence', %s)""",
            (clinic.tenant.id, clinic.person_id(), start, start + timedelta(hours=7),
             "several changes together: overnight resting HR +6 bpm for 2 nights (64 vs your usual 58), "
             "70% fewer steps (2 days)", Jsonb(details)))
        conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(clinic.tenant.id),))
    alert = clinic.wait_alert(lambda a: a["feature"] == "combined")
    assert alert["severity"] == "high"
    assert alert["reason_code"] == "combined_evidence"
    assert alert["details"] == details
    assert alert["summary"].startswith("several changes together")
    detail = wait_for(lambda: clinic.agent.get(f"/v1/care/alerts/{alert['id']}").json(), timeout=5)
    assert detail["details"]["signals"][1]["signal"] == "daily_steps"


async def test_the_worker_scores_each_tenant_at_its_own_operating_point(clinic, service):
    from app.core.db import Database
    from app.worker import Worker
    from streaming.detection.operating_points import threshold_for

    other = service.new_tenant()
    assert clinic.admin.put("/v1/tenant/detection", json={"operating_point": "high"}).status_code == 200
    db = Database(service.db.app_url)
    await db.open(wait=True)
    try:
        worker = Worker(db, service.db.admin_url)
        mine = await worker._detection_for(clinic.tenant.id)
        theirs = await worker._detection_for(other.id)
    finally:
        await db.close()
    assert mine.detector_config.fusion_threshold == threshold_for("high")
    assert theirs.detector_config.fusion_threshold == threshold_for("standard")
    # Everything else about the detector is the same for both.
    assert mine.detector_config.fusion == theirs.detector_config.fusion
