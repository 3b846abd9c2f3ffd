"""Evidence fusion: one daily evidence per person from every signal the person has, accumulated over days.

Each local day, every signal with a value (overnight resting HR, daytime resting HR, steps while the watch
is worn, sleep, HRV, device resting HR, SpO2, temperature, respiratory rate) is compared with its own robust
28-day baseline (median and IQR, as everywhere in the detector). Its robust z in the worrying direction
becomes a log-likelihood ratio of "shifted by ``shift`` SDs" against "ordinary":

    llr = shift * z - shift**2 / 2        (Gaussian shift alternative)

clipped to ``[-negative_cap, cap]``: the cap keeps one signal from carrying an alert alone in one day (a
single signal needs strong evidence over several days), the negative cap keeps one ordinary signal from
wiping out what the others say. From the third day running that a physiological signal is at its cap,
ordinary supporting signals (steps, daytime heart rate) no longer count against it: a strong rise alerts
on its own within a few nights. Signals of one group (overnight and device resting HR measure the same
thing) count once, by their strongest member. The day's evidence is the sum; a CuSum (Page 1954; as the
online CuSum over resting-HR residuals of Mishra et al. 2020) accumulates it::

    S = max(0, S + evidence)

An alert episode opens when ``S`` crosses the operating threshold (the insurer's choice, see
``operating_points``) and ends on the first day without evidence for it (see :func:`episode_step`). How ``S``
moves does not depend on the threshold (baselines learn by a fixed rule), so one run over a history gives
the whole operating curve, and changing the threshold never invalidates stored state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from streaming.detection.baseline import Baseline
from streaming.events import ALERT, COMBINED, HEALTH, AnomalyEvent

FEATURE = "combined"
STRONG_DAYS = 3
"""Days running a physiological signal must be at its cap before ordinary supporting signals stop counting
against it (a product rule: a strong, lasting rise alerts on its own)."""
QUIET_FACTOR = 3.0
"""While a care agent's false-alarm verdict is in force, an alert needs this many times the evidence."""
# Vital signs whose change makes a combined alert critical; the event then names that metric.
VITAL_METRICS = ("spo2", "body_temperature", "respiratory_rate")


@dataclass(frozen=True, slots=True)
class Measure:
    """How a change in a metric is measured, the same for its fusion signal and its daily feature.

    ``direction`` +1 a rise is worrying, -1 a fall, 0 either; ``scale_floor`` the smallest spread a baseline
    may assume; ``unit`` the metric's unit in reasons; ``log`` compares on a log scale (counts and ratios,
    whose spread grows with the level).
    """

    direction: int
    scale_floor: float
    unit: str
    log: bool = False


MEASURES: dict[str, Measure] = {
    "heart_rate": Measure(+1, 1.5, "bpm"),
    "resting_heart_rate": Measure(+1, 1.5, "bpm"),
    "steps": Measure(-1, 0.25, "steps", log=True),
    "sleep": Measure(0, 20.0, "min"),
    "hrv_rmssd": Measure(-1, 0.1, "ms", log=True),
    "spo2": Measure(-1, 0.5, "%"),
    "blood_pressure": Measure(+1, 3.0, "mmHg"),
    "glucose": Measure(+1, 5.0, "mg/dL"),
    "body_temperature": Measure(+1, 0.15, "°C"),
    "respiratory_rate": Measure(+1, 0.5, "/min"),
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One input of the fusion, measured as its metric's :class:`Measure` says.

    ``min_change`` is the smallest change (unit, or fraction if the measure is ``log``) that may count as
    evidence for; ``main`` signals use the larger caps (physiology measured at rest), the others (daytime HR,
    behaviour) the smaller ones; ``body`` is false for behaviour (steps, sleep): behaviour adds to the
    evidence but never makes an alert without a change in the body (a lazy week is no illness).
    """

    name: str
    metric: str
    min_change: float
    main: bool
    group: str = ""
    body: bool = True

    @property
    def measure(self) -> Measure:
        return MEASURES[self.metric]


SIGNALS: tuple[Signal, ...] = (
    Signal("overnight_rhr", "heart_rate", 2.0, True, group="rhr"),
    Signal("device_rhr", "resting_heart_rate", 2.0, True, group="rhr"),
    Signal("day_rhr", "heart_rate", 2.0, False),
    Signal("daily_steps", "steps", 0.2, False, body=False),
    Signal("sleep_duration", "sleep", 45.0, False, body=False),
    Signal("hrv", "hrv_rmssd", 0.1, False),
    Signal("spo2", "spo2", 1.0, True),
    Signal("body_temperature", "body_temperature", 0.3, True),
    Signal("respiratory_rate", "respiratory_rate", 1.0, True),
)
BY_NAME = {s.name: s for s in SIGNALS}


@dataclass(frozen=True, slots=True)
class FusionParams:
    """Tunables of the fusion; chosen by ``beidou evaluate``'s procedure (injected illnesses, leave-one-out)."""

    shift: float = 2.0
    """Assumed illness shift in robust SDs (the LLR's alternative)."""
    cap_main: float = 2.5
    """Most evidence one physiological signal gives in a day."""
    cap_support: float = 2.0
    """Most evidence a behavioural signal (steps, sleep) or daytime resting HR gives in a day."""
    negative_cap: float = 2.0
    """Most evidence *against* one physiological signal gives in a day."""
    negative_cap_support: float = 1.0
    """Most evidence *against* a supporting signal gives in a day: ordinary steps or daytime heart rate do
    not rule an infection out the way an ordinary night does."""
    learn_gate: float = 2.0
    """While ``S`` is at or above this, the day's values are not learned, nor is a value whose own evidence
    reaches it (never learn from a suspect day)..."""
    max_unlearned_days: int = 7
    """...unless that has lasted this many days: a lasting change becomes the new usual."""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}


def llr(signal: Signal, value: float, median: float, scale: float, params: FusionParams) -> tuple[float, float]:
    """``(evidence, signed change)`` of one value against its baseline (change in the compared scale)."""
    delta = value - median
    z = delta / scale
    direction = signal.measure.direction
    if direction:
        bad_z, bad_delta = z * direction, delta * direction
    else:
        bad_z, bad_delta = abs(z), abs(delta)
    e = params.shift * bad_z - params.shift * params.shift / 2.0
    cap = params.cap_main if signal.main else params.cap_support
    floor = params.negative_cap if signal.main else params.negative_cap_support
    if e > 0 and bad_delta < signal.min_change:
        e = 0.0  # unusual for this person but too small to matter to anyone
    return max(-floor, min(cap, e)), delta


def episode_step(is_open: bool, before: float, score: float, evidence: float, threshold: float,
                 body: bool = True) -> tuple[bool, bool]:
    """``(open after today, opened today)``: the one episode rule, used online and by the evaluator.

    An episode opens when the accumulated evidence *crosses* the threshold (from ``before`` to ``score``)
    and ends on the first day whose evidence is not for it; evidence that stays above the threshold after
    that does not open a second episode for the same change: it must fall below and cross again. ``body``
    says whether the evidence so far includes a change in the body (not only behaviour).
    """
    if not is_open:
        return (True, True) if score >= threshold > before and body else (False, False)
    if evidence <= 0.0:
        return False, False
    return True, False


class Fusion:
    """The fused evidence of one person (state: a baseline per signal, the CuSum and the open episode)."""

    __slots__ = ("params", "threshold", "window", "warmup", "bases", "score", "run_start", "run", "open",
                 "opened_at", "episode_start", "end", "unlearned", "quiet_until", "finished", "last_evidence",
                 "last_total", "streak")

    def __init__(self, params: FusionParams, threshold: float, window: int = 28, warmup: int = 14):
        self.params = params
        self.threshold = threshold
        self.window = window
        self.warmup = warmup
        self.bases: dict[str, Baseline] = {}
        self.score = 0.0
        self.run_start: float | None = None  # start of the first day of the current run of evidence (S > 0)
        self.run: dict[str, list] = {}  # signal -> [days for, last value, last baseline, last change]
        self.open = False
        self.opened_at: float | None = None
        self.episode_start = 0.0
        self.end = 0.0
        self.unlearned = 0
        self.quiet_until = -math.inf
        self.finished: list[AnomalyEvent] = []  # drained by the caller; not persisted
        self.last_evidence: dict[str, float] = {}  # the last day's evidence per signal (tests, the evaluator)
        self.last_total: float | None = None  # the last day's summed evidence; None when no signal was ready
        self.streak = 0  # days running with a physiological signal at its cap

    def close_day(self, start: float, end: float, values: dict[str, float]) -> list[AnomalyEvent]:
        """Add one local day's values (signal -> value in its unit); returns an event when an alert opens."""
        params = self.params
        per_signal: dict[str, float] = {}
        groups: dict[str, float] = {}
        scored: list[tuple[Signal, float, float, float]] = []
        for name, value in values.items():
            signal = BY_NAME.get(name)
            if signal is None or value is None:
                continue
            x = math.log1p(max(value, 0.0)) if signal.measure.log else value
            base = self.bases.get(name)
            if base is None:
                base = self.bases[name] = Baseline(self.window, self.warmup, signal.measure.scale_floor)
            if not base.ready:
                base.learn_one(x)
                continue
            e, delta = llr(signal, x, base.median, base.scale, params)
            per_signal[name] = e
            key = signal.group or name
            groups[key] = e if key not in groups else max(groups[key], e)
            scored.append((signal, x, base.median, e))
        self.last_evidence = per_signal
        self.last_total = None
        if not scored:
            return []  # no signal ready today: nothing for or against
        at_cap = any(sig.main and e >= params.cap_main for sig, _x, _m, e in scored)
        self.streak = self.streak + 1 if at_cap else 0
        if self.streak >= STRONG_DAYS:
            # A physiological signal at its cap days running is strong evidence on its own: ordinary
            # steps or an ordinary daytime heart rate do not argue against it (they may still add to it).
            for signal, *_rest in scored:
                key = signal.group or signal.name
                if not signal.main and groups.get(key, 0.0) < 0.0:
                    groups[key] = 0.0
        evidence = self.last_total = sum(groups.values())
        before = self.score
        self.score = max(0.0, before + evidence)
        if before == 0.0 and self.score > 0.0:
            self.run_start, self.run = start, {}
        elif self.score == 0.0:
            self.run_start, self.run = None, {}
        for signal, x, median, e in scored:
            if e > 0 and self.score > 0.0:
                self._note(signal, x, median)
        # Never learn from a suspect day, unless it has gone on so long that it is the new usual.
        release = self.unlearned >= params.max_unlearned_days
        suspect = self.score >= params.learn_gate and not release
        self.unlearned = self.unlearned + 1 if suspect else 0
        if not suspect:
            for signal, x, _median, e in scored:
                if e < params.learn_gate or release:  # a clearly raised value stays out on its own too
                    self.bases[signal.name].learn_one(x)
        threshold = self.threshold * (QUIET_FACTOR if end < self.quiet_until else 1.0)
        was_open = self.open
        self.open, opened = episode_step(self.open, before, self.score, evidence, threshold, self.body_evidence)
        if was_open and not self.open:
            self._finish()
        if self.open:
            if opened:
                self.opened_at = end
                self.episode_start = self.run_start if self.run_start is not None else start
            if evidence > 0 or opened:
                self.end = end
        if opened:
            return [self._event(self.opened_at)]
        return []

    @property
    def body_evidence(self) -> bool:
        """Whether the current run of evidence includes a change in the body (not only behaviour)."""
        return any(BY_NAME[name].body for name in self.run)

    def _note(self, signal: Signal, x: float, median: float) -> None:
        value, base = (math.expm1(x), math.expm1(median)) if signal.measure.log else (x, median)
        entry = self.run.get(signal.name)
        days = entry[0] + 1 if entry else 1
        self.run[signal.name] = [days, round(value, 2), round(base, 2), round(value - base, 2)]

    # -- episodes ---------------------------------------------------------------------------------------
    def _event(self, alert_at: float | None) -> AnomalyEvent:
        signals = self.details_signals()
        lead = max(signals, key=lambda s: (s["metric"] in VITAL_METRICS, BY_NAME[s["signal"]].main, s["days"])
                   ) if signals else None
        metric = lead["metric"] if lead else "heart_rate"
        details = {"signals": signals, "score": round(self.score, 2), "threshold": round(self.threshold, 2)}
        return AnomalyEvent("", HEALTH, FEATURE, metric, ALERT, self.episode_start, self.end,
                            lead["value"] if lead else None, lead["baseline"] if lead else None,
                            render_english(signals), reason_code=COMBINED, details=details, alert_at=alert_at)

    def details_signals(self) -> list[dict]:
        out = []
        for signal in SIGNALS:  # a fixed order reads the same every time
            entry = self.run.get(signal.name)
            if entry is None:
                continue
            days, value, base, change = entry
            out.append({"signal": signal.name, "metric": signal.metric, "value": value, "baseline": base,
                        "change": change, "unit": signal.measure.unit, "days": days,
                        "direction": "up" if change >= 0 else "down"})
        return out

    def _finish(self) -> None:
        self.finished.append(self._event(self.opened_at))
        self.opened_at = None

    def snapshot(self) -> AnomalyEvent | None:
        return self._event(self.opened_at) if self.open else None

    def close(self) -> None:
        """A data gap: the evidence cannot go on across it."""
        if self.open:
            self._finish()
        self.open = False
        self.score = 0.0
        self.streak = 0
        self.run_start, self.run = None, {}

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.bases.pop(name, None)
            self.run.pop(name, None)

    def start_probation(self, values: int) -> None:
        for base in self.bases.values():
            base.start_probation(values)

    def apply_false_alarm(self, until: float) -> None:
        self.quiet_until = max(self.quiet_until, until)
        self.close()

    # -- state ------------------------------------------------------------------------------------------
    def to_state(self) -> list:
        return [[[name, b.to_state()] for name, b in self.bases.items()], self.score, self.run_start,
                [[k, v] for k, v in self.run.items()], self.open, self.opened_at, self.episode_start, self.end,
                self.unlearned, self.quiet_until, self.streak]

    def load_state(self, st: list) -> None:
        bases, self.score, self.run_start, run, self.open, self.opened_at, self.episode_start, self.end = st[:8]
        self.unlearned, self.quiet_until, self.streak = st[8:]
        self.bases = {name: Baseline.from_state(b, window=self.window, warmup=self.warmup,
                                                scale_floor=BY_NAME[name].measure.scale_floor) for name, b in bases}
        self.run = {k: v for k, v in run}

    def state_sizes(self, encode) -> dict[str, int]:
        """Bytes of each signal's baseline (plus its share of the shared part), for the cost benchmark."""
        shared = len(encode([self.score, self.run_start, self.open, self.opened_at, self.episode_start,
                             self.end, self.unlearned, self.quiet_until]))
        return {f"fusion:{name}": len(encode(b.to_state())) + shared for name, b in self.bases.items()}


def _days(n: int, night: bool) -> str:
    word = "night" if night else "day"
    return f"{n} {word}{'s' if n != 1 else ''}"


def render_english(signals: list[dict]) -> str:
    """The English sentence of a combined reason (the fallback wherever no translation applies)."""
    parts = []
    for s in signals:
        name, change, days = s["signal"], s["change"], s["days"]
        if name == "overnight_rhr":
            parts.append(f"overnight resting HR {change:+.0f} bpm for {_days(days, True)} "
                         f"({s['value']:.0f} vs your usual {s['baseline']:.0f})")
        elif name == "day_rhr":
            parts.append(f"daytime resting HR {change:+.0f} bpm ({_days(days, False)})")
        elif name == "device_rhr":
            parts.append(f"device resting HR {change:+.0f} bpm ({_days(days, False)})")
        elif name == "daily_steps":
            pct = 100 * (1 - s["value"] / s["baseline"]) if s["baseline"] else 0
            parts.append(f"{pct:.0f}% fewer steps ({_days(days, False)})")
        elif name == "sleep_duration":
            parts.append(f"sleep {change / 60:+.1f} h ({_days(days, False)})")
        elif name == "hrv":
            pct = 100 * (s["value"] / s["baseline"] - 1) if s["baseline"] else 0
            parts.append(f"HRV {pct:+.0f}% ({_days(days, False)})")
        else:
            label = {"spo2": "SpO2", "body_temperature": "temperature", "respiratory_rate": "respiratory rate"}
            parts.append(f"{label.get(name, name)} {change:+.1f} {s['unit']} ({_days(days, False)})")
    return "several changes together: " + ", ".join(parts) if len(parts) > 1 else (
        "a clear change: " + parts[0] if parts else "several small changes together")
