"""The policyholder's own page (/me) in a real headless Chromium, against the real service, worker and database,
on phone-sized screens in Chinese and English.

One person's journey: signed in by the app through the URL fragment, they grant consent, see their readings and
personal baseline, withdraw one data type (gone from the care team's view too), answer a check-in "I need help"
(the care page shows it urgent), download their data and erase it. An accessibility scan (axe-core) runs on
the page and on the care page.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from app.auth import issue_token
from consent.catalog import DATA_TYPES, PURPOSES
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import wait_for

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
Axe = pytest.importorskip("axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed").Axe

NOW = datetime.now(timezone.utc).replace(microsecond=0)
HR_REASON = "overnight resting HR 74 bpm vs your 28-night baseline 63 (+11), 2 nights running"
SPO2_REASON = "SpO2 91 % vs your 28-day baseline 97 (-6), one day so far"

# What the page says, per language, where the test reads the words themselves.
_WORDS = {  # key: (Chinese, English)
    "grant_title": ("开启后会发生什么", "What will happen"),
    "withdraw_title": ("关闭后立即停止", "What stops at once"),
    "on": ("已开启", "On"),
    "off": ("未开启", "Off"),
    "why": ("为什么保险公司问候您", "Why your insurer asked how you are"),
    "hr_reason": ("夜间静息心率 +11 bpm，持续 2 晚", "overnight resting HR +11 bpm for 2 nights"),
    "help": ("我需要帮助", "I need help"),
    "next_help": ("关怀团队已收到通知", "The care team has been told"),
    "erased": ("您的数据已删除", "Your data was erased"),
    "kept_audit": ("审计记录", "the audit log"),
    "reopen": ("请从应用中重新打开此页面", "Please reopen this page from the app"),
    "saved": ("已保存。", "Saved."),
    "access_unavailable": ("此服务暂时无法显示查看记录。",
                           "This service cannot show who looked at your data yet."),
    "tab_data": ("我的数据", "My data"),
    "care_no_consent": ("数据已隐藏", "data hidden"),  # on the care page, which follows the browser's language
}
WORDS = {lang: {key: pair[i] for key, pair in _WORDS.items()} for i, lang in enumerate(("zh-CN", "en"))}
PHONES = [pytest.param("zh-CN", {"width": 360, "height": 780}, id="zh-CN-360x780"),
          pytest.param("en", {"width": 414, "height": 896}, id="en-414x896")]


@pytest.fixture(scope="module")
def browser(playwright_driver):
    """One Chromium for the whole module; each test opens its own context (screen size, language)."""
    chromium = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def phone(browser, lang: str, viewport: dict):
    context = browser.new_context(viewport=viewport, locale=lang, timezone_id="Asia/Shanghai", accept_downloads=True,
                                  has_touch=True, is_mobile=True, device_scale_factor=2)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.problems = []
    tab.on("console", lambda msg: tab.problems.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: tab.problems.append(f"uncaught: {exc}"))
    return context, tab


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} px of content in {width[1]} px"


def no_serious_violations(page, what: str) -> None:
    results = Axe().run(page)
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{what}: {bad}"


def open_tab(page, name: str) -> None:
    page.locator(f".tab[data-tab='{name}']").click()
    expect(page.locator(f"#tab-{name}")).to_be_visible()


def decide(page, data_type: str, purpose: str, *, grant: bool, words: dict) -> str:
    """Flip one switch and confirm; returns the receipt id the page shows."""
    row = page.locator(f"#consent-list .consent-card[data-type='{data_type}'] .consent-row[data-purpose='{purpose}']")
    row.locator("input[role=switch]").click()
    confirm = row.locator(".confirm")
    expect(confirm).to_contain_text(words["grant_title"] if grant else words["withdraw_title"])
    expect(row.locator("input[role=switch]")).to_be_checked(checked=not grant)  # nothing changed yet
    confirm.locator("button[data-action]").click()
    expect(page.locator("#receipt")).to_have_attribute("data-action", "grant" if grant else "withdraw")
    row = page.locator(f"#consent-list .consent-card[data-type='{data_type}'] .consent-row[data-purpose='{purpose}']")
    expect(row).to_have_attribute("data-granted", "true" if grant else "false")
    expect(row.locator(".switch-state")).to_have_text(words["on"] if grant else words["off"])
    receipt = page.locator("#receipt").get_attribute("data-receipt-id")
    expect(row.locator(".row-receipt")).to_contain_text(receipt)  # also under the switch just turned
    return receipt


def stream(app: httpx.Client, metric: str, every_h: int, value) -> None:
    readings = [{"metric": metric, "time": (NOW - timedelta(hours=h, minutes=7)).isoformat(), "value": value(h)}
                for h in range(0, 30 * 24, every_h)]
    answer = app.post("/v1/readings", json={"readings": readings})
    assert answer.status_code == 200, answer.text
    assert {r["status"] for r in answer.json()["results"]} == {"accepted"}, answer.text[:300]


def anomaly(tenant, person: str, feature: str, metric: str, reason: str, value: float, baseline: float,
            reason_code: str = "feature_change", details: dict | None = None) -> None:
    """What the detector stores (its English sentence, and the reason as data); NOTIFY wakes the worker as the
    detector does."""
    start = NOW - timedelta(days=1)
    with tenant.service.admin_conn() as conn:
        person_id = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = %s",
                                 (tenant.id, person)).fetchone()[0]
        conn.execute(
            """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                           value, baseline, reason, reason_code, details)
               VALUES (%s, %s, 'health', %s, %s, 'alert', %s, %s, %s, %s, %s, %s, %s)""",
            (tenant.id, person_id, feature, metric, start, start + timedelta(hours=6), value, baseline, reason,
             reason_code, json.dumps(details or {})))
        conn.execute("SELECT pg_notify('beidou_anomaly', %s)", (str(tenant.id),))


def test_the_page_is_served_with_strict_headers(service):
    page = httpx.get(service.base_url + "/me")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline for the policy to allow
    assert httpx.get(service.base_url + "/me/static/me.js").headers["content-type"].startswith("text/javascript")
    for path in ("/me/static/../api/web.py", "/me/static/%2e%2e/api/web.py", "/me/static/vendor/uplot/LICENSE"):
        assert httpx.get(service.base_url + path).status_code == 404, path


@pytest.mark.parametrize(("lang", "viewport"), PHONES)
def test_a_person_decides_sees_answers_downloads_and_erases(service, worker, fcm, browser, artifacts, lang, viewport):
    words = WORDS[lang]
    tenant = service.new_tenant()
    person = f"li-{lang}"
    token = tenant.person_token(person)
    app = tenant.client(token)
    care = tenant.client(tenant.staff_token("nurse-1"))
    shot = f"me-{lang}-{viewport['width']}"
    context, page = phone(browser, lang, viewport)
    try:
        # Signed in by the app through the fragment, which is gone from the address and history at once.
        page.goto(f"{service.base_url}/me#token={token}&lang={lang}")
        expect(page.locator("#app-view")).to_be_visible()
        assert token not in page.url and page.evaluate("location.hash") == ""
        expect(page.locator("html")).to_have_attribute("lang", lang)

        # Grant: each switch says what will happen first, then shows the receipt of the change.
        receipt = decide(page, "heart_rate", "monitoring", grant=True, words=words)
        version = page.locator("#consent-list .consent-card[data-type='heart_rate'] .consent-row[data-purpose="
                               "'monitoring'] .version").inner_text()
        decide(page, "heart_rate", "outreach", grant=True, words=words)
        decide(page, "spo2", "monitoring", grant=True, words=words)
        history = app.get("/v1/me/consents/history").json()["events"]
        assert receipt in [e["receipt_id"] for e in history]
        assert history[0]["notice_version"].startswith("n1-") and history[0]["notice_version"] in version
        expect(page.locator("#history li")).to_have_count(3)
        page.locator("#history-box summary").click()
        no_horizontal_scroll(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(artifacts / f"{shot}-consents.png"))

        # Readings arrive; the detector flags heart rate and SpO2; the chart shows them with the baseline band.
        stream(app, "heart_rate", 1, lambda h: 62 + h % 5 + (11 if 24 <= h < 30 else 0))
        stream(app, "spo2", 2, lambda h: 97 - h % 2)
        anomaly(tenant, person, "overnight_rhr", "heart_rate", HR_REASON, 74, 63, "combined_evidence",
                {"signals": [{"signal": "overnight_rhr", "value": 74, "baseline": 63, "change": 11, "days": 2,
                              "unit": "bpm"}]})
        anomaly(tenant, person, "spo2", "spo2", SPO2_REASON, 91, 97)
        alerts = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(care.get("/v1/care/alerts").json()["alerts"]),
                          timeout=15)
        hr_alert = next(a for a in alerts if a["metric"] == "heart_rate")
        spo2_alert = next(a for a in alerts if a["metric"] == "spo2")
        open_tab(page, "data")
        hr_card = page.locator("#data-list .data-card[data-type='heart_rate']")
        expect(hr_card.locator("canvas").first).to_be_visible()
        assert hr_card.locator("canvas").first.evaluate("c => c.toDataURL().length") > 5000  # something was drawn
        assert int(hr_card.get_attribute("data-points")) >= 700
        expect(hr_card.locator(".lg-band")).to_be_visible()
        why = hr_card.locator(f".why[data-alert-id='{hr_alert['id']}']")
        expect(why).to_contain_text(words["why"])
        # The reason comes as data and is written in the reader's language, numbers included.
        expect(why.locator(".reason")).to_contain_text(words["hr_reason"])
        expect(page.locator("#data-list .data-card[data-type='spo2'] canvas").first).to_be_visible()
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"{shot}-data.png"), full_page=True)
        if lang == "zh-CN":
            no_serious_violations(page, "/me, my data")

        # The care team has the SpO2 alert open, with its chart.
        care_tab = context.new_page()
        care_tab.set_viewport_size({"width": 1366, "height": 768})
        care_tab.goto(service.base_url + "/care")
        care_tab.locator("#token-input").fill(tenant.staff_token("nurse-1"))
        care_tab.locator("#login-button").click()
        care_tab.locator("#queue .queue-item", has_text=SPO2_REASON).click()
        expect(care_tab.locator("#chart canvas").first).to_be_visible()

        # Withdraw SpO2: it leaves the page, and the care team can no longer see its readings either.
        assert care.get(f"/v1/care/people/{person}/readings", params={"metric": "spo2"}).status_code == 200
        open_tab(page, "consents")
        decide(page, "spo2", "monitoring", grant=False, words=words)
        open_tab(page, "data")
        expect(hr_card.locator("canvas").first).to_be_visible()
        expect(page.locator("#data-list .data-card[data-type='spo2']")).to_have_count(0)
        assert app.get("/v1/me/data/spo2").json()["code"] == "no_consent"
        hidden = care.get(f"/v1/care/people/{person}/readings", params={"metric": "spo2"}).json()
        assert hidden["data_hidden"] and hidden["points"] == [] and hidden["consent"] == "withdrawn"
        assert care.get(f"/v1/care/people/{person}/readings", params={"metric": "heart_rate"}).json()["points"]
        every = {"status": ["open", "claimed", "contacted", "resolved"], "kind": ["health", "data_gap"]}
        queue = care.get("/v1/care/alerts", params=every).json()["alerts"]
        assert spo2_alert["id"] not in [a["id"] for a in queue]  # gone from the queue, whatever its status
        wait_for(lambda: care.get(f"/v1/care/alerts/{spo2_alert['id']}").json()["resolution"] == "consent_withdrawn",
                 timeout=10)
        # The open alert's chart is gone from the care page by itself (live), with the reason in words.
        expect(care_tab.locator("#chart-empty")).to_contain_text(words["care_no_consent"], timeout=10_000)
        expect(care_tab.locator("#chart canvas")).to_have_count(0)
        expect(care_tab.locator("#queue .queue-item", has_text=SPO2_REASON)).to_have_count(0)

        # Quiet hours off and the time zone set on the page; then a check-in arrives and they ask for help.
        open_tab(page, "messages")
        expect(page.locator("#messages-none")).to_be_visible()
        page.locator("#quiet-start").fill("00:00")
        page.locator("#quiet-end").fill("00:00")
        page.locator("#time-zone").select_option("Asia/Shanghai")
        page.locator("#quiet-form button[type=submit]").click()
        expect(page.locator("#quiet-status")).to_have_text(words["saved"])
        assert app.get("/v1/me/quiet-hours").json() == {"start": "00:00:00", "end": "00:00:00"}
        assert app.get("/v1/me").json()["time_zone"] == "Asia/Shanghai"
        assert care.post(f"/v1/care/alerts/{hr_alert['id']}/reach-out").status_code == 200
        wait_for(lambda: app.get("/v1/me/messages").json()["messages"], timeout=10)
        open_tab(page, "messages")
        message = page.locator("#message-list .message").first
        expect(message).to_contain_text(words["hr_reason"])  # the reason as data, in the reader's language
        message.locator("button[data-answer='help']").click()
        expect(message.locator(".answer-help")).to_contain_text(words["help"])
        expect(message.locator(".next-text")).to_contain_text(words["next_help"])
        assert care.get(f"/v1/care/alerts/{hr_alert['id']}").json()["urgent"] is True
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"{shot}-messages.png"), full_page=True)
        if lang == "zh-CN":
            no_serious_violations(page, "/me, messages")

        # The care page shows it urgent, live (and passes the same accessibility scan).
        item = care_tab.locator("#queue .queue-item", has_text=HR_REASON)
        expect(item.locator(".urgent-yes")).to_be_visible()
        expect(item).to_have_class(re.compile(r"\burgent\b"))
        if lang == "zh-CN":
            no_serious_violations(care_tab, "/care, queue view")
        care_tab.close()

        # My rights: download (JSON and FHIR), then erase in two steps, with a receipt shown and downloadable.
        open_tab(page, "rights")
        with page.expect_download() as got:
            page.locator("#export-json").click()
        exported = json.loads(open(got.value.path()).read())
        assert exported["counts"]["readings"] >= 1000
        with page.expect_download() as got:
            page.locator("#export-fhir").click()
        assert json.loads(open(got.value.path()).read())["resourceType"] == "Bundle"
        page.locator("#erase-start").click()
        expect(page.locator("#erase-now")).to_be_disabled()
        page.locator("#erase-understand").check()
        page.screenshot(path=str(artifacts / f"{shot}-erase-confirm.png"), full_page=True)
        page.locator("#erase-now").click()
        expect(page.locator("#erase-receipt")).to_contain_text(words["erased"])
        receipt_id = page.locator("#erase-receipt").get_attribute("data-receipt-id")
        with page.expect_download() as got:
            page.locator("#receipt-download").click()
        assert json.loads(open(got.value.path()).read())["receipt_id"] == receipt_id
        expect(page.locator("#erased-banner")).to_be_visible()
        expect(page.locator("#erased-banner")).to_contain_text(words["erased"])
        expect(page.locator("#erase-receipt")).to_contain_text(words["kept_audit"])
        assert app.get("/v1/me").status_code == 410
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"{shot}-erased.png"), full_page=True)
        if lang == "zh-CN":
            no_serious_violations(page, "/me, my rights after erasure")
        assert [p for p in page.problems if "Failed to load resource" not in p] == []
    finally:
        context.close()


def test_signing_in_from_the_app_and_when_it_fails(service, browser, artifacts):
    tenant = service.new_tenant()
    context, page = phone(browser, "zh-CN", {"width": 360, "height": 780})
    try:
        # An expired token: a clear "reopen from the app" view, nothing else.
        leeway = service.settings.jwt_leeway_s
        expired = issue_token(service.settings, tenant_id=tenant.id, subject="zhao", role="policyholder",
                              ttl_s=-(leeway + 60))
        page.goto(f"{service.base_url}/me#token={expired}")
        expect(page.locator("#signed-out")).to_be_visible()
        expect(page.locator("#signed-out")).to_contain_text(WORDS["zh-CN"]["reopen"])
        expect(page.locator("#signed-out")).to_have_attribute("data-reason", "signed_out_expired")
        expect(page.locator("#app-view")).to_be_hidden()
        page.screenshot(path=str(artifacts / "me-reopen-from-app.png"))
        page.locator("#lang-toggle").click()
        expect(page.locator("#signed-out")).to_contain_text(WORDS["en"]["reopen"])
        page.locator("#lang-toggle").click()

        # The host app hands the token over by postMessage instead (no URL at all).
        page.goto(f"{service.base_url}/me")
        expect(page.locator("#boot")).to_be_visible()
        page.evaluate("t => window.postMessage({type: 'beidou:token', token: t, lang: 'en'}, '*')",
                      tenant.person_token("zhao"))
        expect(page.locator("#app-view")).to_be_visible()
        expect(page.locator("#consent-list .consent-card")).to_have_count(len(DATA_TYPES))
        expect(page.locator(".tab[data-tab='data']")).to_have_text(WORDS["en"]["tab_data"])
        no_horizontal_scroll(page)
        # A large system font (here 150 %) scales the page (rem units) and still fits the width.
        size = "t => parseFloat(getComputedStyle(t).fontSize)"
        normal = page.locator(".tab").first.evaluate(size)
        page.evaluate("document.documentElement.style.fontSize = '150%'")
        assert page.locator(".tab").first.evaluate(size) == pytest.approx(normal * 1.5)
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / "me-large-font.png"))
        assert [p for p in page.problems if "Failed to load resource" not in p] == []
    finally:
        context.close()


def test_a_guardian_manages_a_dependants_consents(service, browser):
    tenant = service.new_tenant()
    admin = tenant.client(tenant.staff_token("admin", role="tenant_admin"))
    link = admin.post("/v1/admin/guardianships", json={"guardian": "mother", "minor": "kid",
                                                       "minor_birth_date": str((NOW - timedelta(days=365 * 8)).date())})
    assert link.status_code == 201, link.text
    context, page = phone(browser, "en", {"width": 360, "height": 780})
    try:
        page.goto(f"{service.base_url}/me#token={tenant.person_token('mother')}")
        expect(page.locator("#whose-row")).to_be_visible()
        page.locator("#whose-select").select_option("kid")
        expect(page.locator("#consent-list")).to_have_attribute("data-whose", "kid")  # the kid's, drawn
        expect(page.locator("#consent-list .consent-card")).to_have_count(len(DATA_TYPES))
        # Outreach before monitoring: the panel says it would not take effect yet; cancelling changes nothing.
        outreach = page.locator("#consent-list .consent-card[data-type='steps'] .consent-row[data-purpose='outreach']")
        outreach.locator("input[role=switch]").click()
        expect(outreach.locator(".confirm .note")).to_have_text("Takes effect once Monitoring is on.")
        outreach.locator(".confirm button:not([data-action])").click()
        expect(outreach.locator(".confirm")).to_have_count(0)
        expect(outreach).to_have_attribute("data-granted", "false")
        decide(page, "steps", "monitoring", grant=True, words=WORDS["en"])
        kid = tenant.client(tenant.person_token("kid"))
        [steps] = [c for c in kid.get("/v1/me/consents").json()["consents"]
                   if c["data_type"] == "steps" and c["purpose"] == "monitoring"]
        assert steps["granted"] and steps["actor"] == "guardian"
        own = tenant.client(tenant.person_token("mother")).get("/v1/me/consents").json()["consents"]
        assert not any(c["granted"] for c in own)  # the guardian's own consents are untouched
    finally:
        context.close()


def test_who_looked_at_my_data(service, browser, artifacts):
    """The access log renders GET /v1/me/access-log exactly as the service answers it; until that endpoint
    exists the section says so in a sentence."""
    tenant = service.new_tenant()
    app = tenant.client(tenant.person_token("sun"))
    assert app.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": "test"}).status_code == 200
    stream(app, "heart_rate", 6, lambda h: 60 + h % 3)
    care = tenant.client(tenant.staff_token("nurse-7"))
    # No alert gives this agent a reason to look: break the glass, with the reason the person will see.
    looked = care.get("/v1/care/people/sun/readings", params={"metric": "heart_rate", "reason": "member phoned in"})
    assert looked.status_code == 200
    context, page = phone(browser, "en", {"width": 360, "height": 780})
    try:
        page.goto(f"{service.base_url}/me#token={tenant.person_token('sun')}")
        open_tab(page, "rights")
        log = app.get("/v1/me/access-log").json()
        assert log["items"], log
        first = log["items"][0]
        item = page.locator("#access-list .access-item").first
        expect(item).to_have_attribute("data-role", first["role"])
        expect(item).to_have_attribute("data-what", first["what"])
        expect(item).to_have_attribute("data-at", first["at"])
        if first["what"] == "readings:heart_rate":
            expect(item).to_contain_text("your heart rate readings")
        if first["role"] == "care_agent":
            expect(item).to_contain_text("Care agent")
        # Why the look was allowed: the break-the-glass reason, or the alert that gave the agent a reason to
        # look (the worker may have opened a data-gap alert for this person meanwhile).
        assert "member phoned in" in first["why"] or first["why"].startswith("alert "), first
        expect(item).to_contain_text(first["why"])
        expect(page.locator("#access-list .access-item")).to_have_count(len(log["items"]))
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / "me-access-log.png"), full_page=True)
    finally:
        context.close()


def test_the_pages_own_routes_answer_plainly(service, worker):
    """The routes behind /me: notices with versions, my data only with consent, my messages with a cursor."""
    tenant = service.new_tenant()
    app = tenant.client(tenant.person_token("qian"))
    notices = app.get("/v1/me/notices", params={"language": "zh-CN"}).json()
    assert notices["language"] == "zh-CN" and len(notices["notices"]) == len(DATA_TYPES) * len(PURPOSES)
    versions = {n["version"] for n in notices["notices"]}
    assert len(versions) == len(DATA_TYPES) * len(PURPOSES)  # each notice has its own version...
    english = app.get("/v1/me/notices", params={"language": "en"}).json()["notices"]
    assert {n["version"] for n in english} == versions  # ...the same in every language it is shown in
    assert app.get("/v1/me/notices", params={"language": "fr"}).status_code == 422

    refused = app.get("/v1/me/data/heart_rate")
    assert refused.status_code == 403 and refused.json()["code"] == "no_consent"
    assert app.get("/v1/me/data/nonsense").status_code == 422
    assert app.get("/v1/me/data/heart_rate", params={"days": 0}).status_code == 422
    granted = app.put("/v1/me/consents/heart_rate/monitoring", json={"notice_version": english[0]["version"]})
    assert granted.status_code == 200
    stream(app, "heart_rate", 3, lambda h: 60 + h % 4)
    # A reading every 3 hours never covers a night, though the watch sends by day. Once the worker has seen them
    # all, the person's data says their overnight check is paused (a finding, and an information alert), nothing else.
    with service.admin_conn() as conn:
        wait_for(lambda: conn.execute(
            """SELECT EXISTS (SELECT FROM detector_state s JOIN people p ON p.id = s.person_id
                               WHERE p.tenant_id = %s AND p.external_id = 'qian' AND s.readings_seen = 240)""",
            (tenant.id,)).fetchone()[0], timeout=60)
    mine = wait_for(lambda: (lambda d: d if d["alerts"] else None)(
        app.get("/v1/me/data/heart_rate", params={"bucket": "1d"}).json()), timeout=30)
    assert mine["bucket"] == "1d" and 29 <= len(mine["points"]) <= 31
    assert [(f["kind"], f["feature"], f["tier"]) for f in mine["findings"]] == [("data_gap", "overnight_rhr", "watch")]
    assert "overnight check is paused" in mine["findings"][0]["reason"]
    assert [(a["kind"], a["severity"], a["urgent"], a["details"]) for a in mine["alerts"]] == [
        ("data_gap", "info", False, {"nights": 3})]
    assert sum(p["count"] for p in mine["points"]) == 240

    assert app.get("/v1/me/messages").json() == {"messages": [], "next": None}
    for garbage in ("nope", "bm9wZQ==", "fA==", "MjAyNi0wMS0wMXxub3QtYS11dWlk", "\u0000"):
        answer = app.get("/v1/me/messages", params={"before": garbage})
        assert answer.status_code == 422 and answer.json()["code"] == "invalid", garbage

    with service.admin_conn() as conn:
        person_id = conn.execute("SELECT id FROM people WHERE tenant_id = %s AND external_id = 'qian'",
                                 (tenant.id,)).fetchone()[0]
        for status in ("sent", "answered", "cancelled", "opened"):
            conn.execute("""INSERT INTO notifications (tenant_id, recipient_kind, person_id, purpose, metric, status)
                            VALUES (%s, 'person', %s, 'check_in', 'heart_rate', %s)""", (tenant.id, person_id, status))
    first = app.get("/v1/me/messages", params={"limit": 2}).json()
    assert len(first["messages"]) == 2 and first["next"]
    rest = app.get("/v1/me/messages", params={"limit": 2, "before": first["next"]}).json()
    assert len(rest["messages"]) == 1 and rest["next"] is None  # the cancelled one is not listed
    listed = first["messages"] + rest["messages"]
    assert len({m["id"] for m in listed}) == 3 and {m["status"] for m in listed} == {"sent", "answered", "opened"}
    assert all(m["title"] == "Checking in" and m["data_type"] == "heart_rate" for m in listed)

    assert app.delete("/v1/me").status_code == 200
    for path in ("/v1/me/data/heart_rate", "/v1/me/messages"):
        assert app.get(path).json()["code"] == "erased", path
