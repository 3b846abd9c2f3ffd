"""Judge the detector on people with labelled illness onsets, side by side with NightSignal.

    python -m streaming.evaluate FOLDER      (or: python bench/evaluate.py FOLDER)

FOLDER holds ``<ID>_hr.csv.gz``, ``<ID>_steps.csv.gz`` and ``labels.csv`` (``participant,symptom_onset,...``),
local times, time zone UTC unless ``--tz`` says otherwise. Figures, at the event level as the papers count:

- **early detection**: share of people with an alert-tier episode *starting* within [onset - 7, onset]
  days (and [onset - 14, onset]); an episode starts, for this count, on the local date its alert was
  raised (when a care team would hear of it), not when its first watch-level window began;
- **lead time**: median days from that alert to onset, over the people detected within [onset - 7, onset];
- **alert burden**: alert episodes, and days an alert is open, per 30 healthy person-days. Healthy days
  are days with heart-rate data more than 21 days away from onset; an episode counts where its alert
  date falls.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from streaming.detection import DetectorConfig
from streaming.detection.nightsignal import overnight_resting_hr, red_alerts
from streaming.replay import read_series, run_series
from streaming.events import ALERT, HEALTH

HEALTHY_DISTANCE_DAYS = 21
WINDOWS = ((-7, 0), (-14, 0))
OURS, NIGHTSIGNAL = "ours", "nightsignal"


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
                    config: DetectorConfig | None = None) -> PersonResult:
    hr = read_series(folder / f"{person}_hr.csv.gz")
    steps = read_series(folder / f"{person}_steps.csv.gz")
    days = np.unique(hr[0].astype("datetime64[D]").astype(np.int64)) + 719163  # epoch day -> ordinal
    result = PersonResult(person, onset, {int(d) for d in days})
    ours = []
    for episode in run_series(hr, steps, person, tz, config):
        if episode.kind == HEALTH and episode.tier == ALERT and episode.alert_at is not None:
            ours.append((episode.alert_at.date().toordinal(), episode.end.date().toordinal()))
    result.alerts[OURS] = sorted(ours)
    nights = overnight_resting_hr(hr[0], hr[1], steps[0], steps[1], config)
    result.alerts[NIGHTSIGNAL] = [(a.alert_date, a.end_date) for a in red_alerts(nights)]
    return result


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


def evaluate_folder(path: str | Path, tz: str = "UTC", config: DetectorConfig | None = None) -> dict:
    """Run both detectors on every labelled person in ``path``; figures and per-person alert days."""
    folder = Path(path)
    labels = read_labels(folder / "labels.csv")
    results = [evaluate_person(folder, person, onset, tz, config) for person, onset in labels.items()
               if (folder / f"{person}_hr.csv.gz").exists()]
    return {
        "people": len(results),
        OURS: summarise(results, OURS),
        NIGHTSIGNAL: summarise(results, NIGHTSIGNAL),
        "per_person": {r.person: {OURS: r.relative(OURS), NIGHTSIGNAL: r.relative(NIGHTSIGNAL),
                                  "healthy_days": len(r.healthy_days)} for r in results},
    }


def format_report(result: dict) -> str:
    """The figures as a small table, then each person's alert days relative to onset."""
    rows = [
        ("detected, alert in [-7, 0] days", "detected_7d", "{:.0%}"),
        ("detected, alert in [-14, 0] days", "detected_14d", "{:.0%}"),
        ("median lead time, days ([-7, 0])", "median_lead_days", "{:.1f}"),
        ("alert episodes per 30 healthy days", "alert_episodes_per_30", "{:.2f}"),
        ("alert-days per 30 healthy days", "alert_days_per_30", "{:.2f}"),
    ]
    ours, ns = result[OURS], result[NIGHTSIGNAL]
    lines = [f"{result['people']} people, {ours['healthy_days']} healthy person-days",
             f"{'':38}{'ours':>10}{'NightSignal':>14}"]
    for label, key, fmt in rows:
        a = fmt.format(ours[key]) if ours[key] is not None else "-"
        b = fmt.format(ns[key]) if ns[key] is not None else "-"
        lines.append(f"{label:38}{a:>10}{b:>14}")
    lines.append("")
    lines.append("alert days relative to onset (ours | NightSignal):")
    for person, detail in result["per_person"].items():
        lines.append(f"  {person}: {detail[OURS]} | {detail[NIGHTSIGNAL]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder with <ID>_hr.csv.gz, <ID>_steps.csv.gz and labels.csv")
    parser.add_argument("--tz", default="UTC", help="time zone of the files' local times (default UTC)")
    args = parser.parse_args(argv)
    print(format_report(evaluate_folder(args.folder, args.tz)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
