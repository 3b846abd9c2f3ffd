"""Online, per-person anomaly detection on wearable data.

>>> from datetime import datetime, timedelta, timezone
>>> detector = PersonDetector("p1", "Europe/Berlin")
>>> detector.process(Reading(datetime(2026, 1, 5, 2, 0, tzinfo=timezone.utc), "heart_rate", 58.0))
[]
>>> restored = PersonDetector.from_bytes(detector.to_bytes())
>>> restored.person, str(restored.tz)
('p1', 'Europe/Berlin')
"""
from streaming.detection.baseline import Baseline, Score
from streaming.detection.config import DailySpec, DetectorConfig
from streaming.detection.person import PersonDetector
from streaming.detection.reading import Reading
from streaming.detection.state import STATE_VERSION, IncompatibleState

__all__ = [
    "STATE_VERSION", "Baseline", "DailySpec", "DetectorConfig", "IncompatibleState",
    "PersonDetector", "Reading", "Score",
]
