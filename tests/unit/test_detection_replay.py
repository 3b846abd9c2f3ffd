"""The replay CLI on small generated exports, and the evaluation report on a small generated folder."""
from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import date, datetime, timezone

from streaming import evaluate, replay
from streaming.detection.fusion import FusionParams
from streaming.detection.synthetic import SyntheticPerson, local_csv_rows
from streaming.events import AnomalyEvent

KEYS = {"person", "kind", "start", "end", "tier", "feature", "metric", "value", "baseline", "reason", "reason_code",
        "details"}


def write_exports(folder, name: str, person: SyntheticPerson, gz: bool = True) -> tuple:
    readings = person.readings()
    paths = []
    for metric, header in (("heart_rate", ("time", "bpm")), ("steps", ("time", "steps"))):
        path = folder / f"{name}_{'hr' if metric == 'heart_rate' else 'steps'}.csv{'.gz' if gz else ''}"
        with (gzip.open(path, "wt", newline="") if gz else open(path, "w", newline="")) as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(local_csv_rows(readings, metric))
        paths.append(path)
    return tuple(paths)


def test_replay_prints_one_json_object_per_episode(tmp_path):
    person = SyntheticPerson(days=36, step_s=120, rise={30: 10, 31: 10, 32: 10}, gaps=[(12, 14)])
    hr, steps = write_exports(tmp_path, "P1", person, gz=False)
    out = io.StringIO()
    count = replay.replay(hr, steps, "P1", "UTC", out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines) >= 2
    assert all(set(line) == KEYS for line in lines)
    assert {(line["kind"], line["feature"], line["tier"]) for line in lines} >= {
        ("data_gap", "wear", "watch"), ("health", "overnight_rhr", "watch"), ("health", "combined", "alert")}
    alert = next(line for line in lines if line["tier"] == "alert")
    assert alert["person"] == "P1"
    assert datetime.fromisoformat(alert["start"]) == datetime(2026, 2, 4, tzinfo=timezone.utc)
    assert datetime.fromisoformat(alert["end"]) > datetime.fromisoformat(alert["start"])


def test_replay_cli_reads_gzip_in_the_given_time_zone(tmp_path, capsys):
    person = SyntheticPerson(days=36, step_s=120, tz="America/New_York", rise={30: 10, 31: 10})
    hr, steps = write_exports(tmp_path, "P2", person)
    assert replay.main([str(hr), str(steps), "--person", "P2", "--tz", "America/New_York"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    alert = next(line for line in lines if line["tier"] == "alert")
    assert alert["start"] == "2026-02-04T00:00:00-05:00"


def test_evaluate_folder_reports_both_detectors(tmp_path):
    onset = date(2026, 2, 6)  # day 32
    ill = SyntheticPerson(days=60, step_s=120, seed=1, rise={d: 9 for d in range(29, 35)},
                          steps_drop={d: 0.5 for d in range(32, 36)})
    well = SyntheticPerson(days=60, step_s=120, seed=2)
    write_exports(tmp_path, "ILL", ill)
    write_exports(tmp_path, "WELL", well)
    (tmp_path / "labels.csv").write_text(
        "participant,symptom_onset,hr_first_day,hr_last_day\n"
        f"ILL,{onset},2026-01-05,2026-03-05\nWELL,{onset},2026-01-05,2026-03-05\n")
    grid = [FusionParams(), FusionParams(shift=1.0)]
    result = evaluate.evaluate_folder(tmp_path, synthetic=1, seeds=1, grid=grid)
    assert result["people"] == 2
    ours, ns = result["ours"], result["nightsignal"]
    assert ours["detected_7d"] == 0.5 and ours["median_lead_days"] == 2  # raised on the second raised night
    assert result["per_person"]["ILL"]["ours"] == [-2]
    assert result["per_person"]["WELL"]["ours"] == []
    assert ours["healthy_days"] == ns["healthy_days"] == 2 * (60 - 43)
    assert ours["alert_episodes_per_30"] == 0.0
    assert set(ns) == set(ours)
    # Leave-one-out scored each person with a choice made on the other (and the generated person) only.
    assert set(result["leave_one_out"]["people"]) == {"ILL", "WELL"}
    assert result["injections"] > 0 and set(result["operating_points"]) == {"low", "standard", "high"}
    report = evaluate.format_report(result)
    assert "NightSignal" in report and "alert episodes per 30 healthy days" in report
    assert "leave-one-person-out" in report and "injected illnesses" in report
    png = evaluate.plot(result, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_event_json_has_iso_times():
    t = datetime(2026, 2, 4, 7, tzinfo=timezone.utc)
    event = AnomalyEvent("p", "health", "overnight_rhr", "heart_rate", "watch", t, t, 68.0, 58.0, "why")
    data = event.to_json()
    assert data["start"] == "2026-02-04T07:00:00+00:00"
    assert json.loads(json.dumps(data)) == data
