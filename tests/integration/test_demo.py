"""The demo, headless and accelerated: real anomalous data in, an alert and a push out, the loop closed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT, free_port, service_env

DATA = ROOT.parent / "shared" / "data" / "wearables-covid-dev"


@pytest.mark.skipif(not (DATA / "labels.csv").exists(), reason="the labelled wearable data set is not beside the repo")
def test_the_demo_turns_a_real_illness_into_an_alert_a_push_and_an_answer(fresh_db, tmp_path):
    summary_path = tmp_path / "summary.json"
    env = service_env(fresh_db, "demo-test-secret", tmp_path, free_port(), BEIDOU_LOG_LEVEL="WARNING")
    # One real participant whose overnight heart rate rose days before the labelled COVID-19 onset,
    # replayed from 42 days before to 2 days after it, at 200,000× (about 18 s of streaming).
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--real", "A0NVTRV", "--synthetic", "1", "--days", "42",
         "--end", "onset+2", "--speed", "200000", "--duration", "75", "--port", env["BEIDOU_PORT"],
         "--fcm-port", str(free_port()), "--summary-json", str(summary_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/care" in result.stderr and "Staff token:" in result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["readings_stored"] > 100_000
    assert summary["alerts_opened"] >= 1
    assert summary["pushes_delivered_to_emulator"] >= 1
    assert summary["replies"] >= 1
    assert summary["latency_p50_s"] is not None
