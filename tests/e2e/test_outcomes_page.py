"""The outcomes page in a real headless Chromium against the real service: a supervisor reads a known history
(funnel, cards, uPlot charts, tables), switches to Chinese, downloads the CSV; an agent is told it is not for
them. The strict CSP holds: no console errors."""
from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import sign_in
from tests.integration.test_outcomes import seed_history

expect = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed").expect
RANGE = "from=2026-11-01&to=2026-11-08&bucket=day"


def test_the_outcomes_page_is_served_with_the_same_strict_headers(service):
    page = httpx.get(service.base_url + "/care/outcomes")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for path in ("outcomes.js", "outcomes-i18n.js", "outcomes.css"):
        assert httpx.get(f"{service.base_url}/care/static/{path}").status_code == 200, path


def test_a_supervisor_reads_the_report_in_two_languages_and_downloads_it(service, page, tmp_path, artifacts):
    tenant = service.new_tenant()
    seed_history(tenant)
    page.goto(f"{service.base_url}/care/outcomes?{RANGE}")
    sign_in(page, tenant.staff_token("sup-1", "care_supervisor"))

    expect(page.locator('#funnel li[data-step="opened"] .figure')).to_have_text("3 · 100%")
    expect(page.locator('#funnel li[data-step="answered"] .figure')).to_have_text("1 · 33.3%")
    expect(page.locator('[data-card="reach"] .value')).to_have_text("33.3%")
    expect(page.locator('[data-card="breaches"] .value')).to_have_text("2")
    expect(page.locator('[data-card="monitored"] .value')).to_have_text("1")
    expect(page.locator("#r-zone")).to_contain_text("Asia/Shanghai")
    expect(page.locator(".uplot")).to_have_count(2)
    expect(page.locator("#times tbody tr").first).to_contain_text("20 min")
    overnight = page.locator("#resolutions tbody tr", has_text="overnight_rhr")
    expect(overnight).to_contain_text("50%")
    expect(page.locator("#pushes tbody tr")).to_contain_text("gateway")
    expect(page.locator("#agents tbody tr")).to_contain_text("agent-1")
    bar = page.locator('#funnel li[data-step="claimed"] .bar')
    assert 60 < bar.evaluate("b => b.getBoundingClientRect().width / b.parentElement.getBoundingClientRect().width * 100") < 70

    page.screenshot(path=str(artifacts / "outcomes-page.png"), full_page=True)

    page.locator("#lang-toggle").click()
    expect(page.locator("h3", has_text="从提醒到回复")).to_be_visible()
    expect(page.locator('[data-card="reach"] .name')).to_have_text("触达率")
    expect(page.locator('#funnel li[data-step="answered"] span').first).to_have_text("会员已回复")

    with page.expect_download() as download:
        page.locator("#r-csv").click()
    path = tmp_path / "outcomes.csv"
    download.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("bucket,feature,severity,opened") and len(lines) == 3
    # The browser's own favicon request is the one resource allowed to fail; a CSP violation would show here.
    assert [p for p in page.problems if "Failed to load resource" not in p] == []


def test_an_agent_is_told_outcomes_are_for_supervisors(service, page):
    tenant = service.new_tenant()
    page.goto(f"{service.base_url}/care/outcomes")
    sign_in(page, tenant.staff_token("agent-7"))
    expect(page.locator("#report-error")).to_have_text("Outcomes are for care supervisors and tenant admins.")
