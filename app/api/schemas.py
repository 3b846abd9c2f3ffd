"""Request and response shapes as the OpenAPI document shows them.

The hot ingest routes decode with msgspec (``streaming.validation``) for speed; these pydantic models
describe the same shape for clients and are checked against the real decoder by a test.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.datatypes import DATA_TYPES as REGISTRY
from consent.catalog import DATA_TYPES

MetricName = Literal[DATA_TYPES]  # type: ignore[valid-type]
_UNITS = "; ".join(f"{t.name}: {t.unit} (also {', '.join(u for u in t.units if u != t.unit)})" if len(t.units) > 1
                   else f"{t.name}: {t.unit}" for t in REGISTRY.values())


class ReadingIn(BaseModel):
    """One reading. Most metrics carry `value`; blood pressure carries `systolic`/`diastolic`; a sleep
    session carries `end` and optional minutes per stage (`value` = minutes asleep, derived if absent)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"metric": "heart_rate", "time": "2026-11-25T08:00:00+08:00", "value": 72, "unit": "bpm", "source": "watch-1"},
        {"metric": "blood_pressure", "time": "2026-11-25T08:05:00+08:00", "systolic": 121, "diastolic": 79,
         "unit": "mmHg", "source": "cuff"},
        {"metric": "sleep", "time": "2026-11-24T23:10:00+08:00", "end": "2026-11-25T06:40:00+08:00",
         "stages": {"light": 250, "deep": 80, "rem": 70, "awake": 50}, "source": "watch-1"},
    ]})

    metric: MetricName = Field(description="Data type. Each needs the person's monitoring consent.")
    time: datetime = Field(description="When it was measured, RFC 3339 with the phone's UTC offset.")
    value: float | None = Field(None, description="The value, in `unit`.")
    unit: str | None = Field(None, description="Unit of `value`; omitted = the canonical unit. Accepted units per "
                             "data type (converted to the canonical one): " + _UNITS + ". See GET /v1/data-types.")
    source: str = Field("app", min_length=1, max_length=64, description="Device or app that measured it.")
    systolic: float | None = Field(None, description="blood_pressure only.")
    diastolic: float | None = Field(None, description="blood_pressure only.")
    end: datetime | None = Field(None, description="sleep only: when the session ended.")
    stages: dict[Literal["awake", "light", "deep", "rem", "asleep"], float] | None = Field(
        None, description="sleep only: minutes per stage.")


class ReadingBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    readings: list[ReadingIn] = Field(description="Up to BEIDOU_MAX_BATCH_READINGS (default 5000) readings.")


class ItemResult(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="accepted = stored now; duplicate = already stored (same person, metric, source and time); "
                    "rejected = not stored, see `reason`.")
    reason: str | None = Field(None, description="Why it was rejected: invalid, unknown_metric, unknown_unit, "
                               "implausible_value, time_without_offset, time_in_future, time_too_old, no_consent.")
    detail: str | None = Field(None, description="The reason in words.")


class BatchResult(BaseModel):
    results: list[ItemResult]
    accepted: int
    duplicate: int
    rejected: int


class Problem(BaseModel):
    """Every error answer: what went wrong in words, and a stable code to act on."""

    detail: str | list[dict] = Field(description="What went wrong, in words; for a request that fails validation, "
                                     "the list of faulty fields (`loc`, `msg`, `type`).")
    code: str = Field(description="Stable, machine-readable: `invalid`, `unauthorized`, `forbidden`, `not_found`, "
                      "`conflict`, `erased`, `too_large`, `unavailable`, or a more specific one a route documents "
                      "(e.g. `guardian_required`, `birth_date_locked`).")


class ReadingOut(BaseModel):
    time: datetime
    metric: str
    value: float
    value2: float | None
    source: str


class ReadingPage(BaseModel):
    readings: list[ReadingOut]
    next_before: datetime | None = Field(None, description="Pass as `to` to get the next (older) page.")
