"""The pages are put together from app/web and its partials: every include is filled in, once per page."""
from __future__ import annotations

import re

import pytest

from app.api.web import PAGES, render


@pytest.mark.parametrize("name", sorted(PAGES.values()))
def test_every_include_and_placeholder_of_a_page_is_filled_in(name):
    page = render(name)
    assert page.startswith("<!doctype html>\n<html lang=")
    assert "<!--#" not in page and not re.search(r"\{\{\w+\}\}", page)
    assert page.count("<head>") == 1 and page.count("<body>") == 1
    assert page.count('<meta name="referrer" content="no-referrer">') == 1


def test_a_page_gets_its_own_values_in_the_markup_it_shares():
    care, outcomes = render("index.html"), render("outcomes.html")
    assert '<title data-i18n="title">Health Beidou · Care queue</title>' in care
    assert '<script type="module" src="/care/static/app.js"></script>' in care
    assert '<a class="topbar-link" href="/care/outcomes" data-i18n="outcomes_link">Outcomes</a>' in care
    assert '<script type="module" src="/care/static/outcomes.js"></script>' in outcomes
    assert '<a class="topbar-link" href="/care" data-i18n="to_queue">Care queue</a>' in outcomes
    assert '<html lang="zh-CN">' in render("me.html")
