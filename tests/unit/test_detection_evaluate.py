"""The evaluator: leave-one-person-out never lets the scored person shape the choice; injections and the
offline episode rule match the detector."""
from __future__ import annotations

import random

import pytest

from streaming import curve as cv
from streaming.detection.fusion import Fusion, FusionParams

GRID = [FusionParams(shift=1.0), FusionParams(shift=2.0)]
THRESHOLDS = (3.0, 4.0, 5.0)


def fake_log(name: str, seed: int, days: int = 90, onset: int | None = None) -> cv.PersonLog:
    rng = random.Random(seed)
    base = 739000
    log = [(base + d, {"overnight_rhr": 58 + rng.gauss(0, 1.5), "day_rhr": 68 + rng.gauss(0, 2),
                       "daily_steps": 9000 * rng.uniform(0.7, 1.3)}) for d in range(days)]
    return cv.PersonLog(name, log, onset=onset)


def test_leave_one_out_chooses_without_the_person_it_scores():
    people = ["a", "b", "c", "d"]
    seen: dict[str, list[str]] = {}

    def choose(training):
        assert len(training) == 3
        return tuple(training)

    def score(person, choice):
        assert person not in choice  # the choice was made without them
        seen[person] = list(choice)
        return {"ok": True}

    result = cv.leave_one_out(people, choose, score)
    assert set(result) == set(people)
    assert seen == {p: [q for q in people if q != p] for p in people}


def test_the_held_out_persons_data_cannot_change_the_choice():
    logs = [fake_log(name, seed) for seed, name in enumerate("abcd")]
    curves = cv.build_curves(logs, GRID, seeds=1, thresholds=THRESHOLDS)
    training = ["a", "b", "c"]
    choice = cv.choose(curves, training, GRID)
    # Make the held-out person's data wildly different: the choice made on the others stays the same.
    wild = cv.PersonLog("d", [(d, {"overnight_rhr": v["overnight_rhr"] + 15 * (i % 2)})
                              for i, (d, v) in enumerate(logs[3].days)])
    other = cv.build_curves(logs[:3] + [wild], GRID, seeds=1, thresholds=THRESHOLDS)
    assert cv.choose(other, training, GRID) == choice
    assert cv.curve(other, training, 0)[0].tolist() == cv.curve(curves, training, 0)[0].tolist()


def test_an_injection_changes_only_its_window():
    log = fake_log("a", 1)
    start = log.dates[40]
    inj = cv.Injection(start, nights=3, rise=6.0, day_share=0.5, steps_drop=0.5, sleep_change=60.0,
                       hrv_drop=0.2, seed=5)
    ill = cv.inject(log, inj)
    for (d, before), (_, after) in zip(log.days, ill.days):
        k = d - start
        if 0 <= k < 3:
            assert after["overnight_rhr"] > before["overnight_rhr"]
        elif not 0 <= k <= 3:
            assert after == before
        if 1 <= k <= 3:
            assert after["daily_steps"] == pytest.approx(before["daily_steps"] * 0.5)
    assert all(s + 9 <= log.dates[-1] for s in cv.injection_starts(log))


def test_no_injection_lands_near_a_labelled_illness():
    log = fake_log("a", 2, onset=739000 + 60)
    assert all(all(log.healthy(d) for d in range(s, s + 10)) for s in cv.injection_starts(log))


def test_the_offline_episode_rule_is_the_detectors():
    log = cv.inject(fake_log("a", 3), cv.Injection(739000 + 50, 4, 7.0, 1.0, 0.6, 0.0, 0.0, 9))
    params = FusionParams()
    for threshold in (3.0, 4.0, 6.0):
        online = Fusion(params, threshold)
        opened = []
        for d, values in log.days:
            if online.close_day(d, d + 0.5, values):
                opened.append(d)
        assert [a for a, _ in cv.episodes(cv.trajectory(log, params), threshold)] == opened
    assert opened  # the injected illness was found at some threshold
