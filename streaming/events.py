"""What detection tells the rest of the system: one :class:`AnomalyEvent` per episode start or escalation.

``alerts`` imports this module and nothing else from ``streaming``, so it stays free of detector internals.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

HEALTH = "health"
DATA_GAP = "data_gap"
WATCH = "watch"
ALERT = "alert"
TIER_RANK = {WATCH: 1, ALERT: 2}


@dataclass(frozen=True, slots=True)
class AnomalyEvent:
    """A change in a person's data worth a care agent's glance.

    Attributes
    ----------
    person
        The person id as given to the detector.
    kind
        ``"health"`` for a change in the body, ``"data_gap"`` when data stopped coming (never a health alert).
    feature
        What changed, e.g. ``"overnight_rhr"``, ``"daily_steps"``, ``"spo2"``, ``"wear"``.
    metric
        The raw data type the feature derives from, e.g. ``"heart_rate"``; consent is checked against it.
    tier
        ``"watch"`` or ``"alert"``; data gaps are always ``"watch"``.
    start, end
        The episode so far: start of its first flagged window, end of its latest (tz-aware).
    value, baseline
        The latest flagged value and the personal baseline it was compared with, in the feature's unit.
    reason
        One sentence a care agent understands at a glance.
    """

    person: str
    kind: str
    feature: str
    metric: str
    tier: str
    start: datetime
    end: datetime
    value: float | None
    baseline: float | None
    reason: str

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
        }
