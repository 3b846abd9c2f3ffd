"""The metrics we accept: canonical unit, accepted units with their conversion, and plausible ranges.

A value outside the plausible range is almost always a sensor or unit error (a heart rate of 400, an
SpO2 of 130 %), and storing it would teach a person's baseline nonsense, so it is rejected with a reason.
The types themselves are declared in :mod:`app.core.datatypes`; this module is ingest's view of them.

>>> METRICS["spo2"].units["ratio"](0.97)
97.0
>>> DIASTOLIC_RANGE
(20.0, 200.0)
"""
from __future__ import annotations

from app.core.datatypes import DATA_TYPES

METRICS = DATA_TYPES

# Diastolic has its own range; checked together with systolic.
DIASTOLIC_RANGE: tuple[float, float] = DATA_TYPES["blood_pressure"].second_range
SLEEP_STAGES = ("awake", "light", "deep", "rem", "asleep")
