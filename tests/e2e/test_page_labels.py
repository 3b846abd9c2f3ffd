"""The pages' language choice and label lookup (app/web/i18n-core.js ``pageLabels``), run in Chromium."""
from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).parents[2] / "app/web"


def _run(page, body: str) -> dict:
    """``body`` runs in the page's browser (Debian's Chromium) beside i18n-core.js; what it returns comes back."""
    source = (WEB / "i18n-core.js").read_text().replace("export function", "function")
    return page.evaluate("() => {\n" + source + "\n" + body + "\n}")


def test_a_page_takes_the_first_wanted_language_it_speaks_then_the_browsers_then_its_own_first(page):
    out = _run(page, """
const care = pageLabels({ en: {}, "zh-CN": {} });
const me = pageLabels({ "zh-CN": {}, en: {} });
return {
  care: [care.pickLanguage([null], "zh-TW"), care.pickLanguage(["fr"], "en-US"), care.pickLanguage([], "fr"),
         care.pickLanguage(["zh-CN"], "en-US"), care.language()],
  me: [me.pickLanguage([undefined, null], "en-GB"), me.pickLanguage(["en", "zh-CN"], "zh"),
       me.pickLanguage([null, "en"], "zh"), me.pickLanguage([], "fr"), me.language()],
};
""")
    assert out["care"] == ["zh-CN", "en", "en", "zh-CN", "en"]
    assert out["me"] == ["en", "en", "en", "zh-CN", "zh-CN"]


def test_labels_follow_the_language_fall_back_to_english_and_announce_each_change(page):
    out = _run(page, """
const changes = [];
const labels = pageLabels({ en: { hi: "Hello {who}", only_en: "English only" }, "zh-CN": { hi: "你好 {who}" } },
  (lang) => changes.push(lang));
const seen = [labels.t("hi", { who: "Li" })];
labels.setLanguage("zh-CN");
seen.push(labels.t("hi", { who: "Li" }), labels.t("only_en"), labels.t("missing"), labels.language());
labels.setLanguage("fr");
seen.push(labels.language());
return { seen, changes };
""")
    assert out["seen"] == ["Hello Li", "你好 Li", "English only", "missing", "zh-CN", "en"]
    assert out["changes"] == ["zh-CN", "en"]
