"""Operating curves that cannot be tuned to the people they are scored on.

A person's history is run through the detector once to get its *day log*: the values each fused day saw
(overnight resting HR, the day before's steps, daytime resting HR...) and the data gaps. The fusion is then
replayed from that log, which takes milliseconds, so many parameter sets, thresholds and injected illnesses
can be tried:

- **injection**: an illness signature is written into a healthy stretch of a real or generated person —
  resting HR +2…+8 bpm over 2–6 nights with night-to-night jitter (the daytime resting HR a share of it),
  steps −20…−70 %, sleep ±30…120 min and HRV −10…−30 % where the person has them — at many positions, with
  several seeds. *Sensitivity* is the share of injections whose alert is raised within 3 days of the
  injection's first night; *alert burden* is alert episodes per 30 healthy days of the same people without
  injection. Because the fusion's CuSum does not depend on the threshold, one replay gives the whole curve.
- **leave-one-person-out**: the parameters and the threshold are chosen on the other people only (best
  injected sensitivity at an alert burden ≤ 0.5 on them), then the held-out person's real onset is scored.

NightSignal (``streaming.detection.nightsignal``) is run on the same nights, injected the same way, with its
+4 bpm rule swept from +2 to +8 bpm to give its own curve.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from streaming.detection.fusion import Fusion, FusionParams, episode_step
from streaming.detection.nightsignal import red_alerts

HEALTHY_DISTANCE_DAYS = 21
DETECT_WITHIN_DAYS = 3
THRESHOLDS = tuple(round(x, 2) for x in np.arange(1.0, 20.01, 0.25))
NS_DELTAS = tuple(round(x, 1) for x in np.arange(2.0, 8.01, 0.5))
TARGET_BURDENS = {"high": 1.0, "standard": 0.5, "low": 0.25}
PARAM_GRID = tuple(
    FusionParams(shift=shift, cap_main=cap_main, cap_support=cap_support, negative_cap=negative_cap,
                 negative_cap_support=negative_support)
    for shift, cap_main, cap_support, negative_cap, negative_support in itertools.product(
        (1.0, 1.5, 2.0), (2.5, 3.5), (1.0, 2.0), (1.0, 2.0), (0.0, 0.5, 1.0))
)


@dataclass(slots=True)
class PersonLog:
    """One person's fused days: ``(date, values)``, or ``(None, {"long_gap": bool})`` for a data gap."""

    person: str
    days: list[tuple[int | None, dict]]
    onset: int | None = None  # symptom onset (date ordinal), for people with a labelled illness
    synthetic: bool = False

    def healthy(self, date: int) -> bool:
        return self.onset is None or abs(date - self.onset) > HEALTHY_DISTANCE_DAYS

    @property
    def dates(self) -> list[int]:
        return [d for d, _ in self.days if d is not None]


def from_day_log(person: str, day_log: list, onset: int | None = None, synthetic: bool = False) -> PersonLog:
    """A :class:`PersonLog` from ``PersonDetector.day_log`` entries ``(date, start, end, values)``."""
    return PersonLog(person, [(d, v) for d, _s, _e, v in day_log], onset, synthetic)


# -- replaying the fusion -------------------------------------------------------------------------------
def trajectory(log: PersonLog, params: FusionParams, warmup: int = 14,
               window: int = 28) -> list[tuple[int | None, float, float, bool]]:
    """``(date, score, evidence, body)`` per fused day (``(None, 0, 0, False)`` at a gap), threshold-free."""
    fusion = Fusion(params, math.inf, window, warmup)
    out: list[tuple[int | None, float, float, bool]] = []
    for date, values in log.days:
        if date is None:
            fusion.close()
            if values.get("long_gap"):
                fusion.start_probation(3)
            out.append((None, 0.0, 0.0, False))
            continue
        fusion.close_day(0.0, 0.0, values)
        if fusion.last_total is not None:  # days without a ready signal do not move the episode, as online
            out.append((date, fusion.score, fusion.last_total, fusion.body_evidence))
    return out


def episodes(traj: list[tuple[int | None, float, float, bool]], threshold: float) -> list[tuple[int, int]]:
    """Alert episodes ``(alert date, last date)`` at ``threshold``, by the same rule as the detector."""
    out: list[list[int]] = []
    is_open = False
    before = 0.0
    for date, score, evidence, body in traj:
        if date is None:
            is_open, before = False, 0.0
            continue
        was_open = is_open
        is_open, opened = episode_step(is_open, before, score, evidence, threshold, body)
        before = score
        if opened:
            out.append([date, date])
        elif is_open and was_open and evidence > 0:
            out[-1][1] = date
    return [(a, b) for a, b in out]


def nightsignal_episodes(log: PersonLog, delta: float) -> list[tuple[int, int]]:
    nights = {d: v["overnight_rhr"] for d, v in log.days if d is not None and "overnight_rhr" in v}
    return [(a.alert_date, a.end_date) for a in red_alerts(nights, delta)]


def ordinary_life(log: PersonLog, seed: int) -> PersonLog:
    """A generated person's log with the rough edges real lives have: now and then a night several bpm up
    (a late dinner, a drink, a bad night), lazy days with half the steps, short nights and long lie-ins."""
    rng = random.Random(seed)
    days = []
    for date, values in log.days:
        if date is None:
            days.append((date, values))
            continue
        v = dict(values)
        if "overnight_rhr" in v and rng.random() < 0.08:
            v["overnight_rhr"] += rng.uniform(3.0, 10.0)
        if "day_rhr" in v and rng.random() < 0.08:
            v["day_rhr"] += rng.uniform(3.0, 10.0)
        if "daily_steps" in v and rng.random() < 0.12:
            v["daily_steps"] *= rng.uniform(0.2, 0.7)
        days.append((date, v))
    return replace(log, days=days)


# -- injection -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Injection:
    start: int  # date of the first raised night
    nights: int
    rise: float
    day_share: float
    steps_drop: float
    sleep_change: float
    hrv_drop: float
    seed: int


def draw_injection(rng: random.Random, start: int) -> Injection:
    return Injection(start, rng.randint(2, 6), rng.uniform(2.0, 8.0), rng.uniform(0.3, 1.0),
                     rng.uniform(0.2, 0.7), rng.choice((-1, 1)) * rng.uniform(30.0, 120.0),
                     rng.uniform(0.1, 0.3), rng.randrange(1 << 30))


def inject(log: PersonLog, inj: Injection) -> PersonLog:
    """The log with the illness written in: nights ``start…`` and the days before each following night."""
    jitter = random.Random(inj.seed)
    days = []
    for date, values in log.days:
        if date is None or not inj.start <= date < inj.start + inj.nights + 1:
            days.append((date, values))
            continue
        v = dict(values)
        k = date - inj.start
        if k < inj.nights and "overnight_rhr" in v:
            v["overnight_rhr"] += max(0.0, inj.rise + jitter.gauss(0.0, 1.0))
        if k >= 1:  # the day values of fused date d belong to day d - 1: ill from the first night on
            if "day_rhr" in v:
                v["day_rhr"] += max(0.0, inj.rise * inj.day_share + jitter.gauss(0.0, 1.0))
            if "daily_steps" in v:
                v["daily_steps"] *= 1.0 - inj.steps_drop
            if "sleep_duration" in v:
                v["sleep_duration"] += inj.sleep_change
            if "hrv" in v:
                v["hrv"] *= 1.0 - inj.hrv_drop
        days.append((date, v))
    return replace(log, days=days)


def injection_starts(log: PersonLog, spacing: int = 6, lead_in: int = 21) -> list[int]:
    """Healthy positions: ``lead_in`` days of data before, the whole signature and 3 days after healthy."""
    dates = log.dates
    if not dates:
        return []
    present = set(dates)
    first, last = dates[0], dates[-1]
    starts = []
    d = first + lead_in
    while d + 9 <= last:
        span = range(d, d + 10)
        if all(log.healthy(x) for x in span) and sum(x in present for x in span) >= 8:
            starts.append(d)
        d += spacing
    return starts


@dataclass(slots=True)
class Curves:
    """Per person and parameter set: healthy days, episodes on them per threshold, detections per threshold."""

    healthy_days: dict[str, int] = field(default_factory=dict)
    false_eps: dict[tuple, np.ndarray] = field(default_factory=dict)  # (person, key) -> episodes per threshold
    hits: dict[tuple, np.ndarray] = field(default_factory=dict)  # (person, key) -> detections per threshold
    trials: dict[str, int] = field(default_factory=dict)
    synthetic: set[str] = field(default_factory=set)  # generated people: their days do not count in burden


def _count_false(log: PersonLog, eps: list[tuple[int, int]]) -> int:
    return sum(1 for a, _ in eps if log.healthy(a))


def _hit(eps: list[tuple[int, int]], start: int) -> bool:
    return any(start <= a <= start + DETECT_WITHIN_DAYS for a, _ in eps)


def build_curves(logs: list[PersonLog], grid: Iterable[FusionParams] = PARAM_GRID, seeds: int = 2,
                 thresholds: tuple[float, ...] = THRESHOLDS) -> Curves:
    """Run every parameter set (and NightSignal, key ``"ns"``) on every person, clean and injected."""
    grid = list(grid)
    curves = Curves()
    for log in logs:
        curves.healthy_days[log.person] = sum(1 for d in log.dates if log.healthy(d))
        if log.synthetic:
            curves.synthetic.add(log.person)
        rng = random.Random(f"inject:{log.person}")
        injections = [draw_injection(rng, s) for s in injection_starts(log) for _ in range(seeds)]
        injected = [inject(log, inj) for inj in injections]
        curves.trials[log.person] = len(injections)
        for i, params in enumerate(grid):
            traj = trajectory(log, params)
            curves.false_eps[(log.person, i)] = np.array(
                [_count_false(log, episodes(traj, h)) for h in thresholds], dtype=float)
            hits = np.zeros(len(thresholds))
            for inj, ilog in zip(injections, injected):
                itraj = trajectory(ilog, params)
                hits += [_hit(episodes(itraj, h), inj.start) for h in thresholds]
            curves.hits[(log.person, i)] = hits
        curves.false_eps[(log.person, "ns")] = np.array(
            [_count_false(log, nightsignal_episodes(log, dl)) for dl in NS_DELTAS], dtype=float)
        curves.hits[(log.person, "ns")] = np.array(
            [sum(_hit(nightsignal_episodes(ilog, dl), inj.start) for inj, ilog in zip(injections, injected))
             for dl in NS_DELTAS], dtype=float)
    return curves


def curve(curves: Curves, people: list[str], key) -> tuple[np.ndarray, np.ndarray]:
    """``(sensitivity, burden per 30 healthy days)`` per threshold (or NightSignal delta) over ``people``.

    Sensitivity counts injections into everyone. Burden is the worse of two estimates: over everyone's
    healthy days (the generated people carry ordinary life's rough nights and lazy days, see
    :func:`ordinary_life`) and over the real people's alone (few days, but real lives).
    """
    real = [p for p in people if p not in curves.synthetic]
    trials = sum(curves.trials[p] for p in people)
    hits = sum(curves.hits[(p, key)] for p in people)

    def burden(group: list[str]) -> np.ndarray:
        healthy = sum(curves.healthy_days[p] for p in group)
        return 30.0 * sum(curves.false_eps[(p, key)] for p in group) / max(healthy, 1)

    worst = np.maximum(burden(people), burden(real)) if real else burden(people)
    return hits / max(trials, 1), worst


def allowed(params: FusionParams, thresholds: tuple[float, ...] = THRESHOLDS) -> np.ndarray:
    """Thresholds a parameter set may use: above one signal's daily cap, so one signal on one day never
    alerts (a single signal needs strong evidence over two days or more; several signals may combine).
    A rule of the product, not a tuned value."""
    return np.array([h > params.cap_main for h in thresholds])


def at_burden(sens: np.ndarray, burden: np.ndarray, target: float, ok_mask: np.ndarray | None = None) -> int:
    """Index of the lowest threshold from which on the burden stays at or below ``target`` (the operating
    point that alerts most within that budget); the highest threshold if none."""
    n = len(sens)
    best = n - 1
    for i in range(n - 1, -1, -1):
        if burden[i] > target + 1e-9:
            break
        if ok_mask is None or ok_mask[i]:
            best = i
    return best


def choose(curves: Curves, people: list[str], grid: list[FusionParams] = list(PARAM_GRID),
           target: float = TARGET_BURDENS["standard"]) -> tuple[int, int]:
    """``(parameter index, threshold index)`` with the best injected sensitivity at burden ≤ ``target`` on
    ``people`` (ties: lower burden, then the earlier, simpler parameter set)."""
    best = None
    for i in range(len(grid)):
        sens, burden = curve(curves, people, i)
        j = at_burden(sens, burden, target, allowed(grid[i]))
        key = (sens[j], -burden[j], -i)
        if best is None or key > best[0]:
            best = (key, i, j)
    return best[1], best[2]


def leave_one_out(people: list[str], choose_fn: Callable[[list[str]], object],
                  score_fn: Callable[[str, object], dict]) -> dict[str, dict]:
    """For each person: choose on the others only, then score that person with the choice."""
    out = {}
    for held_out in people:
        training = [p for p in people if p != held_out]
        out[held_out] = score_fn(held_out, choose_fn(training))
    return out
