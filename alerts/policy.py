"""Severity of an alert, and the per-tenant escalation policy (copied into each alert when it opens)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from app.core.datatypes import critical_features

SEVERITY_RANK = {"info": 0, "low": 1, "high": 2, "critical": 3}
# Features whose alert tier means a vital sign out of the person's range: the care team acts first on these
# (the data types marked critical in the registry).
CRITICAL_FEATURES = critical_features()


def severity_for(kind: str, tier: str, feature: str, metric: str | None = None) -> str:
    """A combined alert (feature ``combined``) is critical when its leading signal is a vital sign (the
    detector then names that vital's metric)."""
    if kind == "data_gap":
        return "info"
    if tier == "watch":
        return "low"
    return "critical" if feature in CRITICAL_FEATURES or metric in CRITICAL_FEATURES else "high"


class EscalationStep(BaseModel):
    id: str = Field(min_length=1, max_length=64, description="Stable name of the step.")
    after_minutes: int = Field(ge=1, le=7 * 24 * 60, description="Minutes after the alert opened.")
    when: Literal["unclaimed", "unresolved"] = Field(description="Condition that must still hold.")
    severities: list[Literal["info", "low", "high", "critical"]] = Field(min_length=1)
    notify: Literal["supervisors", "on_duty", "assignee"] = Field(description="Who is notified.")


class EscalationPolicy(BaseModel):
    steps: list[EscalationStep] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _unique_ids(self) -> EscalationPolicy:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        return self

    def steps_for(self, severity: str) -> list[EscalationStep]:
        return sorted((s for s in self.steps if severity in s.severities), key=lambda s: s.after_minutes)

    def next_due(self, severity: str, opened_at: datetime, done: list[str]) -> datetime | None:
        due = [opened_at + timedelta(minutes=s.after_minutes) for s in self.steps_for(severity) if s.id not in done]
        return min(due) if due else None


DEFAULT_POLICY = EscalationPolicy(steps=[
    EscalationStep(id="critical-unclaimed-10m", after_minutes=10, when="unclaimed", severities=["critical"],
                   notify="on_duty"),
    EscalationStep(id="unclaimed-30m", after_minutes=30, when="unclaimed", severities=["high", "critical"],
                   notify="supervisors"),
    EscalationStep(id="unresolved-24h", after_minutes=24 * 60, when="unresolved", severities=["high", "critical"],
                   notify="assignee"),
])
