"""What a person can consent to: data types (the ingest metrics) × purposes."""
from __future__ import annotations

DATA_TYPES: tuple[str, ...] = (
    "heart_rate", "resting_heart_rate", "hrv_rmssd", "steps", "sleep", "spo2",
    "blood_pressure", "glucose", "body_temperature", "respiratory_rate",
)

PURPOSES: tuple[str, ...] = ("monitoring", "outreach", "research")

MONITORING = "monitoring"
