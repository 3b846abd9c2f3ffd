"""The metrics we accept: canonical unit, accepted units with their conversion, and plausible ranges.

A value outside the plausible range is almost always a sensor or unit error (a heart rate of 400, an
SpO2 of 130 %), and storing it would teach a person's baseline nonsense, so it is rejected with a reason.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consent.catalog import DATA_TYPES


def _same(x: float) -> float:
    return x


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str                                   # canonical unit we store
    low: float                                  # plausible range, canonical unit, inclusive
    high: float
    units: dict[str, Callable[[float], float]]  # accepted unit spelling -> converter to canonical
    description: str


def _units(canonical: str, *aliases: str, **converters: Callable[[float], float]) -> dict:
    table: dict[str, Callable[[float], float]] = {canonical: _same}
    table.update({a: _same for a in aliases})
    table.update(converters)
    return table


_F_TO_C = lambda f: (f - 32.0) * 5.0 / 9.0  # noqa: E731
_KPA_TO_MMHG = lambda k: k * 7.500617  # noqa: E731
_MMOL_TO_MGDL = lambda m: m * 18.0156  # noqa: E731  (glucose molar mass 180.156 g/mol)

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("heart_rate", "bpm", 25, 250, _units("bpm", "beats/min", "count/min", "/min"), "Heart rate"),
    Metric("resting_heart_rate", "bpm", 25, 200, _units("bpm", "beats/min", "count/min", "/min"),
           "Resting heart rate as the device computes it"),
    Metric("hrv_rmssd", "ms", 1, 300, _units("ms"), "Heart-rate variability (RMSSD)"),
    Metric("steps", "count", 0, 100_000, _units("count", "steps"), "Steps in the interval ending at the time"),
    Metric("sleep", "min", 0, 1440, _units("min", h=lambda h: h * 60.0),
           "A sleep session: time is its start; value is minutes asleep"),
    Metric("spo2", "%", 50, 100, _units("%", "percent", ratio=lambda r: r * 100.0), "Blood oxygen saturation"),
    Metric("blood_pressure", "mmHg", 40, 300, _units("mmHg", kPa=_KPA_TO_MMHG),
           "Blood pressure: systolic and diastolic"),
    Metric("glucose", "mg/dL", 10, 1000, _units("mg/dL", "mg/dl", **{"mmol/L": _MMOL_TO_MGDL, "mmol/l": _MMOL_TO_MGDL}),
           "Blood glucose"),
    Metric("body_temperature", "°C", 30, 45, _units("°C", "C", "degC", "celsius", **{"°F": _F_TO_C, "F": _F_TO_C,
                                                                                     "degF": _F_TO_C}),
           "Body temperature"),
    Metric("respiratory_rate", "/min", 3, 80, _units("/min", "breaths/min", "brpm"), "Respiratory rate"),
)}

# Diastolic has its own range; checked together with systolic.
DIASTOLIC_RANGE = (20.0, 200.0)
SLEEP_STAGES = ("awake", "light", "deep", "rem", "asleep")

assert tuple(METRICS) == DATA_TYPES, "every consentable data type is an ingest metric and vice versa"
