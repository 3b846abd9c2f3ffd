"""Daily features of the other metrics: one value per local day against a 28-day personal baseline.

Steps, device resting heart rate, HRV, sleep, SpO2, blood pressure, glucose, body temperature and
respiratory rate each become one number per day (see :data:`~streaming.detection.config.DEFAULT_DAILY`).
The same rule as for heart rate applies: two unusual days in a row, one of them clearly so, make an alert;
a single clear day a watch where the feature allows it.
"""
from __future__ import annotations

import math

from streaming.detection.baseline import Baseline
from streaming.detection.config import DailySpec, DetectorConfig
from streaming.detection.episodes import Episode, EpisodeTracker, Window, classify, judge, learn_unflagged
from streaming.events import AnomalyEvent

_NEG_INF = -math.inf
# A candidate (confirming) change needs three quarters of the change that counts on its own, as for heart
# rate (+3 vs +4 bpm).
_CANDIDATE_SHARE = 0.75


def _combine(aggregate: str, acc: float | None, x: float) -> float:
    if acc is None:
        return x
    if aggregate == "max":
        return x if x > acc else acc
    if aggregate == "min":
        return x if x < acc else acc
    return acc + x  # "sum" and "mean" both keep a running total


class DailyFeature:
    """One daily feature of one person."""

    __slots__ = ("spec", "cfg", "acc", "n", "next_acc", "next_n", "base", "last_day", "last_day_learned",
                 "tracker", "quiet_until", "last_z", "last_ratio", "last_value", "_strong_change")

    def __init__(self, spec: DailySpec, cfg: DetectorConfig):
        self.spec = spec
        self.cfg = cfg
        self.acc: float | None = None
        self.n = 0
        self.next_acc: float | None = None  # readings that belong to tomorrow (an evening's sleep session)
        self.next_n = 0
        self.base = Baseline(cfg.baseline_window, cfg.warmup, spec.scale_floor)
        self.last_day: Window | None = None
        self.last_day_learned = False  # last_day went into the baseline (an alert may take it back)
        self.tracker = EpisodeTracker(spec.feature, spec.metric, spec.max_tier, log=spec.log)
        self.quiet_until = _NEG_INF
        self.last_z: float | None = None  # today's signed z, read by the heart-rate feature's activity gate
        self.last_ratio: float | None = None
        self.last_value: float | None = None  # today's value in the feature's unit, for the evidence fusion
        if spec.log:
            # A fall of 50 % is log(0.5); a rise of 50 % is log(1.5).
            self._strong_change = (-math.log(1.0 - spec.min_change) if spec.direction < 0
                                   else math.log(1.0 + spec.min_change))
        else:
            self._strong_change = spec.min_change

    def add(self, x: float, tomorrow: bool = False) -> None:
        if tomorrow:
            self.next_acc = _combine(self.spec.aggregate, self.next_acc, x)
            self.next_n += 1
        else:
            self.acc = _combine(self.spec.aggregate, self.acc, x)
            self.n += 1

    def close_day(self, date: int, start: float, end: float, hours_seen: int) -> list[AnomalyEvent]:
        spec = self.spec
        acc, n = self.acc, self.n
        self.acc, self.n, self.next_acc, self.next_n = self.next_acc, self.next_n, None, 0
        self.last_z = self.last_ratio = self.last_value = None
        if n == 0 or hours_seen < spec.min_hours:
            return []
        value = acc / n if spec.aggregate == "mean" else acc
        self.last_value = value
        x = math.log1p(max(value, 0.0)) if spec.log else value
        score = self.base.score_or_learn(x)
        if score is None:
            self.last_day = None
            self.last_day_learned = False
            return []
        self.last_z = score.z
        self.last_ratio = math.expm1(x) / math.expm1(score.median) if spec.log and score.median > 0 else None
        boost = self.cfg.false_alarm_z if end < self.quiet_until else 0.0
        bad_z, bad_change, candidate, strong = classify(
            score, spec.direction, candidate_z=self.cfg.candidate_z + boost,
            candidate_change=_CANDIDATE_SHARE * self._strong_change,
            strong_z=self.cfg.strong_z + boost, strong_change=self._strong_change)
        window = Window("day", date, start, end, score, bad_z, bad_change, candidate, strong)
        partners = [self.last_day] if self.last_day is not None and self.last_day.date == date - 1 else []
        events, flagged, partner = judge(self.tracker, window, partners, opens_watch=spec.single_day_watch,
                                         combined_z=self.cfg.alert_combined_z + boost,
                                         strong_change=self._strong_change, reason=self._reason)
        if partner is not None and self.last_day_learned:
            self.base.forget_last()  # the day that confirmed an alert is part of the episode
        self.last_day_learned = learn_unflagged(self.tracker, self.base, x, flagged)
        self.last_day = window
        return events

    def _natural(self, x: float) -> float:
        return math.expm1(x) if self.spec.log else x

    def _reason(self, ep: Episode, window: Window, partner: Window | None) -> str:
        spec = self.spec
        value = self._natural(window.score.value)
        base = self._natural(window.score.median)
        if spec.log and base > 0:
            change = f"{100 * (value / base - 1):+.0f}%"
        else:
            change = f"{value - base:+.{_decimals(spec.unit)}f}"
        d = _decimals(spec.unit)
        text = (f"{spec.label} {value:,.{d}f} {spec.unit} vs your {self.base.count}-day baseline "
                f"{base:,.{d}f} ({change})")
        days = ep.days
        details = {"signals": [{"signal": spec.feature, "metric": spec.metric, "value": round(value, 2),
                                "baseline": round(base, 2), "change": round(value - base, 2), "unit": spec.unit,
                                "days": days, "direction": "up" if value >= base else "down"}]}
        return text + (f", {days} days running" if days > 1 else ", one day so far"), details

    def on_gap(self, long_gap: bool) -> None:
        self.tracker.close()
        self.last_day = None
        self.last_day_learned = False
        if long_gap:
            self.base.start_probation(self.cfg.rewarm_values)

    def apply_false_alarm(self, until: float) -> None:
        self.quiet_until = max(self.quiet_until, until)
        self.tracker.close()

    def to_state(self) -> list:
        return [self.acc, self.n, self.next_acc, self.next_n, self.base.to_state(),
                self.last_day.to_state() if self.last_day is not None else None, self.last_day_learned,
                self.tracker.to_state(), self.quiet_until, self.last_z, self.last_ratio]

    @classmethod
    def from_state(cls, spec: DailySpec, cfg: DetectorConfig, st: list) -> DailyFeature:
        f = cls(spec, cfg)
        (f.acc, f.n, f.next_acc, f.next_n, base, last_day, f.last_day_learned, tracker, f.quiet_until, f.last_z,
         f.last_ratio) = st
        f.base = Baseline.from_state(base, window=cfg.baseline_window, warmup=cfg.warmup,
                                     scale_floor=spec.scale_floor)
        f.last_day = Window.from_state(last_day) if last_day is not None else None
        f.tracker.load_state(tracker)
        return f


def _decimals(unit: str) -> int:
    """Temperatures need a decimal to say anything; the other units read best as whole numbers."""
    return 1 if unit == "°C" else 0
