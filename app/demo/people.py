"""Simulated policyholders: real wearable histories replayed, and generated ones.

Every person is a list of (UTC epoch seconds, metric, value) sorted by time and shifted so that the
history ends now; the simulator sends them as the accelerated clock passes them.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass
class SimPerson:
    name: str
    tz: str
    readings: list[tuple[float, str, float]]  # (epoch s, metric, value), sorted
    story: str                                # what happens to them, for the progress display
    meta: dict = field(default_factory=dict)
    via: str = "stream"                       # "stream" (WebSocket) or "health-connect" (native sync records)


def _open(path: Path):
    return io.TextIOWrapper(gzip.open(path), newline="") if path.suffix == ".gz" else path.open(newline="")


def _per_minute(path: Path, column: str, total: bool) -> dict[str, float]:
    """Minute → mean (heart rate) or sum (steps), keyed by the local 'YYYY-MM-DD HH:MM' text."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    with _open(path) as fh:
        for row in csv.DictReader(fh):
            minute = row["time"][:16]
            sums[minute] = sums.get(minute, 0.0) + float(row[column])
            counts[minute] = counts.get(minute, 0) + 1
    if total:
        return sums
    return {m: sums[m] / counts[m] for m in sums}


def real_person(folder: Path, participant: str, *, days: int, tz: str = "America/Los_Angeles",
                end: str = "last", now: datetime | None = None) -> SimPerson:
    """A participant of a labelled wearable data set (``<ID>_hr.csv.gz``, ``<ID>_steps.csv.gz``): the ``days``
    days up to ``end`` (``last``: the last day of data; ``onset+N``: N days after the labelled onset),
    per minute, shifted by whole days so the replay ends now."""
    labels = {r["participant"]: r for r in csv.DictReader((folder / "labels.csv").open())}
    label = labels.get(participant, {})
    hr = _per_minute(folder / f"{participant}_hr.csv.gz", "bpm", total=False)
    steps = _per_minute(folder / f"{participant}_steps.csv.gz", "steps", total=True)
    last = date.fromisoformat(max(hr)[:10])
    if end.startswith("onset") and label.get("symptom_onset"):
        last = min(last, date.fromisoformat(label["symptom_onset"]) + timedelta(days=int(end[5:] or 0)))
    first = last - timedelta(days=days)
    zone = ZoneInfo(tz)
    now = now or datetime.now(timezone.utc)
    # Shift whole days, so local times of day (nights!) stay what they were.
    shift_days = (now.astimezone(zone).date() - last).days
    readings = []
    for series, metric in ((hr, "heart_rate"), (steps, "steps")):
        for minute, value in series.items():
            day = date.fromisoformat(minute[:10])
            if not first <= day <= last:
                continue
            local = datetime.fromisoformat(minute).replace(tzinfo=zone) + timedelta(days=shift_days)
            ts = local.timestamp()
            if ts <= now.timestamp():
                readings.append((ts, metric, round(value, 1)))
    readings.sort()
    onset = label.get("symptom_onset")
    story = "real history"
    if onset:
        shifted = date.fromisoformat(onset) + timedelta(days=shift_days)
        story = f"real history, COVID-19 symptom onset {shifted.isoformat()}"
    return SimPerson(participant, tz, readings, story, {"onset_shifted": onset and shifted.isoformat()},
                     via="health-connect")


def synthetic_person(name: str, *, seed: int, days: int, tz: str = "Asia/Shanghai", ill: bool = False,
                     gap: bool = False, step_min: int = 2, now: datetime | None = None) -> SimPerson:
    """A generated person: calm nights, active days, weekend lie-ins and exercise; optionally an illness
    (resting heart rate up for several nights, fewer steps) near the end, or a few days without the watch."""
    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    now = now or datetime.now(timezone.utc)
    end = now.astimezone(zone).replace(second=0, microsecond=0)
    start = end - timedelta(days=days)
    base_rhr = rng.uniform(52, 68)
    ill_start = end - timedelta(days=rng.uniform(3.5, 6.5)) if ill else None
    gap_start = end - timedelta(days=rng.uniform(8, 12)) if gap else None
    readings = []
    t = start
    while t < end:
        if gap_start and gap_start <= t < gap_start + timedelta(days=2.5):
            t += timedelta(minutes=step_min)
            continue
        hour = t.hour + t.minute / 60
        weekend = t.weekday() >= 5
        wake = 8.5 if weekend else 7.0
        asleep = hour < wake or hour >= 23.2
        sick = ill_start is not None and t >= ill_start
        if asleep:
            steps = 0.0
            bpm = base_rhr + rng.gauss(0, 1.8) + 3 * math.sin(hour / 24 * 2 * math.pi)
        else:
            exercise = (weekend and 10 <= hour < 11) or (not weekend and 18.5 <= hour < 19.2 and t.weekday() % 2 == 0)
            steps = rng.choice([0, 0, 0, 15, 40, 90]) * step_min if not exercise else rng.uniform(120, 160) * step_min
            bpm = base_rhr + 14 + steps / step_min / 5 + rng.gauss(0, 4) + (45 if exercise else 0)
        if sick:
            bpm += rng.uniform(8, 12)
            steps *= 0.3
        ts = t.timestamp()
        readings.append((ts, "heart_rate", round(bpm, 1)))
        readings.append((ts, "steps", round(steps)))
        t += timedelta(minutes=step_min)
    story = "falls ill near the end" if ill else ("leaves the watch off for a few days" if gap else "healthy")
    return SimPerson(name, tz, readings, story)
