"""backoff_delay: exponential growth, full jitter, a cap, and Retry-After as a floor."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from alerts.push.provider import backoff_delay, parse_retry_after


class Fixed:
    """An rng that always draws the same value, to probe the bounds exactly."""

    def __init__(self, value: float):
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("attempt", range(1, 30))
def test_full_jitter_stays_within_the_exponential_bound(attempt):
    rng = random.Random(attempt)
    bound = min(60.0, 0.5 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, base=0.5, cap=60.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= bound for d in delays)
    # Full jitter: the draws spread over the whole range rather than clustering at the top.
    assert min(delays) < 0.1 * bound and max(delays) > 0.9 * bound


def test_the_bound_doubles_until_the_cap():
    tops = [backoff_delay(n, base=1.0, cap=100.0, rng=Fixed(1.0)) for n in range(1, 10)]
    assert tops == [1, 2, 4, 8, 16, 32, 64, 100, 100]
    assert backoff_delay(5, base=1.0, cap=100.0, rng=Fixed(0.0)) == 0.0


def test_huge_attempt_numbers_do_not_overflow():
    assert backoff_delay(10_000, base=1.0, cap=300.0, rng=Fixed(1.0)) == 300.0


@pytest.mark.parametrize("attempt", [1, 2, 5, 12])
@pytest.mark.parametrize("retry_after", [0.5, 7.0, 1000.0])
def test_retry_after_is_a_floor_never_shortened(attempt, retry_after):
    rng = random.Random(7)
    for _ in range(300):
        d = backoff_delay(attempt, retry_after, base=1.0, cap=300.0, rng=rng)
        # Never sooner than asked, even above the cap; at most `base` of spread on top of the floor.
        assert retry_after <= d <= max(min(300.0, 2.0 ** (attempt - 1)), retry_after + 1.0)


def test_retry_after_spreads_senders_that_were_told_the_same_thing():
    rng = random.Random(3)
    delays = {round(backoff_delay(1, 7.0, base=1.0, rng=rng), 3) for _ in range(50)}
    assert len(delays) > 40 and min(delays) >= 7.0


def test_zero_or_missing_retry_after_changes_nothing():
    assert backoff_delay(3, None, rng=Fixed(0.5)) == backoff_delay(3, 0, rng=Fixed(0.5)) == 2.0


def test_seeded_rng_is_reproducible():
    a = [backoff_delay(n, rng=random.Random(42)) for n in range(1, 8)]
    b = [backoff_delay(n, rng=random.Random(42)) for n in range(1, 8)]
    assert a == b


@pytest.mark.parametrize("kwargs", [{"attempt": 0}, {"attempt": -1}, {"attempt": 1, "base": 0},
                                    {"attempt": 1, "cap": -5}])
def test_nonsense_is_refused(kwargs):
    with pytest.raises(ValueError):
        backoff_delay(**kwargs)


def test_parse_retry_after_reads_seconds_and_dates():
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    for unreadable in (None, "", "soon", "inf", "nan"):
        assert parse_retry_after(unreadable) is None
    assert parse_retry_after("-3") == 0.0
