"""Synthetic people for tests and benchmarks: a plausible day of heart rate and steps, with knobs.

Each day has a night of sleep (no steps, heart rate near the person's resting rate), a morning and an
evening walk, an afternoon at a desk (resting, a few bpm above the night) and, on chosen days, a long run.
Illness adds to the resting heart rate at night and by day and removes steps; a gap removes everything.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from streaming.detection.reading import Reading


@dataclass(slots=True)
class SyntheticPerson:
    """Knobs of a synthetic person; days are counted from ``start`` (day 0).

    Attributes
    ----------
    rest_bpm
        Overnight resting heart rate on an ordinary night.
    night_sd
        Night-to-night spread of the overnight mean (bpm).
    step_s
        Seconds between heart-rate readings (steps come every minute while awake, every 5 at night).
    rise
        Day -> bpm added to resting heart rate that night and day (illness).
    steps_drop
        Day -> share of the usual steps missing that day.
    exercise_days
        Days with a long run in the late afternoon (and a slightly raised night after it).
    gaps
        (first day, last day) ranges with no readings at all.
    day_rise_share
        Share of ``rise`` seen in the daytime resting heart rate (1: fever all day, 0: nights only).
    off_at_night
        Days whose night (midnight to 7 am) has no readings: the watch is charging by the bed.
    """

    start: date = date(2026, 1, 5)
    days: int = 42
    tz: str = "UTC"
    rest_bpm: float = 58.0
    night_sd: float = 1.0
    step_s: int = 60
    seed: int = 7
    rise: dict[int, float] = field(default_factory=dict)
    steps_drop: dict[int, float] = field(default_factory=dict)
    exercise_days: set[int] = field(default_factory=set)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    day_rise_share: float = 1.0
    off_at_night: set[int] = field(default_factory=set)

    def readings(self) -> list[Reading]:
        return list(self.iter_readings())

    def iter_readings(self) -> Iterator[Reading]:
        rng = random.Random(self.seed)
        zone = ZoneInfo(self.tz)
        for day in range(self.days):
            night_offset = rng.gauss(0.0, self.night_sd)
            day_offset = rng.gauss(0.0, self.night_sd)
            if any(lo <= day <= hi for lo, hi in self.gaps):
                continue
            midnight = datetime.combine(self.start + timedelta(days=day), datetime.min.time(), tzinfo=zone)
            yield from self._day(rng, midnight, day, night_offset, day_offset)

    def _day(self, rng: random.Random, midnight: datetime, day: int, night_offset: float,
             day_offset: float) -> Iterator[Reading]:
        rise = self.rise.get(day, 0.0)
        after_run = 2.0 if day - 1 in self.exercise_days else 0.0
        keep_steps = 1.0 - self.steps_drop.get(day, 0.0)
        night_bpm = self.rest_bpm + night_offset + rise + after_run
        desk_bpm = self.rest_bpm + 8.0 + day_offset + rise * self.day_rise_share
        # (start hour, end hour, heart rate, steps per minute)
        blocks = [
            (0.0, 7.0, night_bpm, 0.0),
            (7.0, 8.5, self.rest_bpm + 30.0, 60.0 * keep_steps),
            (8.5, 17.0, desk_bpm, 0.0),
            (17.0, 19.0, self.rest_bpm + 35.0, 40.0 * keep_steps),
            (19.0, 24.0, desk_bpm + 4.0, 0.0),
        ]
        if day in self.exercise_days:
            blocks[3] = (17.0, 19.0, self.rest_bpm + 95.0, 150.0)
        events: list[tuple[float, int, Reading]] = []
        if day in self.off_at_night:
            blocks = blocks[1:]
        for lo, hi, bpm, steps in blocks:
            second = int(lo * 3600)
            while second < hi * 3600:
                t = midnight + timedelta(seconds=second)
                events.append((second, 1, Reading(t, "heart_rate", round(bpm + rng.gauss(0.0, 2.0)))))
                second += self.step_s
            step_every = 300 if steps == 0 else 60
            second = int(lo * 3600)
            while second < hi * 3600:
                t = midnight + timedelta(seconds=second)
                value = max(0.0, round(steps + rng.gauss(0.0, 5.0))) if steps else 0.0
                events.append((second, 0, Reading(t, "steps", value)))
                second += step_every
        events.sort(key=lambda e: (e[0], e[1]))
        for _, _, reading in events:
            yield reading


def local_csv_rows(readings: list[Reading], metric: str) -> list[tuple[str, str]]:
    """``(local time, value)`` rows of one metric, as the exported CSV files have them."""
    rows = []
    for r in readings:
        if r.metric == metric:
            rows.append((r.time.strftime("%Y-%m-%d %H:%M:%S"), f"{r.value:g}"))
    return rows
