"""The Baseline wrapper around river: it really learns, scores without learning, and restores exactly."""
from __future__ import annotations

import random

import pytest

from streaming.detection import Baseline


def _trained(values, **kw) -> Baseline:
    baseline = Baseline(**{"window": 28, "warmup": 14, "scale_floor": 1.0, **kw})
    for x in values:
        baseline.learn_one(x)
    return baseline


def test_baseline_moves_after_learning_normal_values():
    baseline = _trained([60.0] * 14)
    assert baseline.median == 60.0
    for _ in range(20):
        baseline.learn_one(64.0)
    assert baseline.median == 64.0
    assert baseline.count == 28  # the window forgets what is older than 28 values


def test_scoring_does_not_learn():
    baseline = _trained([60.0, 61.0, 59.0] * 5)
    before = baseline.to_state()
    score = baseline.score_one(90.0)
    assert score.z > 20
    assert baseline.to_state() == before
    assert baseline.score_one(90.0) == score


def test_no_score_while_warming_up():
    baseline = _trained([60.0] * 13)
    assert not baseline.ready
    assert baseline.score_one(80.0) is None
    baseline.learn_one(60.0)
    assert baseline.ready
    assert baseline.score_one(80.0) is not None


def test_robust_z_ignores_a_wild_value_in_the_window():
    baseline = _trained([60.0, 61.0, 59.0, 60.5, 59.5] * 5 + [95.0])
    assert baseline.median == pytest.approx(60.0)
    assert baseline.score_one(66.0).z > 3  # a mean/SD baseline would have been dragged up by the 95


def test_scale_never_below_the_floor():
    baseline = _trained([60.0] * 20, scale_floor=1.5)
    assert baseline.scale == 1.5
    assert baseline.score_one(63.0).z == pytest.approx(2.0)


def test_state_round_trip_rebuilds_river_statistics_exactly():
    rng = random.Random(3)
    baseline = _trained([rng.gauss(60, 3) for _ in range(40)])
    restored = Baseline.from_state(baseline.to_state(), window=28, warmup=14, scale_floor=1.0)
    for x in (55.0, 60.0, 71.3):
        assert restored.score_one(x) == baseline.score_one(x)
    for x in (58.0, 66.0):
        baseline.learn_one(x)
        restored.learn_one(x)
    assert restored.score_one(62.0) == baseline.score_one(62.0)


def test_probation_after_a_long_gap():
    baseline = _trained([60.0] * 20)
    baseline.start_probation(3)
    assert baseline.score_one(70.0) is None
    for _ in range(3):
        baseline.learn_one(60.0)
    assert baseline.score_one(70.0) is not None


def test_forget_last_takes_a_value_back_exactly():
    rng = random.Random(8)
    baseline = _trained([rng.gauss(60, 3) for _ in range(35)])
    before = [baseline.score_one(x) for x in (55.0, 60.0, 66.0)]
    baseline.learn_one(75.0)
    assert [baseline.score_one(x) for x in (55.0, 60.0, 66.0)] != before
    baseline.forget_last()
    assert [baseline.score_one(x) for x in (55.0, 60.0, 66.0)] == before
    assert baseline.count == 28
