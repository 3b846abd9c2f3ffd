"""What a care team notices: real rises alert with a readable reason; ordinary life, gaps and warm-up do not."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from streaming.detection import PersonDetector, Reading
from streaming.detection.synthetic import SyntheticPerson
from streaming.events import AnomalyEvent

START = date(2026, 1, 5)  # a Monday: days 5 and 6 are the weekend


def run(person: SyntheticPerson, detector: PersonDetector | None = None) -> tuple[PersonDetector, list[AnomalyEvent]]:
    detector = detector or PersonDetector("p1", person.tz)
    events = [e for r in person.iter_readings() for e in detector.process(r)]
    return detector, events


def on_day(day: int) -> date:
    return START + timedelta(days=day)


def health(events, tier=None):
    return [e for e in events if e.kind == "health" and (tier is None or e.tier == tier)]


def test_three_raised_nights_give_an_alert_that_explains_itself():
    person = SyntheticPerson(days=36, step_s=120, rise={30: 10, 31: 10, 32: 10})
    _, events = run(person)
    alerts = health(events, "alert")
    assert len(alerts) == 1
    alert = alerts[0]
    # One alert for the person, from the combined evidence, led by the heart rate.
    assert (alert.feature, alert.metric, alert.reason_code) == ("combined", "heart_rate", "combined_evidence")
    assert alert.start.date() == on_day(30) and alert.end.date() <= on_day(31)  # raised by the 2nd morning
    assert alert.value - alert.baseline == pytest.approx(10, abs=2.5)
    signals = {s["signal"]: s for s in alert.details["signals"]}
    assert set(signals) == {"overnight_rhr", "day_rhr"}
    assert signals["overnight_rhr"]["change"] == pytest.approx(10, abs=2.5)
    assert signals["overnight_rhr"]["direction"] == "up" and signals["overnight_rhr"]["unit"] == "bpm"
    assert re.match(r"several changes together: overnight resting HR \+\d+ bpm for \d nights? \(\d+ vs your usual 58\), "
                    r"daytime resting HR \+\d+ bpm", alert.reason)
    # The night on its own is a watch-level episode of its feature: one event when it opens, no more.
    rhr = [e for e in events if e.feature == "overnight_rhr"]
    assert [e.tier for e in rhr] == ["watch"]
    assert rhr[0].end == datetime(2026, 2, 4, 7, 0, tzinfo=rhr[0].end.tzinfo)
    assert "overnight resting HR 68 bpm vs your 28-night baseline 58 (+10), one night so far" == rhr[0].reason
    assert rhr[0].details["signals"][0]["signal"] == "overnight_rhr"


def test_nights_running_are_counted_in_the_reason():
    # Nights only: the day's resting heart rate and the steps stay ordinary and argue against it, so the
    # rise alerts once it has lasted (from the third night at its cap the ordinary day no longer counts).
    person = SyntheticPerson(days=37, step_s=120, rise={d: 10 for d in range(30, 35)}, day_rise_share=0.0)
    detector, events = run(person)
    [alert] = health(events, "alert")
    assert alert.start.date() == on_day(30) and alert.end.date() == on_day(33)
    assert re.fullmatch(r"a clear change: overnight resting HR \+\d+ bpm for 4 nights \(\d+ vs your usual 58\)",
                        alert.reason)
    [episode] = [e for e in detector.pop_finished() + detector.open_episodes() if e.tier == "alert"]
    assert "for 5 nights" in episode.reason


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ordinary_noise_and_weekend_runs_do_not_alert(seed):
    # Runs on Saturday and Sunday (2.3x the steps; the nights after them +2 bpm) and nights wandering by
    # 1.5 bpm. Such a person alerts about once in 600 days, so the test uses three fixed seeds.
    weekends = {d for d in range(70) if d % 7 in (5, 6)}
    person = SyntheticPerson(days=70, step_s=120, night_sd=1.5, seed=seed, exercise_days=weekends)
    _, events = run(person)
    assert health(events, "alert") == []


def test_a_three_day_wear_gap_is_a_data_gap_not_a_health_alert():
    person = SyntheticPerson(days=45, step_s=120, night_sd=1.5, gaps=[(25, 27)])
    _, events = run(person)
    gaps = [e for e in events if e.kind == "data_gap"]
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap.feature, gap.tier) == ("wear", "watch")
    assert gap.start.date() == on_day(24) and gap.end.date() == on_day(28)
    assert "not a health change" in gap.reason
    assert health(events) == []


def test_warm_up_keeps_a_new_person_quiet():
    person = SyntheticPerson(days=20, step_s=120, rise={5: 12, 6: 12, 7: 12})
    _, events = run(person)
    assert health(events) == []


def test_flagged_nights_are_not_learned_and_normal_ones_are():
    person = SyntheticPerson(days=32, step_s=120, rise={d: 12 for d in range(27, 32)}, day_rise_share=0.0)
    readings = person.readings()
    detector = PersonDetector("p1", "UTC")
    before_rise = datetime(2026, 2, 1, 6, 0, tzinfo=timezone.utc)  # night of day 27, before it closes
    for r in (r for r in readings if r.time < before_rise):
        detector.process(r)
    baseline = detector.baselines()["overnight_rhr"]
    fused = detector._fusion.bases["overnight_rhr"]
    fused_before = (fused.median, fused.count)
    events = [e for r in readings if r.time >= before_rise for e in detector.process(r)]
    assert health(events, "alert")
    after = detector.baselines()["overnight_rhr"]
    assert (after["median"], after["count"]) == (baseline["median"], baseline["count"])
    # Nor does the fusion's own baseline learn the raised nights (a suspect day is never learned).
    fused = detector._fusion.bases["overnight_rhr"]
    assert (fused.median, fused.count) == fused_before
    # Score before learning: the first raised night was judged against the baseline without it.
    assert health(events)[0].baseline == pytest.approx(baseline["median"], abs=0.01)
    # Ordinary nights afterwards are learned again.
    calm = SyntheticPerson(start=START + timedelta(days=32), days=5, step_s=120, seed=9)
    run(calm, detector)
    assert detector.baselines()["overnight_rhr"]["count"] == 28  # the window filled up again


def test_night_after_a_big_day_is_not_judged():
    # A hike on day 29 doubles the steps; the next night runs 6 bpm high for that reason alone.
    person = SyntheticPerson(days=33, step_s=120, exercise_days={29}, rise={30: 6}, day_rise_share=0.0)
    _, events = run(person)
    assert health(events) == []


def test_a_watch_off_at_night_is_said_once_and_is_not_a_health_change():
    person = SyntheticPerson(days=40, step_s=120, off_at_night=set(range(30, 40)))
    _, events = run(person)
    assert [(e.kind, e.feature) for e in events] == [("data_gap", "overnight_rhr")]
    assert events[0].start.date() == on_day(30) and events[0].end.date() == on_day(32)
    assert "paused until it is worn at night" in events[0].reason


def test_false_alarm_verdict_makes_the_feature_less_sensitive_for_a_while():
    rises = {30: 6, 31: 6, 36: 6, 37: 6, 45: 6, 46: 6}
    person = SyntheticPerson(days=50, step_s=120, night_sd=0.2, rise=rises)
    _, events = run(person)
    assert [e.start.date() for e in health(events, "alert")] == [on_day(30), on_day(36), on_day(45)]

    detector = PersonDetector("p1", "UTC")
    readings = person.readings()
    cut = datetime(2026, 2, 7, tzinfo=timezone.utc)  # day 33, after the first alert
    for r in (r for r in readings if r.time < cut):
        detector.process(r)
    assert detector.apply_false_alarm("combined", until=datetime(2026, 2, 15, tzinfo=timezone.utc))
    later = [e for r in readings if r.time >= cut for e in detector.process(r)]
    assert [e.start.date() for e in health(later, "alert")] == [on_day(45)]  # after the verdict expired
    assert not detector.apply_false_alarm("spo2", until=cut)


def test_a_person_with_only_some_metrics_gets_what_their_data_supports():
    detector = PersonDetector("p2", "Asia/Shanghai")
    events = []
    for day in range(24):
        for hour in (8, 14, 20):
            value = 97.0 + (0.5 if hour == 14 else 0.0) - (5.0 if day >= 21 else 0.0)
            t = datetime(2026, 3, 1, hour, tzinfo=detector.tz) + timedelta(days=day)
            events += detector.process(Reading(t, "spo2", value))
    assert detector.features == ["spo2"]
    [alert] = health(events, "alert")
    assert (alert.feature, alert.metric) == ("combined", "spo2")  # a vital sign leads: the alert is critical
    assert alert.reason == "a clear change: SpO2 -5.0 % (2 days)"
    [watch] = health(events, "watch")
    assert watch.reason == "SpO2 92 % vs your 21-day baseline 97 (-5), one day so far"


def test_consent_withdrawal_forgets_and_ignores_the_metric():
    person = SyntheticPerson(days=36, step_s=120, rise={30: 10, 31: 10, 32: 10})
    readings = person.readings()
    detector = PersonDetector("p1", "UTC")
    cut = datetime(2026, 2, 2, tzinfo=timezone.utc)  # day 28
    for r in (r for r in readings if r.time < cut):
        detector.process(r)
    assert detector.drop_feature_for_metric("heart_rate") == ["overnight_rhr"]
    assert detector.drop_feature_for_metric("heart_rate") == []  # idempotent
    later = [e for r in readings if r.time >= cut for e in detector.process(r)]
    assert [e.feature for e in later if e.kind == "health"] in ([], ["daily_steps"])
    assert "overnight_rhr" not in detector.features
    detector.allow_metric("heart_rate")
    detector.process(Reading(datetime(2026, 2, 10, 1, tzinfo=timezone.utc), "heart_rate", 60.0))
    assert detector.baselines()["overnight_rhr"]["count"] == 0  # learns afresh


def test_withdrawing_steps_drops_heart_rate_state_only_if_steps_shaped_it():
    with_steps = PersonDetector("p1", "UTC")
    run(SyntheticPerson(days=3, step_s=120), with_steps)
    assert with_steps.drop_feature_for_metric("steps") == ["overnight_rhr", "daily_steps"]

    hr_only = PersonDetector("p1", "UTC")
    for r in SyntheticPerson(days=3, step_s=120).iter_readings():
        if r.metric == "heart_rate":
            hr_only.process(r)
    assert hr_only.drop_feature_for_metric("steps") == []
    assert hr_only.features == ["overnight_rhr"]


def test_flush_reports_a_gap_once_and_data_coming_back_does_not_repeat_it():
    detector, _ = run(SyntheticPerson(days=20, step_s=120))
    last = datetime(2026, 1, 25, tzinfo=timezone.utc)
    [gap] = detector.flush(last + timedelta(hours=30))
    assert gap.kind == "data_gap" and gap.end == last + timedelta(hours=30)
    assert detector.flush(last + timedelta(hours=40)) == []
    assert detector.process(Reading(last + timedelta(days=2, hours=3), "heart_rate", 58.0)) == []


def test_readings_older_than_a_closed_window_are_ignored():
    detector = PersonDetector("p1", "UTC")
    detector.process(Reading(datetime(2026, 1, 5, 23, tzinfo=timezone.utc), "heart_rate", 60.0))
    detector.flush(datetime(2026, 1, 6, 8, tzinfo=timezone.utc))
    assert detector.process(Reading(datetime(2026, 1, 6, 3, tzinfo=timezone.utc), "heart_rate", 60.0)) == []
    assert detector.late_readings == 1


def test_nights_follow_local_time_across_a_daylight_saving_change():
    person = SyntheticPerson(start=date(2026, 3, 1), days=40, step_s=120, tz="Europe/Berlin",
                             rise={33: 10, 34: 10})  # DST began on 29 March (day 28)
    _, events = run(person)
    [alert] = health(events, "alert")
    assert alert.start == datetime(2026, 4, 3, 0, 0, tzinfo=alert.start.tzinfo)
    assert alert.start.utcoffset() == timedelta(hours=2)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        PersonDetector("p1", "UTC").process(Reading(datetime(2026, 1, 5), "heart_rate", 60.0))
