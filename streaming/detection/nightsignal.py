"""A re-implementation of NightSignal (Alavi et al., Nature Medicine 2022), the reference we measure against.

Not used by the product. Overnight resting heart rate is computed exactly as our detector computes it
(mean at-rest heart rate between midnight and 7 am local, at rest = no steps in the previous 12 minutes, at
least 180 covered minutes), so a comparison isolates the decision rule. The rule is NightSignal's red
alert: the baseline is the running median of all previous nights' values, and two consecutive nights at
least 4 bpm above it raise an alert, which lasts while the nights stay that high.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streaming.detection.config import DetectorConfig

RED_ALERT_BPM = 4.0
MIN_NIGHTS = 7  # nights of history before the running median is trusted


@dataclass(frozen=True, slots=True)
class RedAlert:
    alert_date: int  # local date ordinal of the second raised night
    end_date: int  # last raised night of the run


def overnight_resting_hr(hr_t: np.ndarray, hr_v: np.ndarray, steps_t: np.ndarray, steps_v: np.ndarray,
                         config: DetectorConfig | None = None) -> dict[int, float]:
    """Mean overnight at-rest heart rate per local date (ordinal), for nights with enough coverage.

    Times are naive local ``datetime64[s]`` arrays, each sorted.
    """
    cfg = config or DetectorConfig()
    hr_s = hr_t.astype("datetime64[s]").astype(np.int64)
    st_s = steps_t.astype("datetime64[s]").astype(np.int64)
    active = st_s[steps_v > 0]
    # Last steps reading (any value) and last active one at or before each heart-rate reading.
    i_any = np.searchsorted(st_s, hr_s, side="right") - 1
    i_act = np.searchsorted(active, hr_s, side="right") - 1
    last_any = np.where(i_any >= 0, st_s[np.maximum(i_any, 0)] if len(st_s) else 0, np.iinfo(np.int64).min // 2)
    last_act = np.where(i_act >= 0, active[np.maximum(i_act, 0)] if len(active) else 0, np.iinfo(np.int64).min // 2)
    steps_known = hr_s - last_any <= cfg.steps_stale_min * 60
    at_rest = hr_s - last_act >= cfg.rest_after_steps_min * 60
    day = hr_s // 86400
    second_of_day = hr_s - day * 86400
    start, end = cfg.night_hours
    in_night = (second_of_day >= start * 3600) & (second_of_day < end * 3600)
    keep = in_night & (at_rest | ~steps_known)
    days, minutes, values = day[keep], hr_s[keep] // 60, hr_v[keep]
    nights: dict[int, float] = {}
    if len(days) == 0:
        return nights
    # Epoch day 0 is 1970-01-01, ordinal 719163.
    bounds = np.flatnonzero(np.diff(days)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(days)]):
        if len(np.unique(minutes[lo:hi])) >= cfg.min_night_minutes:
            nights[int(days[lo]) + 719163] = float(values[lo:hi].mean())
    return nights


def red_alerts(nights: dict[int, float], delta: float = RED_ALERT_BPM, min_nights: int = MIN_NIGHTS) -> list[RedAlert]:
    """NightSignal red alerts over a person's nights (date ordinal -> overnight resting HR)."""
    runs: list[list[int]] = []  # [alert date, end date]
    history: list[float] = []
    previous_date, previous_high = None, False
    current: list[int] | None = None
    for date in sorted(nights):
        value = nights[date]
        high = len(history) >= min_nights and value >= float(np.median(history)) + delta
        consecutive = previous_date is not None and date - previous_date == 1
        if high and previous_high and consecutive:
            if current is None:
                current = [date, date]
                runs.append(current)
            current[1] = date
        else:
            current = None
        previous_date, previous_high = date, high
        history.append(value)
    return [RedAlert(alert_date, end_date) for alert_date, end_date in runs]
