"""Evidence fusion: several moderate changes together alert; one moderate change alone does not."""
from __future__ import annotations

import pytest

from streaming.detection import DetectorConfig, PersonDetector
from streaming.detection.fusion import Fusion, FusionParams, episode_step
from streaming.detection.operating_points import threshold_for
from streaming.detection.state import encode

DAY = 86400.0
# Ordinary days wander around these (robust spread ~1.5 bpm for heart rate, ~15 % for steps).
WANDER = (-1.0, 0.5, 1.0, -0.5, 0.0, 1.5, -1.5)


def warmed(days: int = 28) -> Fusion:
    """A fusion at the product's defaults after four weeks of one person's ordinary days."""
    cfg = DetectorConfig()
    fusion = Fusion(cfg.fusion, cfg.fusion_threshold)
    for d in range(days):
        w = WANDER[d % len(WANDER)]
        fusion.close_day(d * DAY, d * DAY + 7 * 3600, ordinary(w))
    return fusion


def ordinary(w: float = 0.0) -> dict:
    return {"overnight_rhr": 58.0 + w, "day_rhr": 68.0 - w, "daily_steps": 9000.0 * (1 + 0.1 * w)}


def feed(fusion: Fusion, days: list[dict], start: int = 28) -> list:
    events = []
    for i, values in enumerate(days):
        d = start + i
        events += fusion.close_day(d * DAY, d * DAY + 7 * 3600, values)
    return events


def test_several_moderate_changes_together_alert_and_the_reason_names_each():
    fusion = warmed()
    # Two days of moderate change in three signals: nights +3 bpm, daytime resting +3 bpm, 45 % fewer steps.
    # No one of them would alert on its own (see the next test).
    ill = {"overnight_rhr": 61.0, "day_rhr": 71.0, "daily_steps": 5000.0}
    events = feed(fusion, [ill, ill])
    [alert] = events
    assert (alert.feature, alert.tier, alert.reason_code) == ("combined", "alert", "combined_evidence")
    names = [s["signal"] for s in alert.details["signals"]]
    assert names == ["overnight_rhr", "day_rhr", "daily_steps"]
    assert "overnight resting HR +3 bpm" in alert.reason and "daytime resting HR +3 bpm" in alert.reason
    assert "44% fewer steps" in alert.reason or "45% fewer steps" in alert.reason
    assert alert.details["score"] >= alert.details["threshold"]


@pytest.mark.parametrize("signal, value", [("overnight_rhr", 61.0), ("day_rhr", 71.0), ("daily_steps", 5000.0)])
def test_one_moderate_change_alone_does_not_alert(signal, value):
    fusion = warmed()
    days = []
    for _ in range(3):
        day = ordinary()
        day[signal] = value
        days.append(day)
    assert feed(fusion, days) == []


def test_a_strong_change_in_one_signal_alerts_on_its_own():
    fusion = warmed()
    raised = ordinary()
    raised["overnight_rhr"] = 68.0  # +10 bpm night after night; the day and the steps as usual
    [alert] = feed(fusion, [raised] * 5)
    assert [s["signal"] for s in alert.details["signals"]] == ["overnight_rhr"]
    assert alert.reason.startswith("a clear change: overnight resting HR +10 bpm for ")


def test_one_night_of_one_signal_never_alerts_whatever_its_size():
    fusion = warmed()
    raised = ordinary()
    raised["overnight_rhr"] = 90.0
    assert feed(fusion, [raised, ordinary(), ordinary()]) == []


def test_behaviour_alone_never_alerts():
    fusion = warmed()
    lazy = ordinary()
    lazy["daily_steps"] = 1000.0  # 90 % fewer steps for a week, heart rate as usual
    lazy["overnight_rhr"] = lazy["day_rhr"] = None
    assert feed(fusion, [lazy] * 7) == []


def test_the_episode_rule_needs_a_fresh_crossing():
    assert episode_step(False, 0.0, 6.0, 6.0, 5.0) == (True, True)
    assert episode_step(True, 6.0, 7.0, 1.0, 5.0) == (True, False)
    assert episode_step(True, 7.0, 6.5, -0.5, 5.0) == (False, False)  # an ordinary day ends it
    assert episode_step(False, 6.5, 7.0, 0.5, 5.0) == (False, False)  # still above: not a second episode
    assert episode_step(False, 0.0, 6.0, 6.0, 5.0, body=False) == (False, False)


def test_state_round_trips_mid_episode():
    fusion = warmed()
    ill = {"overnight_rhr": 61.0, "day_rhr": 71.0, "daily_steps": 5000.0}
    feed(fusion, [ill])
    copy = Fusion(fusion.params, fusion.threshold)
    copy.load_state(fusion.to_state())
    assert feed(copy, [ill], start=29) == feed(fusion, [ill], start=29)
    assert copy.to_state() == fusion.to_state()


def test_the_threshold_is_the_tenants_choice_and_the_defaults_are_standard():
    assert DetectorConfig().fusion_threshold == threshold_for("standard")
    assert threshold_for("high") <= threshold_for("standard") <= threshold_for("low")
    # Changing the threshold leaves the evidence (and so the stored state) alone.
    a, b = Fusion(FusionParams(), 3.0), Fusion(FusionParams(), 9.0)
    for d in range(30):
        a.close_day(d * DAY, d * DAY, ordinary(WANDER[d % 7]))
        b.close_day(d * DAY, d * DAY, ordinary(WANDER[d % 7]))
    assert encode(a.to_state()) == encode(b.to_state())


def test_a_person_detector_carries_the_fusion_through_its_state():
    detector = PersonDetector("p1", "UTC")
    restored = PersonDetector.from_bytes(detector.to_bytes())
    assert restored.evidence == 0.0
