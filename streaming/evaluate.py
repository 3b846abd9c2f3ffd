"""Judge the detector on people it was not tuned on, side by side with NightSignal.

    beidou evaluate FOLDER [--out DIR] [--write-operating-points]     (or: python -m streaming.evaluate)

FOLDER holds ``<ID>_hr.csv.gz``, ``<ID>_steps.csv.gz`` and ``labels.csv`` (``participant,symptom_onset,...``),
local times, time zone UTC unless ``--tz`` says otherwise. It reports, at the event level as the papers count:

(a) **leave-one-person-out**: for each labelled person, the fusion parameters and threshold are chosen on
    the other people only (see ``streaming.curve``), then that person's real onset is scored;
(b) **injected illnesses** into the healthy stretches of the labelled people and of generated people:
    sensitivity (alert within 3 days) against alert burden, as a curve over the threshold, NightSignal's
    curve beside it; the default parameters and the low / standard / high operating points are chosen here;
(c) **the labelled people as they are**, with the product's defaults: early detection (an alert raised within
    [onset − 7, onset] days, and [−14, 0]), median lead time, alert episodes and alert-days per 30 healthy
    person-days (days more than 21 days from onset).

The curve is drawn to ``DIR/detection-curve.png`` (default ``test-artifacts/``).
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from streaming import curve as cv
from streaming.detection import DetectorConfig, PersonDetector
from streaming.detection.nightsignal import overnight_resting_hr, red_alerts
from streaming.detection.operating_points import PATH as OPERATING_POINTS_PATH
from streaming.detection.synthetic import SyntheticPerson
from streaming.events import ALERT, HEALTH
from streaming.replay import merged_stream, read_series

HEALTHY_DISTANCE_DAYS = cv.HEALTHY_DISTANCE_DAYS
WINDOWS = ((-7, 0), (-14, 0))
OURS, NIGHTSIGNAL = "ours", "nightsignal"
_METRICS = ("steps", "heart_rate")
DEFAULT_OUT = Path("test-artifacts")


@dataclass(slots=True)
class PersonResult:
    """One person's alerts as (alert date, end date) ordinals, with the days that count."""

    person: str
    onset: int
    data_days: set[int]
    alerts: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def healthy_days(self) -> set[int]:
        return {d for d in self.data_days if abs(d - self.onset) > HEALTHY_DISTANCE_DAYS}

    def relative(self, detector: str) -> list[int]:
        return [a - self.onset for a, _ in self.alerts[detector]]


def read_labels(path: Path) -> dict[str, int]:
    with open(path, newline="") as f:
        return {row["participant"]: date.fromisoformat(row["symptom_onset"]).toordinal()
                for row in csv.DictReader(f)}


def evaluate_person(folder: Path, person: str, onset: int, tz: str = "UTC",
                    config: DetectorConfig | None = None) -> tuple[PersonResult, cv.PersonLog]:
    """The person's real alerts (ours and NightSignal's) and their day log for the curves."""
    hr = read_series(folder / f"{person}_hr.csv.gz")
    steps = read_series(folder / f"{person}_steps.csv.gz")
    days = np.unique(hr[0].astype("datetime64[D]").astype(np.int64)) + 719163  # epoch day -> ordinal
    result = PersonResult(person, onset, {int(d) for d in days})
    ts, codes, values = merged_stream(hr, steps, _zone(tz))
    detector = PersonDetector(person, tz, config)
    detector.day_log = []
    process = detector.process_epoch
    for t, code, value in zip(ts.tolist(), codes.tolist(), values.tolist()):
        process(_METRICS[code], t, value)
    ours = [(e.alert_at.date().toordinal(), e.end.date().toordinal())
            for e in detector.pop_finished() + detector.open_episodes()
            if e.kind == HEALTH and e.tier == ALERT and e.alert_at is not None]
    result.alerts[OURS] = sorted(ours)
    nights = overnight_resting_hr(hr[0], hr[1], steps[0], steps[1], config)
    result.alerts[NIGHTSIGNAL] = [(a.alert_date, a.end_date) for a in red_alerts(nights)]
    return result, cv.from_day_log(person, detector.day_log, onset)


def synthetic_logs(count: int, days: int = 100, config: DetectorConfig | None = None) -> list[cv.PersonLog]:
    """Generated healthy people (``streaming.detection.synthetic``) of varied rhythm, as day logs."""
    logs = []
    for i in range(count):
        rng = random.Random(f"synthetic:{i}")
        person = SyntheticPerson(start=date(2026, 1, 5), days=days, seed=i, step_s=120,
                                 rest_bpm=rng.uniform(50, 70), night_sd=rng.uniform(1.5, 4.0),
                                 exercise_days={d for d in range(days) if rng.random() < 0.15})
        detector = PersonDetector(f"synthetic-{i}", person.tz, config)
        detector.day_log = []
        for reading in person.iter_readings():
            detector.process(reading)
        log = cv.from_day_log(f"synthetic-{i}", detector.day_log, synthetic=True)
        logs.append(cv.ordinary_life(log, seed=i))
    return logs


def summarise(results: list[PersonResult], detector: str) -> dict:
    """The figures of one detector over all people."""
    figures: dict = {}
    for lo, hi in WINDOWS:
        hits = [r for r in results if any(lo <= x <= hi for x in r.relative(detector))]
        figures[f"detected_{-lo}d"] = len(hits) / len(results) if results else 0.0
        if (lo, hi) == WINDOWS[0]:
            leads = [-min(x for x in r.relative(detector) if lo <= x <= hi) for r in hits]
            figures["median_lead_days"] = statistics.median(leads) if leads else None
    healthy = episodes = alert_days = 0
    for r in results:
        days = r.healthy_days
        healthy += len(days)
        for start, end in r.alerts[detector]:
            episodes += start in days
            alert_days += sum(d in days for d in range(start, end + 1))
    figures["healthy_days"] = healthy
    figures["alert_episodes_per_30"] = 30.0 * episodes / healthy if healthy else 0.0
    figures["alert_days_per_30"] = 30.0 * alert_days / healthy if healthy else 0.0
    return figures


def score_held_out(log: cv.PersonLog, params, threshold: float) -> dict:
    """The held-out person's real onset, with parameters and threshold chosen without them."""
    eps = cv.episodes(cv.trajectory(log, params), threshold)
    rel = [a - log.onset for a, _ in eps]
    healthy = sum(1 for d in log.dates if log.healthy(d))
    false = sum(1 for a, _ in eps if log.healthy(a))
    return {"detected_7d": any(-7 <= x <= 0 for x in rel), "detected_14d": any(-14 <= x <= 0 for x in rel),
            "alerts_relative": rel, "false_episodes": false, "healthy_days": healthy,
            "params": params.to_json(), "threshold": threshold}


def evaluate_folder(path: str | Path, tz: str = "UTC", config: DetectorConfig | None = None,
                    synthetic: int = 6, seeds: int = 2, grid: list | None = None) -> dict:
    """Everything ``beidou evaluate`` reports, as a dict (see the module docstring)."""
    folder = Path(path)
    labels = read_labels(folder / "labels.csv")
    results, logs = [], []
    for person, onset in labels.items():
        if (folder / f"{person}_hr.csv.gz").exists():
            result, log = evaluate_person(folder, person, onset, tz, config)
            results.append(result)
            logs.append(log)
    generated = synthetic_logs(synthetic, config=config)
    grid = list(grid or cv.PARAM_GRID)
    curves = cv.build_curves(logs + generated, grid, seeds=seeds)
    labelled = [log.person for log in logs]
    by_name = {log.person: log for log in logs}
    everyone = labelled + [g.person for g in generated]

    def choose_without(training: list[str]):
        # Training = the other labelled people and the generated ones; never the held-out person.
        i, j = cv.choose(curves, training + [g.person for g in generated], grid)
        return grid[i], cv.THRESHOLDS[j]

    lopo = cv.leave_one_out(labelled, choose_without,
                            lambda p, choice: score_held_out(by_name[p], choice[0], choice[1]))
    healthy = sum(r["healthy_days"] for r in lopo.values())
    lopo_summary = {
        "detected_7d": sum(r["detected_7d"] for r in lopo.values()) / max(len(lopo), 1),
        "detected_14d": sum(r["detected_14d"] for r in lopo.values()) / max(len(lopo), 1),
        "alert_episodes_per_30": 30.0 * sum(r["false_episodes"] for r in lopo.values()) / max(healthy, 1),
    }
    # The defaults: the same procedure on everyone.
    best, _ = cv.choose(curves, everyone, grid)
    sens, burden = cv.curve(curves, everyone, best)
    shown = cv.allowed(grid[best])
    points = {}
    for name, target in cv.TARGET_BURDENS.items():
        j = cv.at_burden(sens, burden, target, cv.allowed(grid[best]))
        points[name] = {"threshold": cv.THRESHOLDS[j], "target_burden": target,
                        "expected_sensitivity": round(float(sens[j]), 3),
                        "expected_alert_episodes_per_30_days": round(float(burden[j]), 3)}
    ns_sens, ns_burden = cv.curve(curves, everyone, "ns")
    ns_default = cv.NS_DELTAS.index(4.0)
    return {
        "people": len(results),
        "generated_people": len(generated),
        "injections": sum(curves.trials.values()),
        OURS: summarise(results, OURS),
        NIGHTSIGNAL: summarise(results, NIGHTSIGNAL),
        "per_person": {r.person: {OURS: r.relative(OURS), NIGHTSIGNAL: r.relative(NIGHTSIGNAL),
                                  "healthy_days": len(r.healthy_days)} for r in results},
        "leave_one_out": {"people": lopo, "summary": lopo_summary},
        "curve": {"thresholds": [h for h, ok in zip(cv.THRESHOLDS, shown) if ok],
                  "sensitivity": sens[shown].round(4).tolist(), "burden": burden[shown].round(4).tolist(),
                  "params": grid[best].to_json(),
                  "nightsignal": {"deltas": list(cv.NS_DELTAS), "sensitivity": ns_sens.round(4).tolist(),
                                  "burden": ns_burden.round(4).tolist()}},
        "operating_points": points,
        "nightsignal_point": {"delta_bpm": 4.0, "sensitivity": round(float(ns_sens[ns_default]), 3),
                              "alert_episodes_per_30_days": round(float(ns_burden[ns_default]), 3)},
    }


def plot(report: dict, path: Path) -> Path:
    """Draw the operating curve (ours and NightSignal's) to ``path`` as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = report["curve"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(c["burden"], c["sensitivity"], "-", color="#1f77b4", label="evidence fusion (threshold swept)")
    ns = c["nightsignal"]
    ax.plot(ns["burden"], ns["sensitivity"], "--", color="#d62728", label="NightSignal (+2…+8 bpm swept)")
    for name, p in report["operating_points"].items():
        ax.plot(p["expected_alert_episodes_per_30_days"], p["expected_sensitivity"], "o", color="#1f77b4")
        ax.annotate(name, (p["expected_alert_episodes_per_30_days"], p["expected_sensitivity"]),
                    textcoords="offset points", xytext=(6, -10))
    nsp = report["nightsignal_point"]
    ax.plot(nsp["alert_episodes_per_30_days"], nsp["sensitivity"], "s", color="#d62728")
    ax.annotate("NightSignal +4 bpm", (nsp["alert_episodes_per_30_days"], nsp["sensitivity"]),
                textcoords="offset points", xytext=(6, 4))
    ax.set_xlim(0, 2.0)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("alert episodes per 30 healthy days")
    ax.set_ylabel("injected illnesses alerted within 3 days")
    ax.set_title(f"{report['injections']} injected illnesses, {report['people']} real + "
                 f"{report['generated_people']} generated people")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def operating_points_table(report: dict, command: str) -> dict:
    return {"command": command, "params": report["curve"]["params"], "choices": report["operating_points"],
            "nightsignal": report["nightsignal_point"]}


def format_report(result: dict) -> str:
    """The figures as small tables, then each person's alert days relative to onset."""
    lines = []
    lo = result["leave_one_out"]
    lines.append(f"(a) leave-one-person-out, {result['people']} labelled people (parameters and threshold chosen "
                 f"without the person scored):")
    s = lo["summary"]
    lines.append(f"    alert raised in [-7, 0] days: {s['detected_7d']:.0%}, in [-14, 0]: {s['detected_14d']:.0%}; "
                 f"alert episodes per 30 healthy days: {s['alert_episodes_per_30']:.2f}")
    for person, r in lo["people"].items():
        lines.append(f"    {person}: alerts at {r['alerts_relative']} days from onset (threshold {r['threshold']}, "
                     f"shift {r['params']['shift']})")
    lines.append("")
    lines.append(f"(b) {result['injections']} injected illnesses into {result['people']} real and "
                 f"{result['generated_people']} generated people (burden: the worse of everyone's and the real people's healthy days):")
    lines.append(f"    {'operating point':18}{'threshold':>10}{'sensitivity':>13}{'episodes/30 d':>15}")
    for name, p in result["operating_points"].items():
        lines.append(f"    {name:18}{p['threshold']:>10}{p['expected_sensitivity']:>13.0%}"
                     f"{p['expected_alert_episodes_per_30_days']:>15.2f}")
    nsp = result["nightsignal_point"]
    lines.append(f"    {'NightSignal +4':18}{'':>10}{nsp['sensitivity']:>13.0%}{nsp['alert_episodes_per_30_days']:>15.2f}")
    lines.append(f"    parameters: {result['curve']['params']}")
    lines.append("")
    rows = [
        ("detected, alert in [-7, 0] days", "detected_7d", "{:.0%}"),
        ("detected, alert in [-14, 0] days", "detected_14d", "{:.0%}"),
        ("median lead time, days ([-7, 0])", "median_lead_days", "{:.1f}"),
        ("alert episodes per 30 healthy days", "alert_episodes_per_30", "{:.2f}"),
        ("alert-days per 30 healthy days", "alert_days_per_30", "{:.2f}"),
    ]
    ours, ns = result[OURS], result[NIGHTSIGNAL]
    lines.append(f"(c) the labelled people with the defaults: {result['people']} people, "
                 f"{ours['healthy_days']} healthy person-days")
    lines.append(f"    {'':38}{'ours':>10}{'NightSignal':>14}")
    for label, key, fmt in rows:
        a = fmt.format(ours[key]) if ours[key] is not None else "-"
        b = fmt.format(ns[key]) if ns[key] is not None else "-"
        lines.append(f"    {label:38}{a:>10}{b:>14}")
    lines.append("    alert days relative to onset (ours | NightSignal):")
    for person, detail in result["per_person"].items():
        lines.append(f"      {person}: {detail[OURS]} | {detail[NIGHTSIGNAL]}")
    return "\n".join(lines)


def run(folder: str, *, tz: str = "UTC", out: Path = DEFAULT_OUT, write_points: bool = False,
        synthetic: int = 6, seeds: int = 2, as_json: bool = False, command: str = "") -> dict:
    report = evaluate_folder(folder, tz, synthetic=synthetic, seeds=seeds)
    png = plot(report, Path(out) / "detection-curve.png")
    (Path(out) / "detection-evaluation.json").write_text(json.dumps(report, indent=1))
    if write_points:
        OPERATING_POINTS_PATH.write_text(json.dumps(operating_points_table(report, command), indent=1) + "\n")
    print(json.dumps(report, indent=1) if as_json else format_report(report))
    print(f"\ncurve: {png}", file=sys.stderr)
    return report


def _zone(tz: str):
    from zoneinfo import ZoneInfo
    return ZoneInfo(tz)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder with <ID>_hr.csv.gz, <ID>_steps.csv.gz and labels.csv")
    parser.add_argument("--tz", default="UTC", help="time zone of the files' local times (default UTC)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the PNG curve and the JSON report")
    parser.add_argument("--synthetic", type=int, default=6, help="generated people added to the injections")
    parser.add_argument("--seeds", type=int, default=2, help="injections per position")
    parser.add_argument("--write-operating-points", action="store_true",
                        help="rewrite streaming/detection/operating_points.json from this run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    run(args.folder, tz=args.tz, out=Path(args.out), write_points=args.write_operating_points,
        synthetic=args.synthetic, seeds=args.seeds, as_json=args.json, command="python -m streaming.evaluate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
