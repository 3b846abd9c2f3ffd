"""Scored windows, their tiers, and the episodes they form.

A *window* is one night, one day's resting hours, or one day of a daily metric, scored against its
baseline. Flagged windows in a row form one *episode*: an event goes out when the episode opens and again
if it escalates from watch to alert, never for every night in between (the alerting layer extends the
alert it already has). Events and finished episodes are both :class:`~streaming.events.AnomalyEvent`
records with epoch-second times (the person and zone are attached by ``PersonDetector``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from streaming.detection.baseline import Baseline, Score
from streaming.events import ALERT, HEALTH, TIER_RANK, WATCH, AnomalyEvent

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Window:
    """One scored window. ``bad_z`` and ``bad_change`` are signed so that positive means worse."""

    kind: str  # "night" or "day"
    date: int  # local calendar date, as an ordinal
    start: float  # epoch seconds
    end: float
    score: Score
    bad_z: float
    bad_change: float
    candidate: bool  # unusual enough to confirm a neighbour's rise
    strong: bool  # a clear change on its own

    def to_state(self) -> list:
        s = self.score
        return [self.kind, self.date, self.start, self.end, s.value, s.median, s.scale, s.z,
                self.bad_z, self.bad_change, self.candidate, self.strong]

    @classmethod
    def from_state(cls, st: list) -> Window:
        kind, date, start, end, value, median, scale, z, bad_z, bad_change, candidate, strong = st
        return cls(kind, date, start, end, Score(value, median, scale, z), bad_z, bad_change, candidate, strong)


def classify(score: Score, direction: int, *, candidate_z: float, candidate_change: float,
             strong_z: float, strong_change: float) -> tuple[float, float, bool, bool]:
    """``(bad_z, bad_change, candidate, strong)`` of a score, for a feature whose worrying way is ``direction``.

    A window needs both an unusual value *for this person* (robust z) and a change big enough to matter
    to anyone (absolute change): the first keeps noisy people quiet, the second very regular ones.
    """
    sign = direction if direction else (1 if score.z >= 0 else -1)
    bad_z = score.z * sign
    bad_change = score.delta * sign
    candidate = bad_z >= candidate_z and bad_change >= candidate_change
    strong = candidate and bad_z >= strong_z and bad_change >= strong_change
    return bad_z, bad_change, candidate, strong


class Episode:
    """The open episode of one feature."""

    __slots__ = ("start", "end", "tier", "last_date", "nights", "days", "alert_at", "reason", "value",
                 "baseline", "details")

    def __init__(self, start: float, end: float, tier: str, last_date: int):
        self.start = start
        self.end = end
        self.tier = tier
        self.last_date = last_date
        self.nights = 0
        self.days = 0
        self.alert_at: float | None = None
        self.reason = ""
        self.value: float | None = None
        self.baseline: float | None = None
        self.details: dict = {}

    def to_state(self) -> list:
        return [self.start, self.end, self.tier, self.last_date, self.nights, self.days, self.alert_at,
                self.reason, self.value, self.baseline, self.details]

    @classmethod
    def from_state(cls, st: list) -> Episode:
        ep = cls(st[0], st[1], st[2], st[3])
        ep.nights, ep.days, ep.alert_at, ep.reason, ep.value, ep.baseline, ep.details = st[4:]
        return ep


class EpisodeTracker:
    """Opens, escalates, extends and closes the episodes of one feature.

    Parameters
    ----------
    feature, metric
        Names carried into events.
    max_tier
        Features that never alert on their own (steps, sleep) cap their episodes at watch.
    log
        The windows' values are on a log scale; events carry them back in the feature's unit.
    """

    __slots__ = ("feature", "metric", "max_tier", "log", "open", "finished")

    def __init__(self, feature: str, metric: str, max_tier: str = ALERT, log: bool = False):
        self.feature = feature
        self.metric = metric
        self.max_tier = max_tier
        self.log = log
        self.open: Episode | None = None
        self.finished: list[AnomalyEvent] = []  # drained by the caller; not part of the persisted state

    def flag(self, window: Window, tier: str | None, *, reason: Callable[[Episode], tuple[str, dict]],
             partner: Window | None = None) -> list[AnomalyEvent]:
        """Add a flagged window; ``tier`` is None for a window that only continues an open episode.

        ``partner`` is the neighbouring window that confirmed this one; a new episode starts with it.
        ``reason`` words the episode once this window is counted: ``(English sentence, details)``. Returns the events to send: one when an
        episode opens, one when it escalates.
        """
        if tier is not None and TIER_RANK[tier] > TIER_RANK[self.max_tier]:
            tier = self.max_tier
        ep = self.open
        emit = False
        if ep is None:
            if tier is None:
                return []
            start = partner.start if partner is not None else window.start
            ep = self.open = Episode(start, window.end, tier, window.date)
            if partner is not None:
                ep.nights += partner.kind == "night"
                ep.days += partner.kind != "night"
            emit = True
        elif tier is not None and TIER_RANK[tier] > TIER_RANK[ep.tier]:
            ep.tier = tier
            emit = True
        if tier == ALERT and ep.alert_at is None:
            ep.alert_at = window.end
        ep.end = max(ep.end, window.end)
        ep.last_date = max(ep.last_date, window.date)
        ep.nights += window.kind == "night"
        ep.days += window.kind != "night"
        value, baseline = window.score.value, window.score.median
        if self.log:
            value, baseline = math.expm1(value), math.expm1(baseline)
        ep.value = round(value, 2)
        ep.baseline = round(baseline, 2)
        ep.reason, ep.details = reason(ep)
        if not emit:
            return []
        return [AnomalyEvent("", HEALTH, self.feature, self.metric, ep.tier, ep.start, ep.end, ep.value,
                             ep.baseline, ep.reason, details=ep.details)]

    def close(self) -> None:
        """End the open episode, if any, and keep its record."""
        ep = self.open
        if ep is None:
            return
        self.finished.append(self._record(ep))
        self.open = None

    def close_if_stale(self, date: int, max_silent_days: int = 2) -> None:
        """An episode with no flagged window for ``max_silent_days`` days is over, data or not."""
        if self.open is not None and date - self.open.last_date > max_silent_days:
            self.close()

    def snapshot(self) -> AnomalyEvent | None:
        """The open episode as a record (used at the end of a replay)."""
        return self._record(self.open) if self.open is not None else None

    def _record(self, ep: Episode) -> AnomalyEvent:
        return AnomalyEvent("", HEALTH, self.feature, self.metric, ep.tier, ep.start, ep.end, ep.value, ep.baseline,
                            ep.reason, details=ep.details, alert_at=ep.alert_at)

    def to_state(self) -> list | None:
        return self.open.to_state() if self.open is not None else None

    def load_state(self, st: list | None) -> None:
        self.open = Episode.from_state(st) if st is not None else None


def judge(tracker: EpisodeTracker, window: Window, partners: list[Window], *, opens_watch: bool,
          combined_z: float, strong_change: float,
          reason: Callable[[Episode, Window, Window | None], tuple[str, dict]]
          ) -> tuple[list[AnomalyEvent], bool, Window | None]:
    """Decide a scored window's tier and hand it to the tracker; returns ``(events, flagged, partner)``.

    - alert: the window and a neighbouring window (``partners``) are both unusual, their evidence combined
      (Stouffer's ``(z1 + z2) / sqrt(2)``) reaches ``combined_z`` and at least one changed by
      ``strong_change``: the rise persisted over two resting windows in a row, like NightSignal's two nights;
    - watch: a clear rise in one window, where the feature allows a single window to open an episode;
    - continuation: an unusual window while an episode is open extends it.

    A flagged window must not be learned by the caller's baseline; ``partner`` is the neighbour that
    confirmed an alert, which now belongs to the episode too (the caller takes it back from its baseline
    if it had learned it).
    """
    tier = None
    partner = None
    if window.candidate:
        for p in partners:
            if (p.candidate and (window.bad_z + p.bad_z) / _SQRT2 >= combined_z
                    and max(window.bad_change, p.bad_change) >= strong_change):
                tier, partner = ALERT, p
                break
        if tier is None and window.strong and opens_watch:
            tier = WATCH
    if tier is None and not (window.candidate and tracker.open is not None):
        return [], False, None
    events = tracker.flag(window, tier, reason=lambda ep: reason(ep, window, partner), partner=partner)
    return events, True, partner


def learn_unflagged(tracker: EpisodeTracker, base: Baseline, x: float, flagged: bool) -> bool:
    """After :func:`judge`: an unflagged window's value ``x`` goes into its baseline and ends the open episode
    (the change did not persist); a flagged one does neither. Returns whether ``x`` was learned."""
    if not flagged:
        base.learn_one(x)
        tracker.close()
    return not flagged


__all__ = ["ALERT", "WATCH", "Episode", "EpisodeTracker", "Window", "classify", "judge", "learn_unflagged"]
