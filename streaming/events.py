"""What detection tells the rest of the system: one :class:`AnomalyEvent` per episode start or escalation.

This is the one record of a detected change, from the detector's inner loop to the alerting layer: the
detector builds it (with epoch-second times while it works, bound to the person's zone with :meth:`bind`),
the worker stores it, and ``alerts`` reads stored rows back as the same record (``id`` set). ``alerts``
imports this module and nothing else from ``streaming``, so it stays free of detector internals.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable

HEALTH = "health"
DATA_GAP = "data_gap"
WATCH = "watch"
ALERT = "alert"
TIER_RANK = {WATCH: 1, ALERT: 2}

# reason_code values: what kind of explanation ``details`` holds (the edges render each in their language).
COMBINED = "combined_evidence"   # several signals together (details["signals"], score, threshold)
FEATURE_CHANGE = "feature_change"  # one feature against its baseline (details["signals"] with one entry)
NO_DATA = "no_data"              # nothing from the device (details: hours, since)
NIGHTS_MISSING = "nights_missing"  # worn by day, not at night (details: nights)


@dataclass(frozen=True, slots=True)
class AnomalyEvent:
    """A change in a person's data worth a care agent's glance.

    Attributes
    ----------
    person
        The person id as given to the detector (a stored event: the person's uuid as text).
    kind
        ``"health"`` for a change in the body, ``"data_gap"`` when data stopped coming (never a health alert).
    feature
        What changed, e.g. ``"combined"`` (several signals), ``"overnight_rhr"``, ``"spo2"``, ``"wear"``.
    metric
        The raw data type the feature derives from, e.g. ``"heart_rate"``; consent is checked against it.
    tier
        ``"watch"`` or ``"alert"``; data gaps are always ``"watch"``.
    start, end
        The episode so far: start of its first flagged window, end of its latest (tz-aware).
    value, baseline
        The latest flagged value and the personal baseline it was compared with, in the feature's unit.
    reason
        One English sentence a care agent understands at a glance (the fallback of every rendering).
    reason_code, details
        The same explanation as data, for rendering in the reader's language: see the constants above.
        ``details["signals"]`` lists ``{"signal", "metric", "value", "baseline", "change", "unit", "days",
        "direction"}`` per contributing signal.
    alert_at
        When the episode reached the alert tier (whole episodes from replay and evaluation).
    id
        The stored row's id (events read back from the database).
    """

    person: str
    kind: str
    feature: str
    metric: str
    tier: str
    start: Any  # datetime once bound; epoch seconds inside the detector
    end: Any
    value: float | None
    baseline: float | None
    reason: str
    reason_code: str = FEATURE_CHANGE
    details: dict = field(default_factory=dict)
    alert_at: Any = None
    id: int | None = None

    def bind(self, person: str, to_datetime: Callable[[float], datetime]) -> AnomalyEvent:
        """The event with the person and local times attached (the detector works in epoch seconds)."""
        return replace(self, person=person, start=to_datetime(self.start), end=to_datetime(self.end),
                       alert_at=to_datetime(self.alert_at) if self.alert_at is not None else None)

    def to_json(self) -> dict:
        """A JSON-ready dict; times as ISO 8601 with their UTC offset."""
        return {
            "person": self.person,
            "kind": self.kind,
            "feature": self.feature,
            "metric": self.metric,
            "tier": self.tier,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "value": self.value,
            "baseline": self.baseline,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "details": self.details,
        }

    @classmethod
    def from_row(cls, row: dict) -> AnomalyEvent:
        """A stored ``anomaly_events`` row as the record."""
        return cls(person=str(row["person_id"]), kind=row["kind"], feature=row["feature"], metric=row["metric"],
                   tier=row["tier"], start=row["start_time"], end=row["end_time"], value=row["value"],
                   baseline=row["baseline"], reason=row["reason"],
                   reason_code=row.get("reason_code") or FEATURE_CHANGE, details=row.get("details") or {},
                   id=row["id"])
