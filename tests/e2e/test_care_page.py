"""The care page in a real headless Chromium, against the real service, worker and database.

One agent's day in a few seconds: sign in, see the queue, watch a new alert arrive live, open an alert
(chart, evidence, timeline), lose a race for a claim, claim, resolve, switch language, log out, and be
sent back to the login view when the token expires. Then outreach: reach out to a person (refused without
their outreach consent), watch the check-in go out through firebase-admin to the local FCM emulator, and
see the person's "I need help" arrive live.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.auth import issue_token
from tests.e2e.conftest import sign_in
from tests.support import wait_for

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HR_REASON = "overnight resting HR 74 bpm vs your 28-night baseline 63 (+11), 2 nights running"
SPO2_REASON = "SpO2 91 % vs your 28-day baseline 97 (-6), one day so far"
WATCH_REASON = "resting HR from the watch 71 bpm vs your 28-day baseline 62 (+9), one day so far"

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect


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
                 "/care/static/nope.js", "/care/static/partials/head.html", "/care/static/index.html"):
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
    # Feature names, chart labels and bands come from the service's description of the data types.
    expect(hr_item.locator(".q-feature")).to_have_text("Overnight resting heart rate")
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
    expect(page.locator("#chart-legend .lg-band")).to_contain_text("3 bpm")
    expect(page.locator("#chart-title")).to_contain_text("heart rate")
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
    expect(page.locator("#queue")).to_contain_text("血氧饱和度")  # the SpO2 alert's feature, in Chinese
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
    sign_in(page, short)
    expect(page.locator("#work-view")).to_be_visible()
    # No click needed: the live feed is closed at expiry (4401 token_expired) and the page signs out at once.
    expect(page.locator("#login-view")).to_be_visible(timeout=10_000)
    expect(page.locator("#login-message")).to_have_attribute("data-kind", "expired")
    expect(page.locator("#login-message")).to_contain_text("expired")
    assert page.evaluate("sessionStorage.getItem('beidou.care.token')") is None

    assert page.evaluate("window.notReloaded") is True
    # No script errors and no Content-Security-Policy refusals (the 401 of the expired token is expected).
    assert [p for p in page.problems if "Failed to load resource" not in p] == []


def test_an_agent_reaches_out_and_the_person_asks_for_help(service, worker, fcm, page, artifacts):
    tenant = service.new_tenant()
    member = Member(tenant, person="wang")
    member.stream_heart_rate()
    app = member.app
    # Outreach about heart rate only (not SpO2), no quiet hours for now, and a phone that takes pushes.
    assert app.put("/v1/me/consents/heart_rate/outreach", json={"notice_version": "test"}).status_code == 200
    assert app.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"}).status_code == 200
    phone = f"e2e-phone-{tenant.id}"
    assert app.post("/v1/me/devices", json={"token": phone, "platform": "android"}).status_code == 201
    member.anomaly("overnight_rhr", "heart_rate", HR_REASON, 74, 63)
    member.anomaly("device_rhr", "heart_rate", WATCH_REASON, 71, 62)
    member.anomaly("spo2", "spo2", SPO2_REASON, 91, 97)

    page.goto(service.base_url + "/care")
    sign_in(page, tenant.staff_token("nurse-1"))
    hr_item = page.locator("#queue .queue-item", has_text=HR_REASON)
    spo2_item = page.locator("#queue .queue-item", has_text=SPO2_REASON)
    watch_item = page.locator("#queue .queue-item", has_text=WATCH_REASON)
    for item in (hr_item, spo2_item, watch_item):
        expect(item).to_be_visible(timeout=10_000)
    hr_id, spo2_id = hr_item.get_attribute("data-alert-id"), spo2_item.get_attribute("data-alert-id")
    page.evaluate("window.notReloaded = true")
    detail = page.locator("#detail")
    action_error = page.locator("#action-error")
    reach_out = page.locator("#a-reach-out")

    # No outreach consent for SpO2: the service's 409 is shown as it is, with the hint to call instead.
    spo2_item.click()
    expect(detail).to_have_attribute("data-alert-id", spo2_id)
    expect(reach_out).to_have_text("Reach out")
    expect(reach_out).to_be_enabled()
    reach_out.click()
    expect(action_error).to_have_attribute("data-status", "409")
    expect(action_error).to_contain_text("has not agreed to be contacted about this data (no outreach consent)")
    expect(action_error).to_contain_text("Call the member instead")
    expect(page.locator("#no-notifications")).to_be_visible()

    # Heart rate: claim, reach out; the check-in goes out and the row turns "sent" by itself.
    hr_item.click()
    expect(detail).to_have_attribute("data-alert-id", hr_id)
    page.locator("#a-claim").click()
    expect(page.locator("#d-status")).to_have_text("Claimed")
    reach_out.click()
    expect(page.locator("#timeline li[data-action='reach_out']")).to_contain_text("Reached out")
    expect(action_error).to_be_hidden()
    to_person = page.locator("#notifications tbody tr[data-recipient-kind='person']")
    expect(to_person).to_have_count(1)
    expect(to_person).to_have_attribute("data-status", "sent", timeout=10_000)
    expect(to_person).to_contain_text("member wang")
    expect(to_person).to_contain_text("Check-in")
    expect(to_person.locator(".ns-sent")).to_have_text("Sent")
    expect(to_person).to_contain_text("accepted by the push service")
    expect(to_person.locator("td.num")).to_have_text("1")

    # The person's phone got it; they open it and answer "I need help", and the page shows it at once.
    [received] = wait_for(lambda: fcm.messages(phone), timeout=10)
    message_id = received["message"]["data"]["message_id"]
    assert to_person.get_attribute("data-notification-id") == message_id
    shown = app.get(f"/v1/me/messages/{message_id}")
    assert shown.status_code == 200 and shown.json()["status"] == "opened"
    expect(to_person).to_have_attribute("data-status", "opened", timeout=10_000)
    expect(page.locator("#d-chips .urgent-yes")).to_have_count(0)
    answer = app.post(f"/v1/me/messages/{message_id}/reply", json={"answer": "help"})
    assert answer.status_code == 200 and answer.json()["answer"] == "help"
    expect(page.locator("#d-chips .urgent-yes")).to_have_text("Asked for help", timeout=10_000)
    expect(page.locator("#d-urgent")).to_contain_text("The member answered “I need help”")
    expect(page.locator("#d-urgent")).to_contain_text("Call them now")
    expect(page.locator("#timeline li[data-action='person_replied']")).to_contain_text("Answer: “I need help”")
    expect(to_person).to_have_attribute("data-status", "answered")
    expect(to_person.locator(".n-asked")).to_have_text("answer: “I need help”")
    expect(hr_item.locator(".urgent-yes")).to_be_visible()
    expect(hr_item).to_have_class(re.compile(r"\burgent\b"))
    expect(page.locator("#queue .queue-item").first).to_have_attribute("data-alert-id", hr_id)
    # The assigned agent is told at once; nurse-1 has no staff app registered, so that push is a dead letter.
    to_staff = page.locator("#notifications tbody tr[data-recipient-kind='staff']")
    expect(to_staff).to_have_attribute("data-status", "failed", timeout=10_000)
    expect(to_staff).to_contain_text("staff nurse-1")
    expect(to_staff.locator(".n-call-instead")).to_have_text("Push did not reach them — call instead")
    expect(to_staff).to_contain_text("no device registered")
    page.screenshot(path=str(artifacts / "care-page.png"))

    # It is now the person's quiet time (their zone is UTC): a check-in about the watch's resting heart rate
    # (a high alert, not critical) is held until quiet hours end, shown in the agent's own time (Shanghai).
    now = datetime.now(timezone.utc)
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=2)).strftime("%H:%M")}
    assert app.put("/v1/me/quiet-hours", json=quiet).status_code == 200
    until = (now + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    watch_item.click()
    expect(detail).to_have_attribute("data-alert-id", watch_item.get_attribute("data-alert-id"))
    expect(action_error).to_be_hidden()
    reach_out.click()
    held = page.locator("#notifications tbody tr[data-recipient-kind='person']")
    expect(held).to_have_attribute("data-status", "held")
    expect(held.locator(".ns-held")).to_have_text("Held")
    clock = rf"\b{until.strftime('%-I:%M')}\s?{until.strftime('%p')}"  # "1:17 PM" (ICU puts U+202F before PM)
    expect(held.locator(".n-until")).to_contain_text(re.compile(rf"^until .*{clock}"))
    expect(held).to_contain_text("the member's quiet hours")
    expect(page.locator("#timeline li[data-action='reach_out']")).to_contain_text("held until")

    # 中文: the same states in Chinese.
    page.locator("#lang-toggle").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(reach_out).to_have_text("发送关怀问候")
    expect(held.locator(".ns-held")).to_have_text("暂缓")
    expect(held).to_contain_text("成员的免打扰时段")
    hr_item.click()
    expect(detail).to_have_attribute("data-alert-id", hr_id)
    expect(page.locator("#d-chips .urgent-yes")).to_have_text("请求帮助")
    expect(page.locator("#d-urgent")).to_contain_text("我需要帮助")
    expect(page.locator("#timeline li[data-action='person_replied']")).to_contain_text("我需要帮助")
    expect(to_staff.locator(".n-call-instead")).to_have_text("推送未送达——请改为电话联系")
    expect(to_staff).to_contain_text("未注册接收推送的设备")
    # The Chinese screenshot shows the lower half: the timeline and the notifications' delivery states.
    page.locator(".detail-pane").evaluate("pane => { pane.scrollTop = pane.scrollHeight; }")
    page.screenshot(path=str(artifacts / "care-page-zh.png"))
    page.locator("#lang-toggle").click()

    assert page.evaluate("window.notReloaded") is True
    assert [p for p in page.problems if "Failed to load resource" not in p] == []


def test_the_open_alert_hides_its_chart_when_the_person_withdraws_consent(service, worker, page):
    """Consent-aware views: the person withdraws heart-rate monitoring while an agent has the alert open; the
    page re-reads it and shows "consent withdrawn — data hidden" instead of a chart, and no values."""
    tenant = service.new_tenant()
    member = Member(tenant, person="lan")
    member.stream_heart_rate(days=3)
    member.anomaly("overnight_rhr", "heart_rate", HR_REASON, 74, 63)
    page.goto(service.base_url + "/care")
    sign_in(page, tenant.staff_token("nurse-1"))
    item = page.locator("#queue .queue-item", has_text=HR_REASON)
    expect(item).to_be_visible(timeout=15_000)
    item.click()
    expect(page.locator("#chart canvas")).to_be_visible()
    expect(page.locator("#evidence tbody")).to_contain_text("63")

    assert member.app.delete("/v1/me/consents/heart_rate/monitoring").status_code == 200
    hidden = page.locator("#chart-empty")
    expect(hidden).to_be_visible(timeout=15_000)
    expect(hidden).to_contain_text("Consent withdrawn — data hidden")
    expect(hidden).to_have_attribute("data-reason", "consent")
    expect(page.locator("#chart canvas")).to_have_count(0)
    expect(page.locator("#d-chips")).to_contain_text("data hidden")
    expect(page.locator("#evidence tbody tr")).to_have_count(0)
    expect(page.locator("#d-reason")).not_to_contain_text("bpm")
    expect(page.locator("#queue .queue-item", has_text=HR_REASON)).to_have_count(0)
