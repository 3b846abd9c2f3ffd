"""The care page in a real headless Chromium, against the real service, worker and database.

One agent's day in a few seconds: sign in, see the queue, watch a new alert arrive live, open an alert
(chart, evidence, timeline), lose a race for a claim, claim, resolve, switch language, log out, and be
sent back to the login view when the token expires.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from app.auth import issue_token
from tests.support import start_process, stop_process

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HR_REASON = "overnight resting HR 74 bpm vs your 28-night baseline 63 (+11), 2 nights running"
SPO2_REASON = "SpO2 91 % vs your 28-day baseline 97 (-6), one day so far"

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


@pytest.fixture(scope="module")
def worker(service):
    process = start_process(service, "worker")
    yield process
    stop_process(process)


class Member:
    """A policyholder who streams heart rate and SpO2, at an insurer of their own."""

    def __init__(self, tenant, person: str = "mei"):
        self.tenant = tenant
        self.person = person
        self.app = tenant.client(tenant.person_token(person))
        for data_type in ("heart_rate", "spo2"):
            assert self.app.put(f"/v1/me/consents/{data_type}").status_code == 200

    def stream_heart_rate(self, days: int = 15) -> None:
        """Two readings an hour; about +11 bpm in the night the detector flagged. Two readings an hour is
        too sparse for the detector's own overnight windows, so only the events inserted below open alerts."""
        episode = (NOW - timedelta(days=1), NOW - timedelta(days=1, hours=-6))
        readings = []
        for half_hours in range(days * 48):
            at = NOW - timedelta(minutes=30 * half_hours + 7)
            value = 62 + (half_hours * 7) % 5 + (8 if (at.hour + 8) % 24 in range(9, 20) else 0)
            if episode[0] <= at <= episode[1]:
                value += 11
            readings.append({"metric": "heart_rate", "time": at.isoformat(), "value": value, "unit": "bpm"})
        answer = self.app.post("/v1/readings", json={"readings": readings})
        assert answer.status_code == 200, answer.text

    def person_id(self):
        with self.tenant.service.admin_conn() as conn:
            return conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                                (self.tenant.id, self.person)).fetchone()[0]

    def anomaly(self, feature: str, metric: str, reason: str, value: float, baseline: float) -> int:
        """What the detector stores; NOTIFY wakes the worker as the detector does."""
        start = NOW - timedelta(days=1)
        with self.tenant.service.admin_conn() as conn:
            event_id = conn.execute(
                """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                               value, baseline, reason)
                   VALUES (%s, %s, 'health', %s, %s, 'alert', %s, %s, %s, %s, %s) RETURNING id""",
                (self.tenant.id, self.person_id(), feature, metric, start, start + timedelta(hours=6), value,
                 baseline, reason)).fetchone()[0]
            conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(self.tenant.id),))
        return event_id


def sign_in(page, token: str) -> None:
    page.locator("#token-input").fill(token)
    page.locator("#login-button").click()


def test_the_page_is_served_with_strict_headers_and_only_its_own_files(service):
    page = httpx.get(service.base_url + "/care")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' ws: wss:" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    script = httpx.get(service.base_url + "/care/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(service.base_url + "/care/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    for path in ("/care/static/vendor/uplot/LICENSE", "/care/static/../api/web.py", "/care/static/%2e%2e/api/web.py",
                 "/care/static/nope.js"):
        assert httpx.get(service.base_url + path).status_code == 404, path


def test_an_agent_works_an_alert_from_the_live_queue(service, worker, page, artifacts):
    tenant = service.new_tenant()
    member = Member(tenant)
    member.stream_heart_rate()
    agent_token = tenant.staff_token("nurse-1")
    other = tenant.client(tenant.staff_token("nurse-2"))
    member.anomaly("overnight_rhr", "heart_rate", HR_REASON, 74, 63)

    # The live feed passes through a relay that the race below can hold back for a moment.
    hold = {"on": False}
    sockets = []

    def relay(ws):
        sockets.append(ws)
        server = ws.connect_to_server()
        server.on_message(lambda message: None if hold["on"] else ws.send(message))
        ws.on_message(lambda message: server.send(message))

    page.route_web_socket(re.compile(r".*/v1/care/live.*"), relay)

    # Signing in shows the queue with the detector's reason.
    page.goto(service.base_url + "/care")
    expect(page.locator("#login-view")).to_be_visible()
    sign_in(page, agent_token)
    hr_item = page.locator("#queue .queue-item", has_text=HR_REASON)
    expect(hr_item).to_be_visible()
    expect(hr_item.locator(".q-age")).to_have_text(re.compile(r"(min ago|just now)"))
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    assert page.evaluate("sessionStorage.getItem('beidou.care.token')") == agent_token

    # A new alert appears without reloading (the live feed; polling would take 30 s).
    page.evaluate("window.notReloaded = true")
    member.anomaly("spo2", "spo2", SPO2_REASON, 91, 97)
    spo2_item = page.locator("#queue .queue-item", has_text=SPO2_REASON)
    expect(spo2_item).to_be_visible(timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#queue .queue-item").first).to_have_attribute("data-alert-id",
                                                                        spo2_item.get_attribute("data-alert-id"))

    # Losing a race: the page still shows the SpO2 alert open when a colleague claims it (its live
    # messages held back for the moment); the 409 is shown plainly and the page catches up.
    spo2_item.click()
    expect(page.locator("#d-status")).to_have_text("Open")
    hold["on"] = True
    spo2_id = spo2_item.get_attribute("data-alert-id")
    assert other.post(f"/v1/care/alerts/{spo2_id}/claim").status_code == 200
    page.locator("#a-claim").click()
    expect(page.locator("#action-error")).to_have_attribute("data-status", "409")
    expect(page.locator("#action-error")).to_contain_text("already claimed by someone else")
    expect(page.locator("#d-assignee")).to_have_text("nurse-2")
    expect(page.locator("#a-claim")).to_be_disabled()
    hold["on"] = False

    # The heart-rate alert: chart, evidence, timeline.
    hr_item.click()
    detail = page.locator("#detail")
    expect(detail).to_have_attribute("data-alert-id", hr_item.get_attribute("data-alert-id"))
    expect(page.locator("#d-reason")).to_have_text(HR_REASON)
    expect(page.locator("#d-chips")).to_have_text(re.compile(r"^\s*Open\s*High\s*Alert\s*$"))
    expect(page.locator("#chart canvas")).to_be_visible()
    canvas = page.locator("#chart canvas")
    assert canvas.evaluate("c => c.width") > 300
    assert canvas.evaluate("c => c.toDataURL().length") > 5000  # something was drawn
    expect(page.locator("#chart-legend .lg-baseline")).to_be_visible()
    expect(page.locator("#evidence tbody tr")).to_have_count(1)
    expect(page.locator("#evidence tbody")).to_contain_text("63")
    expect(page.locator("#timeline li[data-action='opened']")).to_be_visible()
    expect(page.locator("#a-contact")).to_be_disabled()
    expect(page.locator("#a-reopen")).to_be_disabled()

    # Claim: the status changes and the timeline gains "claim".
    page.locator("#a-claim").click()
    expect(page.locator("#d-status")).to_have_text("Claimed")
    expect(page.locator("#timeline li[data-action='claim']")).to_contain_text("nurse-1")
    expect(page.locator("#d-assignee")).to_have_text("nurse-1")
    expect(page.locator("#a-contact")).to_be_enabled()
    expect(page.locator("#action-error")).to_be_hidden()
    page.screenshot(path=str(artifacts / "care-page.png"))

    # Resolve needs a reason; member_fine with a note takes it out of the open queue.
    page.locator("#a-resolve").click()
    page.locator("#resolve-form button[type=submit]").click()
    expect(page.locator("#action-error")).to_contain_text("Choose a reason")
    page.locator("#resolve-reason").select_option("member_fine")
    page.locator("#resolve-note").fill("feels well, had a late workout")
    page.locator("#resolve-form button[type=submit]").click()
    expect(page.locator("#d-status")).to_have_text("Resolved")
    expect(page.locator("#timeline li[data-action='resolve']")).to_contain_text("feels well, had a late workout")
    expect(hr_item).to_have_count(0)
    expect(page.locator("#a-reopen")).to_be_enabled()
    expect(page.locator("#a-claim")).to_be_disabled()
    assert other.get("/v1/care/alerts", params={"status": "resolved"}).json()["alerts"][0]["resolution"] == "member_fine"

    # 中文.
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#a-reopen")).to_have_text("重新打开")
    expect(page.locator("#d-status")).to_have_text("已解决")
    expect(page.locator("#logout")).to_have_text("退出登录")
    page.locator("#lang-toggle").click()
    expect(page.locator("#a-reopen")).to_have_text("Reopen")

    # The live feed drops: the page says so, reconnects by itself and says so again.
    sockets[-1].close(code=1011, reason="gone")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "offline")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=10_000)
    assert len(sockets) >= 2

    # Log out forgets the token.
    page.locator("#logout").click()
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('beidou.care.token')") is None

    # A token that expires while the page is open sends the agent back to the login view.
    leeway = service.settings.jwt_leeway_s
    short = issue_token(service.settings, tenant_id=tenant.id, subject="nurse-1", role="care_agent",
                        ttl_s=-(leeway - 4))  # still accepted for about four seconds
    expires_at = time.time() + 4
    sign_in(page, short)
    expect(page.locator("#work-view")).to_be_visible()
    time.sleep(max(0.0, expires_at - time.time()) + 1.2)
    page.locator("#refresh").click()
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-message")).to_have_attribute("data-kind", "expired")
    expect(page.locator("#login-message")).to_contain_text("expired")
    assert page.evaluate("sessionStorage.getItem('beidou.care.token')") is None

    assert page.evaluate("window.notReloaded") is True
    # No script errors and no Content-Security-Policy refusals (the 401 of the expired token is expected).
    assert [p for p in page.problems if "Failed to load resource" not in p] == []
