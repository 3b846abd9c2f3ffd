"""Local days in epoch seconds, so the per-reading path compares floats instead of converting time zones.

Each local day's boundaries (midnight, end of the night window, the daytime window, 6 pm for sleep
sessions) are computed once, through ``zoneinfo``, so days of 23 or 25 hours around a DST change are right.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A sleep session starting after 6 pm belongs to the next morning's night.
SLEEP_CUT_HOUR = 18


@dataclass(frozen=True, slots=True)
class DayBounds:
    """Boundaries of one local day, as epoch seconds."""

    date: int  # ordinal
    start: float
    night_start: float
    night_end: float
    day_start: float
    day_end: float
    sleep_cut: float
    next_start: float


class LocalCalendar:
    """Turns epoch seconds into local days of one time zone."""

    __slots__ = ("tz", "night_hours", "day_hours")

    def __init__(self, tz: ZoneInfo, night_hours: tuple[int, int], day_hours: tuple[int, int]):
        for lo, hi in (night_hours, day_hours):
            if not 0 <= lo < hi <= 24:
                raise ValueError(f"window hours must satisfy 0 <= start < end <= 24, got {lo}-{hi}")
        self.tz = tz
        self.night_hours = night_hours
        self.day_hours = day_hours

    def date_of(self, ts: float) -> int:
        return datetime.fromtimestamp(ts, self.tz).date().toordinal()

    def at(self, day: int, hour: int) -> float:
        d = date.fromordinal(day)
        if hour == 24:
            d, hour = d + timedelta(days=1), 0
        return datetime.combine(d, time(hour), tzinfo=self.tz).timestamp()

    def bounds(self, day: int) -> DayBounds:
        return DayBounds(
            date=day,
            start=self.at(day, 0),
            night_start=self.at(day, self.night_hours[0]),
            night_end=self.at(day, self.night_hours[1]),
            day_start=self.at(day, self.day_hours[0]),
            day_end=self.at(day, self.day_hours[1]),
            sleep_cut=self.at(day, SLEEP_CUT_HOUR),
            next_start=self.at(day + 1, 0),
        )

    def to_datetime(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)
