"""The pages' language choice and label lookup (app/web/i18n-core.js ``pageLabels``), run in node."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).parents[2] / "app/web"


def _run(tmp_path: Path, body: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "package.json").write_text('{"type": "module"}')  # the page's files are ES modules
    shutil.copy(WEB / "i18n-core.js", tmp_path / "i18n-core.js")
    script = tmp_path / "run.mjs"
    script.write_text('import { pageLabels } from "./i18n-core.js";\n' + body)
    return json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout)


def test_a_page_takes_the_first_wanted_language_it_speaks_then_the_browsers_then_its_own_first(tmp_path):
    out = _run(tmp_path, """
const care = pageLabels({ en: {}, "zh-CN": {} });
const me = pageLabels({ "zh-CN": {}, en: {} });
console.log(JSON.stringify({
  care: [care.pickLanguage([null], "zh-TW"), care.pickLanguage(["fr"], "en-US"), care.pickLanguage([], "fr"),
         care.pickLanguage(["zh-CN"], "en-US"), care.language()],
  me: [me.pickLanguage([undefined, null], "en-GB"), me.pickLanguage(["en", "zh-CN"], "zh"),
       me.pickLanguage([null, "en"], "zh"), me.pickLanguage([], "fr"), me.language()],
}));
""")
    assert out["care"] == ["zh-CN", "en", "en", "zh-CN", "en"]
    assert out["me"] == ["en", "en", "en", "zh-CN", "zh-CN"]


def test_labels_follow_the_language_fall_back_to_english_and_announce_each_change(tmp_path):
    out = _run(tmp_path, """
const changes = [];
const labels = pageLabels({ en: { hi: "Hello {who}", only_en: "English only" }, "zh-CN": { hi: "你好 {who}" } },
  (lang) => changes.push(lang));
const seen = [labels.t("hi", { who: "Li" })];
labels.setLanguage("zh-CN");
seen.push(labels.t("hi", { who: "Li" }), labels.t("only_en"), labels.t("missing"), labels.language());
labels.setLanguage("fr");
seen.push(labels.language());
console.log(JSON.stringify({ seen, changes }));
""")
    assert out["seen"] == ["Hello Li", "你好 Li", "English only", "missing", "zh-CN", "en"]
    assert out["changes"] == ["zh-CN", "en"]
