"""The input of the detector: one reading in canonical units."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """A reading as the detector takes it; ``streaming.validation.Reading`` has the same fields and works too.

    Attributes
    ----------
    time
        When it was measured, timezone-aware (a sleep session: when it started).
    metric
        One of the ingest metrics, e.g. ``"heart_rate"`` or ``"steps"``.
    value
        Canonical unit (bpm, steps in the interval, minutes asleep, %, systolic mmHg, mg/dL, °C, /min).
    value2
        Diastolic mmHg for blood pressure, else None.
    """

    time: datetime
    metric: str
    value: float
    value2: float | None = None
