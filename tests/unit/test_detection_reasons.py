"""Structured detection reasons read in the reader's language, with the English sentence as the fallback."""
from __future__ import annotations

from alerts.messages import reason_text

COMBINED = {"signals": [
    {"signal": "overnight_rhr", "metric": "heart_rate", "value": 64.0, "baseline": 58.0, "change": 6.0,
     "unit": "bpm", "days": 2, "direction": "up"},
    {"signal": "daily_steps", "metric": "steps", "value": 3000.0, "baseline": 10000.0, "change": -7000.0,
     "unit": "steps", "days": 2, "direction": "down"},
    {"signal": "sleep_duration", "metric": "sleep", "value": 540.0, "baseline": 420.0, "change": 120.0,
     "unit": "min", "days": 1, "direction": "up"},
], "score": 5.1, "threshold": 3.75}


def test_combined_reason_in_english_names_every_signal_with_numbers():
    text = reason_text("combined_evidence", COMBINED, "en", "fallback")
    assert text == ("several changes together: overnight resting HR +6.0 bpm for 2 nights (64 vs usual 58), "
                    "steps -70% for 2 days, sleep +2.0 h for 1 day")


def test_combined_reason_in_chinese():
    text = reason_text("combined_evidence", COMBINED, "zh-CN", "fallback")
    assert text == ("多项指标同时变化：夜间静息心率 +6.0 bpm，持续 2 晚（64，平时 58）；步数 -70%，持续 2 天；"
                    "睡眠 +2.0 小时，持续 1 天")
    assert reason_text("combined_evidence", COMBINED, "zh-Hans-CN", "x") == text  # any Chinese variant


def test_gaps_and_missing_nights_in_both_languages():
    assert reason_text("no_data", {"hours": 72.0}, "zh-CN", "x").startswith("设备已 3 天 没有数据")
    assert reason_text("no_data", {"hours": 30.0}, "en", "x").startswith("no data from the device for 30 hours")
    assert "3 晚" in reason_text("nights_missing", {"nights": 3}, "zh-CN", "x")


def test_unknown_codes_and_signals_fall_back_to_the_detectors_sentence():
    assert reason_text("something_new", {}, "zh-CN", "the English sentence") == "the English sentence"
    odd = {"signals": [{"signal": "unheard_of", "change": 1, "days": 1}]}
    assert reason_text("combined_evidence", odd, "zh-CN", "the English sentence") == "the English sentence"
    assert reason_text(None, None, None, "the English sentence") == "the English sentence"


def test_the_care_page_renders_reasons_as_the_server_does(tmp_path):
    import json
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        import pytest
        pytest.skip("node is not installed")
    web = Path(__file__).parents[2] / "app/web"
    (tmp_path / "package.json").write_text('{"type": "module"}')  # the page's files are ES modules
    for name in ("i18n.js", "i18n-core.js"):  # the labels module and what it imports
        shutil.copy(web / name, tmp_path / name)
    module = tmp_path / "i18n.js"
    cases = [("combined_evidence", COMBINED), ("no_data", {"hours": 72.0}), ("nights_missing", {"nights": 3}),
             ("feature_change", {"signals": COMBINED["signals"][:1]}), ("unknown", {})]
    script = tmp_path / "run.mjs"
    script.write_text(
        f'import {{ reasonText, setLanguage }} from "{module}";\n'
        f"const cases = {json.dumps(cases)};\nconst out = {{}};\n"
        'for (const lang of ["en", "zh-CN"]) { setLanguage(lang); '
        'out[lang] = cases.map(([code, d]) => reasonText(code, d, "the English sentence")); }\n'
        "console.log(JSON.stringify(out));\n")
    page = json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout)
    for lang in ("en", "zh-CN"):
        server = [reason_text(code, d, lang, "the English sentence") for code, d in cases]
        assert page[lang] == server
