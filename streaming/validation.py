"""Decode and validate incoming readings, one item at a time, so a batch gets per-item results.

msgspec does the JSON work (about ten times faster than building pydantic models on the hot path); the
pydantic models in ``app.api.schemas`` document the same shape in OpenAPI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple
from datetime import datetime, timedelta, timezone

import msgspec

from streaming.metrics import DIASTOLIC_RANGE, METRICS, SLEEP_STAGES


class RawReading(msgspec.Struct, forbid_unknown_fields=True):
    metric: str
    time: datetime
    value: float | None = None
    unit: str | None = None
    source: str = "app"
    systolic: float | None = None
    diastolic: float | None = None
    end: datetime | None = None
    stages: dict[str, float] | None = None


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[msgspec.Raw]


class Frame(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    readings: list[msgspec.Raw]


class _TypedBatch(msgspec.Struct, forbid_unknown_fields=True):
    readings: list[RawReading]


class _TypedFrame(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    readings: list[RawReading]


class Reading(NamedTuple):
    """A validated reading in canonical units, ready to store (a plain tuple: cheap to make by the thousand)."""

    time: datetime
    metric: str
    value: float
    value2: float | None
    details: dict | None
    source: str
    utc_offset_min: int

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.metric, self.source, self.time)


class Rejected(Exception):
    """A reading we will not store; ``reason`` is a stable code, the message says why in words."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_item_decoder = msgspec.json.Decoder(RawReading)
_batch_decoder = msgspec.json.Decoder(Batch)
_frame_decoder = msgspec.json.Decoder(Frame)
_typed_batch_decoder = msgspec.json.Decoder(_TypedBatch)
_typed_frame_decoder = msgspec.json.Decoder(_TypedFrame)

Item = RawReading | msgspec.Raw


def decode_batch(body: bytes) -> list[Item]:
    """The items of a ``{"readings": [...]}`` body; raises ``msgspec.DecodeError`` / ``ValidationError``.

    Fast path: the whole batch decodes into typed items in one call. If any item is malformed, the batch
    is decoded again keeping each item raw, so every item gets its own result and error.
    """
    try:
        return _typed_batch_decoder.decode(body).readings
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _batch_decoder.decode(body).readings


def decode_frame(data: bytes | str) -> Frame | _TypedFrame:
    """A WebSocket frame (its ``seq`` and ``readings``), with the same fast path as :func:`decode_batch`."""
    try:
        return _typed_frame_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _frame_decoder.decode(data)


@dataclass(frozen=True, slots=True)
class Limits:
    max_future: timedelta = timedelta(minutes=5)
    max_past: timedelta = timedelta(days=3650)
    max_source_len: int = 64


def _finite(name: str, value: float | None) -> float:
    if value is None:
        raise Rejected("invalid", f"`{name}` is required")
    if not math.isfinite(value):
        raise Rejected("invalid", f"`{name}` must be a finite number")
    return value


def validate(raw: bytes | Item, *, now: datetime, limits: Limits = Limits()) -> Reading:
    """One item → a canonical :class:`Reading`, or :class:`Rejected` with a reason code."""
    if isinstance(raw, RawReading):
        item = raw
    else:
        try:
            item = _item_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise Rejected("invalid", str(exc)) from None
    metric = METRICS.get(item.metric)
    if metric is None:
        raise Rejected("unknown_metric", f"unknown metric {item.metric!r}; known: {', '.join(METRICS)}")
    if item.time.tzinfo is None:
        raise Rejected("time_without_offset", "`time` needs a UTC offset, e.g. 2026-11-25T08:00:00+08:00")
    if item.time > now + limits.max_future:
        raise Rejected("time_in_future", f"`time` {item.time.isoformat()} is in the future")
    if item.time < now - limits.max_past:
        raise Rejected("time_too_old", f"`time` {item.time.isoformat()} is older than {limits.max_past.days} days")
    if not item.source or len(item.source) > limits.max_source_len or not item.source.isprintable():
        raise Rejected("invalid", f"`source` must be 1–{limits.max_source_len} printable characters")
    convert = metric.units.get(item.unit or metric.unit)
    if convert is None:
        raise Rejected("unknown_unit", f"unit {item.unit!r} is not accepted for {metric.name}; "
                                       f"use one of: {', '.join(metric.units)}")
    value2 = None
    details = None
    if metric.name == "blood_pressure":
        systolic = convert(_finite("systolic", item.systolic))
        diastolic = convert(_finite("diastolic", item.diastolic))
        if not DIASTOLIC_RANGE[0] <= diastolic <= DIASTOLIC_RANGE[1] or diastolic >= systolic:
            raise Rejected("implausible_value",
                           f"blood pressure {systolic:.0f}/{diastolic:.0f} mmHg is not plausible")
        value, value2 = systolic, diastolic
    elif metric.name == "sleep":
        value, details = _sleep(item, convert)
    else:
        value = convert(_finite("value", item.value))
    if not metric.low <= value <= metric.high:
        raise Rejected("implausible_value", f"{metric.name} {value:g} {metric.unit} is outside the plausible "
                                            f"range {metric.low:g}–{metric.high:g} {metric.unit}")
    offset = item.time.utcoffset()
    return Reading(
        time=item.time, metric=metric.name, value=float(value), value2=value2,
        details=details, source=item.source, utc_offset_min=int(offset.total_seconds() // 60),
    )


_SIMPLE_UNITS = {name: {u for u, f in m.units.items() if f.__name__ == "_same"} | {None}
                 for name, m in METRICS.items() if name not in ("blood_pressure", "sleep")}


def validate_batch(items: list[Item], *, now: datetime, limits: Limits = Limits()
                   ) -> tuple[list[Reading], list[int], dict[int, Rejected]]:
    """A whole batch at once: the valid readings, their positions in ``items``, and why each other item was refused.

    The common item (a single-valued metric in its canonical unit, e.g. a heart rate) is checked inline with the
    bounds worked out once per batch; everything else goes through :func:`validate`, which gives the same answers.
    """
    newest, oldest = now + limits.max_future, now - limits.max_past
    max_source = limits.max_source_len
    simple, metrics = _SIMPLE_UNITS, METRICS
    good: list[Reading] = []
    positions: list[int] = []
    refused: dict[int, Rejected] = {}
    offsets: dict = {}
    for index, item in enumerate(items):
        if type(item) is RawReading:
            units = simple.get(item.metric)
            t, value, source = item.time, item.value, item.source
            tz = t.tzinfo
            if (units is not None and item.unit in units and value is not None and tz is not None
                    and item.systolic is None and item.diastolic is None and item.end is None and item.stages is None
                    and oldest <= t <= newest and 0 < len(source) <= max_source and source.isprintable()):
                metric = metrics[item.metric]
                if metric.low <= value <= metric.high:  # also false for NaN; infinities are out of range
                    offset = offsets.get(tz) if type(tz) is timezone else None  # a fixed offset, as msgspec makes
                    if offset is None:
                        offset = offsets[tz] = int(t.utcoffset().total_seconds() // 60)
                    # A plain tuple in Reading's field order (a NamedTuple's constructor costs 3x as much).
                    good.append((t, item.metric, float(value), None, None, source, offset))
                    positions.append(index)
                    continue
        try:
            good.append(validate(item, now=now, limits=limits))
            positions.append(index)
        except Rejected as exc:
            refused[index] = exc
    return good, positions, refused


def _sleep(item: RawReading, convert) -> tuple[float, dict]:
    if item.end is None or item.end.tzinfo is None:
        raise Rejected("invalid", "a sleep session needs `end` with a UTC offset")
    minutes = (item.end - item.time).total_seconds() / 60.0
    if not 0 < minutes <= 24 * 60:
        raise Rejected("implausible_value", "a sleep session must end after it starts and last at most 24 h")
    stages = item.stages or {}
    unknown = set(stages) - set(SLEEP_STAGES)
    if unknown:
        raise Rejected("invalid", f"unknown sleep stage(s) {sorted(unknown)}; known: {', '.join(SLEEP_STAGES)}")
    for name, value in stages.items():
        if not math.isfinite(value) or value < 0:
            raise Rejected("invalid", f"sleep stage {name!r} must be a non-negative number of minutes")
    if sum(stages.values()) > minutes + 1:
        raise Rejected("implausible_value", "sleep stages add up to more than the session")
    if item.value is not None:
        asleep = convert(_finite("value", item.value))
    elif stages:
        asleep = sum(v for k, v in stages.items() if k != "awake")
    else:
        asleep = minutes
    if asleep > minutes + 1:
        raise Rejected("implausible_value", "minutes asleep exceed the session length")
    return asleep, {"end": item.end.astimezone(timezone.utc).isoformat(), "stages": stages}


def validate_series(metric: str, unit: str | None, source: str, points: list[tuple[datetime, float | None]], *,
                    now: datetime, limits: Limits = Limits()) -> list[Reading]:
    """Plain values of one metric, unit and source (a record's samples): :func:`validate`'s checks, with the
    per-metric work done once. A point that fails is handed to :func:`validate`, so it fails with the same
    reason and words. Not for blood pressure or sleep, which carry more than a value."""
    if not points:
        return []
    first = validate(RawReading(metric=metric, time=points[0][0], value=points[0][1], unit=unit, source=source),
                     now=now, limits=limits)
    spec = METRICS[first.metric]
    convert = spec.units[unit or spec.unit]
    # The bounds in the points' own zone: comparing datetimes of one tzinfo is several times faster.
    zone = first.time.tzinfo
    earliest, latest = (now - limits.max_past).astimezone(zone), (now + limits.max_future).astimezone(zone)
    number = (float, int)
    readings = [first]
    for time, raw in points[1:]:
        value = convert(raw) if isinstance(raw, number) and math.isfinite(raw) else None
        offset = time.utcoffset()
        if value is None or time.tzinfo is not zone or not earliest <= time <= latest \
                or not spec.low <= value <= spec.high:
            validate(RawReading(metric=metric, time=time, value=raw, unit=unit, source=source), now=now, limits=limits)
        readings.append(Reading(time=time, metric=spec.name, value=float(value), value2=None, details=None,
                                source=source, utc_offset_min=int(offset.total_seconds() // 60)))
    return readings
