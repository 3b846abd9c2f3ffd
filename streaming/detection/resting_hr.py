"""Overnight resting heart rate, the main signal, corroborated by resting heart rate during the day.

Infections raise resting heart rate, first and most reliably at night (Mishra 2020, NightSignal). A reading
counts as *at rest* when no steps were taken in the 12 minutes before it; the overnight value is the mean
at-rest heart rate between midnight and 7 am local time, the daytime value the same between 9 am and 9 pm.
Each has its own 28-value baseline.

An alert needs the rise to persist over two resting windows in a row: two nights, or a night and the day
after it. The night anchors every episode; a daytime window can confirm a night but never opens one,
because daytime heart rate also answers to posture, coffee and stress. A day with clearly more steps than
usual is not assessed at all, nor is the night after a day of twice the usual steps: exercise keeps the
heart rate up for hours and says nothing about illness.
"""
from __future__ import annotations

import math

from streaming.detection.baseline import Baseline
from streaming.detection.config import DetectorConfig
from streaming.detection.episodes import Episode, EpisodeTracker, Window, classify, judge, learn_unflagged
from streaming.events import DATA_GAP, NIGHTS_MISSING, WATCH, AnomalyEvent

FEATURE = "overnight_rhr"
METRIC = "heart_rate"
DERIVED_FROM = ("heart_rate", "steps")

_NEG_INF = -math.inf


class _Mean:
    """Mean of readings plus the number of distinct minutes they cover (coverage, independent of rate)."""

    __slots__ = ("total", "n", "minutes", "last_minute")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.n = 0
        self.minutes = 0
        self.last_minute = -1

    def to_state(self) -> list:
        return [self.total, self.n, self.minutes, self.last_minute]

    def load(self, st: list) -> None:
        self.total, self.n, self.minutes, self.last_minute = st


class RestingHeartRate:
    """The ``overnight_rhr`` feature of one person."""

    __slots__ = ("cfg", "night", "day", "night_base", "day_base", "last_night", "last_night_learned", "tracker",
                 "quiet_until", "worn_by_day", "missing_nights", "missing_since", "missing_told", "steps_ratio",
                 "steps_used", "after_big_day", "night_value", "day_value")

    def __init__(self, cfg: DetectorConfig):
        self.cfg = cfg
        self.night = _Mean()
        self.day = _Mean()
        self.night_base = Baseline(cfg.baseline_window, cfg.warmup, cfg.hr_scale_floor)
        self.day_base = Baseline(cfg.baseline_window, cfg.warmup, cfg.hr_scale_floor)
        self.last_night: Window | None = None
        # Alerts come from the evidence fusion (several signals together); on its own this feature says "watch".
        self.tracker = EpisodeTracker(FEATURE, METRIC, max_tier=WATCH)
        self.quiet_until = _NEG_INF  # a care agent's false-alarm verdict desensitises until then
        self.worn_by_day = False  # heart rate seen since the last night closed
        self.missing_nights = 0
        self.missing_since = 0.0
        self.missing_told = _NEG_INF  # when the person was last told their nights are missing
        self.steps_ratio: float | None = None  # yesterday's steps / usual, for the reason sentence
        self.steps_used = False  # whether steps data shaped this state (consent for steps then covers it)
        self.after_big_day = False  # the coming night follows a day of far more steps than usual
        self.last_night_learned = False  # last_night went into the baseline (an alert may take it back)
        self.night_value: tuple[int, float] | None = None  # (date, value) of the last assessed night, for fusion
        self.day_value: float | None = None  # today's assessed daytime resting value, for fusion

    # -- per reading: keep these cheap ------------------------------------------------------------------
    def add_heart_rate(self, ts: float, bpm: float, in_night: bool, in_day: bool, steps_known: bool,
                       at_rest: bool) -> None:
        """Take one reading; ``at_rest`` means no steps in the last minutes, ``steps_known`` that steps come."""
        if in_night:
            # Without a steps stream a night reading is taken as rest: most of the night is.
            if steps_known and not at_rest:
                return
            acc = self.night
        else:
            self.worn_by_day = True
            if not (in_day and steps_known and at_rest):
                return
            acc = self.day
        acc.total += bpm
        acc.n += 1
        minute = int(ts // 60.0)
        if minute != acc.last_minute:
            acc.minutes += 1
            acc.last_minute = minute

    # -- at window boundaries ---------------------------------------------------------------------------
    def close_night(self, date: int, start: float, end: float) -> list[AnomalyEvent]:
        acc = self.night
        covered = acc.minutes >= self.cfg.min_night_minutes
        value = acc.total / acc.n if covered else 0.0
        acc.reset()
        worn_by_day, self.worn_by_day = self.worn_by_day, False
        if not covered:
            return self._missing_night(start, end, worn_by_day)
        self.missing_nights = 0
        self.night_value = None if self.after_big_day else (date, value)
        if self.after_big_day:
            # A long run or a hike keeps the heart rate up into the night: neither judge nor learn it.
            self.after_big_day = False
            self.last_night = None
            self.last_night_learned = False
            return []
        score = self.night_base.score_or_learn(value)
        if score is None:
            self.last_night = None
            self.last_night_learned = False
            return []
        window, events, flagged = self._judge("night", date, start, end, score, partner_date=date - 1)
        self.last_night_learned = learn_unflagged(self.tracker, self.night_base, value, flagged)
        self.last_night = window
        return events

    def close_day(self, date: int, start: float, end: float, steps_z: float | None,
                  steps_ratio: float | None) -> list[AnomalyEvent]:
        """Score the day's resting window; ``steps_z`` is the day's steps vs usual (log scale, signed)."""
        acc = self.day
        covered = acc.minutes >= self.cfg.min_day_minutes
        value = acc.total / acc.n if covered else 0.0
        acc.reset()
        self.steps_ratio = steps_ratio
        self.after_big_day = steps_ratio is not None and steps_ratio >= self.cfg.night_activity_gate_ratio
        self.day_value = None
        if not covered or (steps_z is not None and steps_z > self.cfg.activity_gate_z):
            return []
        self.day_value = value
        score = self.day_base.score_or_learn(value)
        if score is None:
            return []
        _, events, flagged = self._judge("day", date, start, end, score, partner_date=date)
        if not flagged:
            self.day_base.learn_one(value)
            if self.tracker.open is not None and date > self.tracker.open.last_date:
                self.tracker.close()
        return events

    def _judge(self, kind: str, date: int, start: float, end: float, score,
               partner_date: int) -> tuple[Window, list[AnomalyEvent], bool]:
        """Judge a night or day window, with the last night as its partner if that night was ``partner_date``;
        only a night may open a watch. A partner that confirms an alert is taken back out of the baseline.
        Returns the window, the events and whether the window was flagged."""
        window = self._window(kind, date, start, end, score)
        partners = [self.last_night] if self.last_night is not None and self.last_night.date == partner_date else []
        events, flagged, partner = judge(self.tracker, window, partners, opens_watch=kind == "night",
                                         reason=self._reason, combined_z=self.cfg.alert_combined_z + self._boost(end),
                                         strong_change=self.cfg.strong_bpm)
        if partner is not None:
            self._take_back_last_night()
        return window, events, flagged

    def _window(self, kind: str, date: int, start: float, end: float, score) -> Window:
        cfg = self.cfg
        boost = self._boost(end)
        bad_z, bad_change, candidate, strong = classify(
            score, +1, candidate_z=cfg.candidate_z + boost, candidate_change=cfg.candidate_bpm,
            strong_z=cfg.strong_z + boost, strong_change=cfg.strong_bpm)
        return Window(kind, date, start, end, score, bad_z, bad_change, candidate, strong)

    def _take_back_last_night(self) -> None:
        # The night that confirmed an alert is part of the episode: it must not stay in the baseline.
        if self.last_night_learned:
            self.night_base.forget_last()
            self.last_night_learned = False

    def _boost(self, end: float) -> float:
        """Extra z a window needs while a care agent's false-alarm verdict is in force."""
        return self.cfg.false_alarm_z if end < self.quiet_until else 0.0

    def _missing_night(self, start: float, end: float, worn_by_day: bool) -> list[AnomalyEvent]:
        # Only a night missing while the device was worn by day says "not worn at night"; a night inside a
        # whole-device gap is the gap's business.
        if not worn_by_day:
            self.missing_nights = 0
            return []
        if self.missing_nights == 0:
            self.missing_since = start
        self.missing_nights += 1
        if self.missing_nights != self.cfg.missing_nights:
            return []
        if end - self.missing_told < self.cfg.missing_nights_repeat_days * 86400.0:
            return []  # said recently: the watch comes off most nights, saying it every few days is noise
        self.missing_told = end
        reason = (f"too little overnight heart rate for {self.missing_nights} nights while the device sent data "
                  f"by day; the overnight check is paused until it is worn at night")
        event = AnomalyEvent("", DATA_GAP, FEATURE, METRIC, WATCH, self.missing_since, end, None, None, reason,
                             reason_code=NIGHTS_MISSING, details={"nights": self.missing_nights})
        self.tracker.finished.append(event)
        return [event]

    def _reason(self, ep: Episode, window: Window, partner: Window | None) -> tuple[str, dict]:
        v, b = round(window.score.value), round(window.score.median)
        if window.kind == "night":
            text = f"overnight resting HR {v} bpm vs your {self.night_base.count}-night baseline {b} ({v - b:+d})"
            text += f", {ep.nights} nights running" if ep.nights > 1 else ", one night so far"
            when = "the day before"
        elif partner is not None:
            pv, pb = round(partner.score.value), round(partner.score.median)
            text = (f"resting HR up overnight ({pv} vs your usual {pb} bpm, {pv - pb:+d}) and at rest by day "
                    f"({v} vs {b} bpm, {v - b:+d})")
            when = "that day"
        else:
            nights = f"{ep.nights} raised night{'s' if ep.nights != 1 else ''}"
            text = f"daytime resting HR {v} bpm vs your usual {b} ({v - b:+d}), after {nights}"
            when = "that day"
        if self.steps_ratio is not None and self.steps_ratio <= 0.7:
            text += f"; {100 * (1 - self.steps_ratio):.0f}% fewer steps than usual {when}"
        signal = "overnight_rhr" if window.kind == "night" else "day_rhr"
        days = ep.nights if window.kind == "night" else max(ep.days, 1)
        details = {"signals": [{"signal": signal, "metric": METRIC, "value": round(window.score.value, 1),
                                "baseline": round(window.score.median, 1), "change": round(window.score.delta, 1),
                                "unit": "bpm", "days": days, "direction": "up" if window.score.delta >= 0 else "down"}]}
        return text, details

    # -- life cycle -------------------------------------------------------------------------------------
    def on_gap(self, long_gap: bool) -> None:
        """No data for a while: the episode cannot go on, and after a long gap the baselines may be stale."""
        self.tracker.close()
        self.last_night = None
        self.last_night_learned = False
        self.missing_nights = 0
        if long_gap:
            self.night_base.start_probation(self.cfg.rewarm_values)
            self.day_base.start_probation(self.cfg.rewarm_values)

    def apply_false_alarm(self, until: float) -> None:
        self.quiet_until = max(self.quiet_until, until)
        self.tracker.close()

    def to_state(self) -> list:
        return [self.night.to_state(), self.day.to_state(), self.night_base.to_state(), self.day_base.to_state(),
                self.last_night.to_state() if self.last_night is not None else None,
                self.tracker.to_state(), self.quiet_until, self.worn_by_day, self.missing_nights,
                self.missing_since, self.missing_told, self.steps_ratio, self.steps_used, self.after_big_day,
                self.last_night_learned, list(self.night_value) if self.night_value else None, self.day_value]

    @classmethod
    def from_state(cls, cfg: DetectorConfig, st: list) -> RestingHeartRate:
        f = cls(cfg)
        night, day, night_base, day_base, last_night, tracker = st[:6]
        (f.quiet_until, f.worn_by_day, f.missing_nights, f.missing_since, f.missing_told, f.steps_ratio,
         f.steps_used, f.after_big_day, f.last_night_learned, night_value, f.day_value) = st[6:]
        f.night_value = tuple(night_value) if night_value else None
        f.night.load(night)
        f.day.load(day)
        kw = dict(window=cfg.baseline_window, warmup=cfg.warmup, scale_floor=cfg.hr_scale_floor)
        f.night_base = Baseline.from_state(night_base, **kw)
        f.day_base = Baseline.from_state(day_base, **kw)
        f.last_night = Window.from_state(last_night) if last_night is not None else None
        f.tracker.load_state(tracker)
        return f
