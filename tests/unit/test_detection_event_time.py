"""The worker's event-time pieces without a database: the watermark, and checkpoints at local midnights
that restore to exactly the detector an uninterrupted run would have."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from streaming.consumer import _feed, watermark
from streaming.detection import PersonDetector
from streaming.detection.synthetic import SyntheticPerson

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
HOLD = timedelta(days=5)


def test_a_watch_that_syncs_late_holds_the_watermark_and_one_far_behind_does_not():
    heads = [("steps", "phone", T0 + timedelta(hours=30)), ("heart_rate", "watch", T0)]
    assert watermark(heads, HOLD, cursor=T0) == T0
    assert watermark(heads, HOLD, cursor=None) == T0
    # More than the hold behind the newest stream: it no longer keeps the phone's steps waiting.
    far = [("steps", "phone", T0 + timedelta(days=6)), ("heart_rate", "watch", T0)]
    assert watermark(far, HOLD, cursor=T0) == T0 + timedelta(days=6)
    assert watermark([], HOLD, cursor=None) is None


def test_a_device_behind_the_detectors_position_is_late_data_not_a_hold():
    heads = [("heart_rate", "watch", T0 + timedelta(hours=12)), ("heart_rate", "old-watch", T0 - timedelta(days=3))]
    assert watermark(heads, HOLD, cursor=T0) == T0 + timedelta(hours=12)


def test_sparse_signals_never_hold_the_watermark():
    # No steps while ill in bed, one blood pressure a day: the heart rate is scored without waiting.
    heads = [("heart_rate", "watch", T0 + timedelta(hours=20)), ("steps", "phone", T0),
             ("blood_pressure", "cuff", T0 - timedelta(hours=10))]
    assert watermark(heads, HOLD, cursor=T0 - timedelta(days=1)) == T0 + timedelta(hours=20)


def _rows(readings):
    return [(r.time, r.metric, r.value, r.value2, None, True) for r in readings]


def test_restoring_any_checkpoint_and_feeding_on_gives_the_events_of_an_uninterrupted_run():
    zone = ZoneInfo("Asia/Shanghai")
    person = SyntheticPerson(days=36, step_s=120, rise={30: 10, 31: 10, 32: 10}, tz="Asia/Shanghai")
    rows = _rows(person.readings())
    straight = PersonDetector("p", zone)
    expected, _received, checkpoints, fed = _feed(straight, rows, zone, None, 0, timedelta(days=40))
    assert fed == len(rows) and [e for e in expected if e.tier == "alert"]
    assert len(checkpoints) >= 30
    for window_end, state, seen in checkpoints[-8:]:
        local = window_end.astimezone(zone)
        assert (local.hour, local.minute) == (0, 0)
        assert all(r[0] < window_end for r in rows[:seen]) and rows[seen][0] >= window_end
        restored = PersonDetector.from_bytes(state)
        head, *_ = _feed(PersonDetector("p", zone), rows[:seen], zone, None, 0, timedelta(days=40))
        after, *_ = _feed(restored, rows[seen:], zone, window_end, seen, timedelta(days=2))
        assert head + after == expected


def test_when_no_stream_has_reached_the_position_the_watermark_is_the_newest_head():
    # Readings after the position were withdrawn (a record deleted): read what there is.
    heads = [("steps", "phone", T0 - timedelta(hours=2)), ("heart_rate", "watch", T0 - timedelta(hours=1))]
    assert watermark(heads, HOLD, cursor=T0) == T0 - timedelta(hours=1)
