"""One person's detector: routes readings to features, keeps the local clock, and reports data gaps."""
from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from streaming.detection import state as state_codec
from streaming.detection.clock import DayBounds, LocalCalendar
from streaming.detection.config import DetectorConfig
from streaming.detection.daily import DailyFeature
from streaming.detection.fusion import FEATURE as FUSED_FEATURE
from streaming.detection.fusion import SIGNALS as FUSED_SIGNALS
from streaming.detection.fusion import Fusion
from streaming.detection.resting_hr import DERIVED_FROM as HR_DERIVED_FROM
from streaming.detection.resting_hr import FEATURE as HR_FEATURE
from streaming.detection.resting_hr import RestingHeartRate
from streaming.events import DATA_GAP, NO_DATA, WATCH, AnomalyEvent

_NEG_INF = -math.inf
WEAR = "wear"


class PersonDetector:
    """Online anomaly detection for one person.

    Parameters
    ----------
    person
        Id carried into every event.
    tz
        The person's time zone: nights and days are local.
    config
        Tunables; the defaults are the product's.

    Notes
    -----
    Readings must come in time order. A reading older than a window already closed (by a later reading or
    by :meth:`flush`) is counted in ``late_readings`` and otherwise ignored.
    """

    __slots__ = ("person", "tz", "config", "late_readings", "_cal", "_hr", "_daily", "_blocked", "_last_ts",
                 "_gap_reported", "_gaps", "_b", "_phase", "_next", "_closed_until", "_hours", "_last_hour",
                 "_last_active", "_last_steps", "_main_metric", "_gap_s", "_long_gap_s", "_rest_s", "_stale_s",
                 "_specs", "_fusion", "_hr_hours", "_last_hr_hour", "_pending", "day_log")

    def __init__(self, person: str, tz: str | ZoneInfo, config: DetectorConfig | None = None):
        self.person = person
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.config = cfg = config or DetectorConfig()
        self.late_readings = 0
        self._cal = LocalCalendar(self.tz, cfg.night_hours, cfg.day_hours)
        self._hr: RestingHeartRate | None = None
        self._daily: dict[str, DailyFeature] = {}
        self._specs = {spec.metric: spec for spec in cfg.daily}
        self._blocked: set[str] = set()
        self._last_ts: float | None = None
        self._gap_reported = False
        self._gaps: list[AnomalyEvent] = []
        self._b: DayBounds | None = None
        self._phase = 0  # 0: before the night window ends, 1: after
        self._next = _NEG_INF  # next boundary; the first reading sets up its day
        self._closed_until = _NEG_INF
        self._hours = 0  # distinct hours with any reading today
        self._last_hour = -1
        self._last_active = _NEG_INF
        self._last_steps = _NEG_INF
        self._main_metric: str | None = None
        self._gap_s = cfg.gap_hours * 3600.0
        self._long_gap_s = cfg.rewarm_after_gap_days * 86400.0
        self._rest_s = cfg.rest_after_steps_min * 60.0
        self._stale_s = cfg.steps_stale_min * 60.0
        self._fusion = Fusion(cfg.fusion, cfg.fusion_threshold, cfg.baseline_window, cfg.warmup)
        self._hr_hours = 0  # distinct hours with heart rate today: the watch was worn
        self._last_hr_hour = -1
        self._pending: tuple[int, dict] | None = None  # (date, values) of the last closed day, for the fusion
        self.day_log: list | None = None  # set to a list to record each fused day's values (the evaluator)

    # -- readings ---------------------------------------------------------------------------------------
    def process(self, reading) -> list[AnomalyEvent]:
        """Take one reading (anything with ``time``, ``metric``, ``value``, ``value2``); return new events."""
        t = reading.time
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError("reading time must be timezone-aware")
        return self.process_epoch(reading.metric, t.timestamp(), reading.value, reading.value2)

    def process_epoch(self, metric: str, ts: float, value: float, value2: float | None = None) -> list[AnomalyEvent]:
        """:meth:`process` for a time already in epoch seconds (the replay's fast path)."""
        if metric in self._blocked:
            return []
        if ts < self._closed_until:
            self.late_readings += 1
            return []
        emissions = self._advance(ts) if ts >= self._next else None
        last = self._last_ts
        if last is None or ts > last:
            if last is not None and ts - last >= self._gap_s:
                emissions = (emissions or []) + self._after_gap(last, ts)
            self._last_ts = ts
        hour = int(ts // 3600.0)
        if hour != self._last_hour:
            self._hours += 1
            self._last_hour = hour
        if metric == "heart_rate":
            if hour != self._last_hr_hour:
                self._hr_hours += 1
                self._last_hr_hour = hour
            hr = self._hr
            if hr is None:
                hr = self._hr = RestingHeartRate(self.config)
                hr.steps_used = self._last_steps > _NEG_INF
                self._main_metric = metric
            b = self._b
            hr.add_heart_rate(ts, value, b.night_start <= ts < b.night_end, b.day_start <= ts < b.day_end,
                              ts - self._last_steps <= self._stale_s, ts - self._last_active >= self._rest_s)
        else:
            if metric == "steps":
                self._last_steps = ts
                if value > 0:
                    self._last_active = ts
                if self._hr is not None:
                    self._hr.steps_used = True
            feature = self._daily.get(metric)
            if feature is None:
                feature = self._start_daily(metric)
            if feature is not None:
                feature.add(value, metric == "sleep" and ts >= self._b.sleep_cut)
        return self._events(emissions) if emissions else []

    def flush(self, now: datetime) -> list[AnomalyEvent]:
        """Close the windows that ended by ``now`` and report a data gap that has lasted until ``now``.

        Call it on a timer with ``now`` a little behind the wall clock (readings may sync late; a reading
        older than a closed window is ignored).
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        ts = now.timestamp()
        emissions = self._advance(ts) if self._b is not None and ts >= self._next else []
        last = self._last_ts
        if last is not None and ts - last >= self._gap_s and not self._gap_reported:
            self._gap_reported = True
            emissions.append(self._gap_emission(last, ts))
        return self._events(emissions)

    # -- care-agent and consent hooks -------------------------------------------------------------------
    def apply_false_alarm(self, feature: str, until: datetime) -> bool:
        """A care agent found this feature's alert a false alarm: make it less sensitive until ``until``.

        Closes the open episode and raises the feature's z thresholds by ``config.false_alarm_z``.
        Returns False if the person has no such feature (e.g. consent was withdrawn meanwhile).
        """
        if feature == FUSED_FEATURE:
            self._fusion.apply_false_alarm(until.timestamp())
            return True
        target = self._feature(feature)
        if target is None:
            return False
        target.apply_false_alarm(until.timestamp())
        return True

    def drop_feature_for_metric(self, metric: str) -> list[str]:
        """Consent for ``metric`` was withdrawn: forget everything derived from it and ignore it from now on.

        Returns the names of the features dropped. :meth:`allow_metric` lifts the block when consent
        returns; the features then start learning afresh. Calling it again, or for a metric that shaped
        nothing, drops nothing: overnight heart rate learned without steps survives a withdrawal of steps.
        """
        dropped = []
        hr = self._hr
        if hr is not None and (metric == "heart_rate" or (metric in HR_DERIVED_FROM and hr.steps_used)):
            self._hr = None
            dropped.append(HR_FEATURE)
        if metric == "steps":
            self._last_active = self._last_steps = _NEG_INF
        feature = self._daily.pop(metric, None)
        if feature is not None:
            dropped.append(feature.spec.feature)
        signals = [sig.name for sig in FUSED_SIGNALS if sig.metric == metric]
        if HR_FEATURE in dropped:
            signals += ["overnight_rhr", "day_rhr"]
        self._fusion.drop(signals)
        self._blocked.add(metric)
        return dropped

    def allow_metric(self, metric: str) -> None:
        self._blocked.discard(metric)

    def baselines(self) -> dict[str, dict]:
        """Each baseline's centre, spread and size, e.g. for "your usual" in a care agent's view."""
        bases = []
        if self._hr is not None:
            bases += [(HR_FEATURE, self._hr.night_base, False), ("day_rest_hr", self._hr.day_base, False)]
        bases += [(f.spec.feature, f.base, f.spec.log) for f in self._ordered_daily()]
        out = {}
        for name, b, log in bases:
            median = b.median
            if log and median is not None:
                median = math.expm1(median)  # log-scale features report in their own unit
            out[name] = {"median": median, "scale": b.scale, "count": b.count, "ready": b.ready, "log": log}
        return out

    @property
    def features(self) -> list[str]:
        names = [HR_FEATURE] if self._hr is not None else []
        return names + [f.spec.feature for f in self._ordered_daily()]

    # -- finished episodes (for replay and evaluation; not persisted) -----------------------------------
    def pop_finished(self) -> list[AnomalyEvent]:
        """Episodes that ended since the last call (``alert_at`` set when they reached the alert tier)."""
        records = self._gaps
        self._gaps = []
        for tracker in self._trackers():
            records.extend(tracker.finished)
            tracker.finished = []
        records.extend(self._fusion.finished)
        self._fusion.finished = []
        return self._events(sorted(records, key=lambda r: (r.start, r.feature)))

    def open_episodes(self) -> list[AnomalyEvent]:
        """Episodes still open, as they stand."""
        records = [r for r in (t.snapshot() for t in self._trackers()) if r is not None]
        fused = self._fusion.snapshot()
        return self._events(records + ([fused] if fused is not None else []))

    @property
    def evidence(self) -> float:
        """The accumulated combined evidence (the fusion's CuSum) as of the last closed night."""
        return self._fusion.score

    # -- state ------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """All state needed to continue exactly where this detector is, versioned."""
        return state_codec.encode([
            self.person, self.tz.key, self._last_ts, self._gap_reported,
            self._b.date if self._b is not None else None, self._phase, self._closed_until, self._hours,
            self._last_hour, self._last_active, self._last_steps, self._main_metric, sorted(self._blocked),
            self.late_readings, self._hr.to_state() if self._hr is not None else None,
            [[f.spec.metric, f.to_state()] for f in self._ordered_daily()],
            self._fusion.to_state(), self._hr_hours, self._last_hr_hour,
            [self._pending[0], list(self._pending[1].items())] if self._pending is not None else None,
        ])

    @classmethod
    def from_bytes(cls, data: bytes, config: DetectorConfig | None = None) -> PersonDetector:
        """Restore from :meth:`to_bytes`; raises ``IncompatibleState`` for another state version."""
        st = state_codec.decode(data)
        person, tz, last_ts, gap_reported, date, phase, closed_until, hours, last_hour = st[:9]
        last_active, last_steps, main_metric, blocked, late, hr, daily, fusion, hr_hours, last_hr_hour, pending = st[9:]
        det = cls(person, tz, config)
        det._last_ts, det._gap_reported, det._closed_until = last_ts, gap_reported, closed_until
        det._hours, det._last_hour, det._last_active, det._last_steps = hours, last_hour, last_active, last_steps
        det._main_metric, det._blocked, det.late_readings = main_metric, set(blocked), late
        if date is not None:
            det._b = det._cal.bounds(date)
            det._phase = phase
            det._next = det._b.night_end if phase == 0 else det._b.next_start
        if hr is not None:
            det._hr = RestingHeartRate.from_state(det.config, hr)
        for metric, fst in daily:
            spec = det._specs.get(metric)
            if spec is not None:
                det._daily[metric] = DailyFeature.from_state(spec, det.config, fst)
        det._fusion.load_state(fusion)
        det._hr_hours, det._last_hr_hour = hr_hours, last_hr_hour
        det._pending = (pending[0], dict(pending[1])) if pending is not None else None
        return det

    def feature_state_sizes(self) -> dict[str, int]:
        """Bytes each feature's state takes on its own (encoded like :meth:`to_bytes`), for the benchmark."""
        sizes = {}
        if self._hr is not None:
            sizes[HR_FEATURE] = len(state_codec.encode(self._hr.to_state()))
        for f in self._ordered_daily():
            sizes[f.spec.feature] = len(state_codec.encode(f.to_state()))
        sizes.update(self._fusion.state_sizes(state_codec.encode))
        return sizes

    # -- internals --------------------------------------------------------------------------------------
    def _advance(self, ts: float) -> list[AnomalyEvent]:
        """Close every window boundary up to ``ts``, skipping whole days without data."""
        out: list[AnomalyEvent] = []
        if self._b is None:
            self._enter(self._cal.date_of(ts))
        while ts >= self._next:
            b = self._b
            if self._phase == 0:
                self._phase = 1
                self._next = b.next_start
                self._closed_until = b.night_end
                if self._hr is not None:
                    out += self._hr.close_night(b.date, b.night_start, b.night_end)
                out += self._fuse(b)
            else:
                self._closed_until = b.next_start
                out += self._close_day(b)
                day = b.date + 1
                if ts >= self._cal.at(day + 1, 0):
                    day = self._cal.date_of(ts)
                self._enter(day)
        return out

    def _enter(self, day: int) -> None:
        self._b = self._cal.bounds(day)
        self._phase = 0
        self._next = self._b.night_end
        self._hours = 0
        self._last_hour = -1
        self._hr_hours = 0
        self._last_hr_hour = -1
        for tracker in self._trackers():
            tracker.close_if_stale(day)

    def _close_day(self, b: DayBounds) -> list[AnomalyEvent]:
        out: list[AnomalyEvent] = []
        steps_z = steps_ratio = None
        values: dict[str, float] = {}
        worn = self._hr_hours >= self.config.min_worn_hours
        for feature in self._ordered_daily():
            out += feature.close_day(b.date, b.start, b.next_start, self._hours)
            if feature.spec.metric == "steps":
                steps_z, steps_ratio = feature.last_z, feature.last_ratio
                if not worn:
                    continue  # no heart rate, no proof the watch was on: few steps say nothing
            if feature.last_value is not None:
                values[feature.spec.feature] = feature.last_value
        if self._hr is not None:
            out += self._hr.close_day(b.date, b.day_start, b.day_end, steps_z, steps_ratio)
            if self._hr.day_value is not None:
                values["day_rhr"] = self._hr.day_value
        self._pending = (b.date, values)
        return out

    def _fuse(self, b: DayBounds) -> list[AnomalyEvent]:
        """The night just closed: fuse it with the day before (its steps, sleep, daytime resting HR...).

        The fused day is dated by the night, so an alert is raised at 7 am, as NightSignal's would be.
        """
        values = dict(self._pending[1]) if self._pending is not None and self._pending[0] == b.date - 1 else {}
        self._pending = None
        hr = self._hr
        if hr is not None and hr.night_value is not None and hr.night_value[0] == b.date:
            values["overnight_rhr"] = hr.night_value[1]
        if not values:
            return []
        if self.day_log is not None:
            self.day_log.append((b.date, b.night_start, b.night_end, values))
        return self._fusion.close_day(b.night_start, b.night_end, values)

    def _after_gap(self, last: float, ts: float) -> list[AnomalyEvent]:
        """Data is back after a gap: report it (unless flush already did) and keep it from reading as health."""
        long_gap = ts - last >= self._long_gap_s
        if self._hr is not None:
            self._hr.on_gap(long_gap)
        for feature in self._daily.values():
            feature.on_gap(long_gap)
        self._fusion.close()
        self._pending = None
        if long_gap:
            self._fusion.start_probation(self.config.rewarm_values)
        if self.day_log is not None:
            self.day_log.append((None, last, ts, {"long_gap": long_gap}))
        emission = self._gap_emission(last, ts)
        self._gaps.append(emission)
        reported, self._gap_reported = self._gap_reported, False
        return [] if reported else [emission]

    def _gap_emission(self, last: float, ts: float) -> AnomalyEvent:
        hours = (ts - last) / 3600.0
        span = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
        since = self._cal.to_datetime(last).strftime("%a %d %b %H:%M")
        reason = (f"no data from the device for {span} (since {since}): the watch may be off or not syncing; "
                  f"this is not a health change")
        return AnomalyEvent("", DATA_GAP, WEAR, self._main_metric or "heart_rate", WATCH, last, ts, None, None,
                            reason, reason_code=NO_DATA,
                            details={"hours": round(hours, 1), "since": self._cal.to_datetime(last).isoformat()})

    def _start_daily(self, metric: str) -> DailyFeature | None:
        spec = self._specs.get(metric)
        if spec is None:
            return None
        feature = self._daily[metric] = DailyFeature(spec, self.config)
        if self._main_metric is None:
            self._main_metric = metric
        return feature

    def _ordered_daily(self) -> list[DailyFeature]:
        # Config order, so events at one boundary come out in the same order however the state was built.
        return [self._daily[s.metric] for s in self.config.daily if s.metric in self._daily]

    def _trackers(self):
        if self._hr is not None:
            yield self._hr.tracker
        for feature in self._ordered_daily():
            yield feature.tracker

    def _feature(self, name: str):
        if name == HR_FEATURE:
            return self._hr
        for feature in self._daily.values():
            if feature.spec.feature == name:
                return feature
        return None

    def _events(self, records: list[AnomalyEvent]) -> list[AnomalyEvent]:
        to_dt = self._cal.to_datetime
        return [r.bind(self.person, to_dt) for r in records]
