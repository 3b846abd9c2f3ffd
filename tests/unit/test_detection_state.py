"""Detector state: a restored detector continues exactly; another version is refused; it stays small."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from streaming.detection import STATE_VERSION, IncompatibleState, PersonDetector, Reading
from streaming.detection.synthetic import SyntheticPerson


def all_metrics_person() -> list[Reading]:
    """Heart rate and steps with an illness, plus spot readings of every other metric."""
    person = SyntheticPerson(days=40, step_s=120, night_sd=1.5, rise={30: 9, 31: 9, 32: 9},
                             steps_drop={31: 0.6, 32: 0.6}, gaps=[(20, 21)])
    readings = person.readings()
    rng = random.Random(5)
    for day in range(40):
        if 20 <= day <= 21:
            continue
        base = datetime(2026, 1, 5, tzinfo=timezone.utc) + timedelta(days=day)
        ill = 30 <= day <= 32
        readings += [
            Reading(base + timedelta(hours=7, minutes=30), "spo2", 97 - 3 * ill + rng.gauss(0, 0.4)),
            Reading(base + timedelta(hours=7, minutes=31), "blood_pressure", 120 + rng.gauss(0, 4), 80.0),
            Reading(base + timedelta(hours=7, minutes=32), "body_temperature", 36.6 + 1.2 * ill + rng.gauss(0, .1)),
            Reading(base + timedelta(hours=7, minutes=33), "resting_heart_rate", 58 + 9 * ill + rng.gauss(0, 1)),
            Reading(base + timedelta(hours=7, minutes=34), "hrv_rmssd", 45 * (0.6 if ill else 1) + rng.gauss(0, 3)),
            Reading(base + timedelta(hours=7, minutes=35), "respiratory_rate", 14 + 3 * ill + rng.gauss(0, .4)),
            Reading(base + timedelta(hours=12, minutes=1), "glucose", 95 + rng.gauss(0, 6)),
            Reading(base + timedelta(hours=22, minutes=45), "sleep", 440 + rng.gauss(0, 25)),
        ]
    readings.sort(key=lambda r: r.time)
    return readings


READINGS = all_metrics_person()


def events_of(detector, readings):
    return [e for r in readings for e in detector.process(r)]


def test_restored_mid_stream_gives_exactly_the_same_events():
    straight = PersonDetector("p1", "UTC")
    expected = events_of(straight, READINGS)
    assert any(e.tier == "alert" for e in expected) and any(e.kind == "data_gap" for e in expected)

    # Cut in the middle of nights, days, an episode, just after the gap, and at window boundaries.
    rng = random.Random(11)
    cuts = sorted({rng.randrange(len(READINGS)) for _ in range(40)})
    resumed = PersonDetector("p1", "UTC")
    got, position = [], 0
    for cut in cuts + [len(READINGS)]:
        got += events_of(resumed, READINGS[position:cut])
        resumed = PersonDetector.from_bytes(resumed.to_bytes())
        position = cut
    assert got == expected
    assert resumed.to_bytes() == straight.to_bytes()
    at = datetime(2026, 2, 20, tzinfo=timezone.utc)
    assert resumed.flush(at) == straight.flush(at)


def test_another_state_version_is_refused():
    detector = PersonDetector("p1", "UTC")
    events_of(detector, READINGS[:2000])
    data = detector.to_bytes()
    stale = data[:3] + bytes([STATE_VERSION + 1]) + data[4:]
    with pytest.raises(IncompatibleState) as info:
        PersonDetector.from_bytes(stale)
    assert info.value.found == STATE_VERSION + 1
    with pytest.raises(IncompatibleState):
        PersonDetector.from_bytes(b"not a detector")
    with pytest.raises(IncompatibleState):
        PersonDetector.from_bytes(data[:4] + b"garbage")


def test_state_stays_under_4_kib_per_feature():
    detector = PersonDetector("p1", "Europe/Berlin")
    events_of(detector, READINGS)
    sizes = detector.feature_state_sizes()
    features = [name for name in sizes if not name.startswith("fusion:")]
    assert len(features) == 10
    assert {"fusion:overnight_rhr", "fusion:daily_steps", "fusion:spo2"} <= set(sizes)  # each signal's baseline
    assert max(sizes.values()) < 4096
    assert len(detector.to_bytes()) < 4096 * len(features)
