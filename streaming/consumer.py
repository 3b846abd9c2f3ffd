"""The detection worker's logic: feed each person's new readings to their detector, in time order.

For one person, the detector state, the consumer's position (cursor and queue version) and the events
it emitted are committed in ONE transaction: a crash or restart neither forgets a baseline nor emits an
event twice. State written by an incompatible detector version is rebuilt from stored history.
"""
from __future__ import annotations

import asyncio
import logging
import math
from time import monotonic
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from uuid import UUID
from zoneinfo import ZoneInfo

from app.core.db import Database
from app.core.observability import DETECTION_LATE_READINGS, DETECTION_RESCORES
from consent.catalog import DATA_TYPES
from streaming import repository as repo
from streaming.detection import STATE_VERSION, DetectorConfig, IncompatibleState, PersonDetector
from streaming.events import AnomalyEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerConfig:
    batch_people: int = 200          # people claimed per pass and tenant
    fresh_together: int = 50         # fresh people processed together, in one transaction
    max_readings_per_pass: int = 50_000
    rebuild_days: int = 120          # history replayed when state must be rebuilt
    gap_check_after: timedelta = timedelta(hours=6)
    gap_flush_lag: timedelta = timedelta(minutes=30)
    allowed_lateness: timedelta = timedelta(hours=36)   # how far behind its position the detector re-scores
    watermark_hold: timedelta = timedelta(days=5)       # heart rate this far behind the newest no longer holds
    # Fresh first: a person whose backlog starts further back than this is backfilling. Every pass serves the
    # fresh people first, then gives the backfilling ones a bounded share, in short passes each.
    backfill_after: timedelta = timedelta(hours=6)
    backfill_people: int = 20            # backfilling people claimed per pass and tenant
    backfill_readings_per_pass: int = 10_000
    backfill_share_s: float = 0.5        # a pass spends about this long on backfill (at least one person)


@dataclass
class PassResult:
    people: int = 0
    readings: int = 0
    events: int = 0
    rescored: bool = False
    too_late: int = 0
    more: bool = False  # someone's backlog was longer than one pass reads: go round again
    contended: bool = False  # someone was being processed by another worker: look again shortly

    def add(self, other: "PassResult") -> None:
        self.people += other.people
        self.readings += other.readings
        self.events += other.events
        self.too_late += other.too_late
        self.more = self.more or other.more
        self.rescored = self.rescored or other.rescored
        self.contended = self.contended or other.contended


# The position of a detector that has seen nothing: a checkpoint at it is a fresh detector.
BEGINNING = datetime(1970, 1, 1, tzinfo=timezone.utc)


class DetectionConsumer:
    """Consumes newly committed readings per person and emits anomaly events.

    Event time: the detector is fed each person's readings in time order up to the person's *watermark*,
    the newest time every live stream (metric × source) has reached, so a window closes only once every
    device that is still sending has passed it. A reading that arrives behind the detector's position
    (the cursor) by less than the allowed lateness makes the worker restore the checkpoint at or before it
    and feed the readings from there again; anything older is stored, counted and not scored.
    """

    def __init__(self, db: Database, *, detector_config: DetectorConfig | None = None,
                 config: ConsumerConfig | None = None):
        self.db = db
        self.detector_config = detector_config or DetectorConfig()
        self.config = config or ConsumerConfig()

    async def tenants(self) -> list[UUID]:
        async with self.db.transaction(tenant_id=None) as conn:
            return await repo.tenant_ids(conn)

    async def process_tenant(self, tenant_id: UUID, *, fresh: bool = True, backfill: bool = True) -> PassResult:
        """One pass over a tenant's people with unseen readings: every fresh person first (``fresh_together``
        at a time, :meth:`process_fresh`), then backfilling people for about ``backfill_share_s`` (at least
        one), each in a short pass. ``fresh=False`` / ``backfill=False`` leave that kind out: the worker runs
        the two kinds in loops of their own, so backfill never holds up a fresh pass. Several workers (tasks
        or processes) may run passes side by side: each person is processed by one of them at a time."""
        cfg = self.config
        total = PassResult()
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            fresh_people, backfilling = await repo.pending_people(
                conn, cfg.batch_people if fresh else 0,
                backfill_before=datetime.now(timezone.utc) - cfg.backfill_after,
                backfill_limit=cfg.backfill_people if backfill else 0)
        for start in range(0, len(fresh_people), cfg.fresh_together):
            total.add(await self.process_fresh(tenant_id, fresh_people[start:start + cfg.fresh_together]))
        share_ends = monotonic() + cfg.backfill_share_s
        for n, person_id in enumerate(backfilling):
            if n and monotonic() >= share_ends:
                total.more = True  # the rest of the backfill waits for the next pass, behind fresh work
                break
            total.add(await self.process_person(tenant_id, person_id, only_with_work=True,
                                                max_readings=cfg.backfill_readings_per_pass))
        # More people waiting than one pass claims: go round again.
        total.more = (total.more or (fresh and len(fresh_people) >= cfg.batch_people)
                      or (backfill and len(backfilling) >= cfg.backfill_people))
        return total

    async def process_person(self, tenant_id: UUID, person_id: UUID, *, only_with_work: bool = False,
                             max_readings: int | None = None) -> PassResult:
        """Feed the person's readings up to the watermark, at most ``max_readings`` (default: the configured
        pass length); state, position, checkpoints, the work rows read and the events are committed in one
        transaction. ``only_with_work``: nothing to do if another worker has just done the person's work."""
        cfg = self.config
        limit = min(max_readings or cfg.max_readings_per_pass, cfg.max_readings_per_pass)
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            if not await repo.try_lock_person(conn, person_id):
                return PassResult(contended=True)  # another worker has this person right now
            work = await repo.pending_work(conn, person_id)
            if only_with_work and not work.ids:
                return PassResult()
            zone = await repo.person_zone(conn, person_id) or "UTC"
            metrics = await repo.monitored_metrics(conn, person_id)
            stored = await repo.load_state(conn, person_id)
            if not metrics:
                # No monitoring consent for anything: keep no model at all.
                if stored:
                    await repo.delete_state(conn, person_id)
                await repo.delete_checkpoints(conn, person_id)
                await repo.done_work(conn, work.ids)
                return PassResult(people=1)
            detector, cursor, seen, rebuilt = self._restore(stored, person_id, zone)
            late = stored.late_readings if stored else 0
            if rebuilt:
                await repo.delete_checkpoints(conn, person_id)  # written by the same old version
            position, inclusive, too_late = cursor, False, 0
            replay_since: datetime | None = None
            if work.earliest is not None and cursor is not None and work.earliest <= cursor and not rebuilt:
                horizon = cursor - cfg.allowed_lateness
                if work.earliest < horizon:
                    too_late = await repo.count_received(conn, person_id, sorted(metrics), since=work.earliest,
                                                         before=horizon, received_at=work.queued_at)
                checkpoint = await repo.checkpoint_at_or_before(conn, person_id, max(work.earliest, horizon))
                restored = self._from_checkpoint(checkpoint, person_id)
                if restored is not None:
                    detector, seen = restored, checkpoint.readings_seen
                    position, inclusive = checkpoint.window_end, True
                    replay_since = checkpoint.created_at
                    await repo.delete_checkpoints(conn, person_id, after=position)
                else:
                    # Nothing to restore (state from before checkpoints were kept): these stay unscored.
                    too_late += await repo.count_received(conn, person_id, sorted(metrics),
                                                          since=max(work.earliest, horizon), before=cursor,
                                                          received_at=work.queued_at)
            _sync_consent(detector, metrics)
            if replay_since is not None:  # the checkpoint predates feedback the live state had taken in
                for _id, feature, kind, until in await repo.feedback_applied_since(conn, person_id, replay_since):
                    if kind == "false_alarm":
                        detector.apply_false_alarm(feature, until)
            feedback = await repo.pending_feedback(conn, person_id)
            for _id, feature, kind, until in feedback:
                if kind == "false_alarm":
                    detector.apply_false_alarm(feature, until)
            if feedback:
                await repo.mark_feedback_applied(conn, [row[0] for row in feedback])
                log.info("detection.feedback_applied person=%s count=%s", person_id, len(feedback))
            # Only streams with readings from the position on matter: to hold the watermark a stream must be
            # at or ahead of the cursor, and a second source of a metric matters only if it has readings to feed.
            heads = await repo.stream_heads(conn, person_id, sorted(metrics), since=position)
            until = watermark(heads, cfg.watermark_hold, cursor)
            if until is not None and stored is not None and stored.released_until is not None:
                # A re-score in several passes reads again all that was scored once: a stream whose newest
                # readings were just deleted does not hold back what the watermark had already let through.
                until = max(until, stored.released_until)
            several = len({metric for metric, _source, _head in heads}) < len(heads)
            # A checkpoint holds the readings before its window_end: read from window_end itself.
            after = position - _TICK if inclusive else position
            rows = await repo.readings_between(conn, person_id, sorted(metrics), after=after, until=until,
                                               limit=limit, work=work.ids, several_sources=several)
            complete = len(rows) < limit
            if not complete:
                rows = _whole_instants(rows)  # the next pass starts after the cursor: never split an instant
            checkpoints = [] if position is not None else [(BEGINNING, detector.to_bytes(), seen)]
            events, received, taken, fed = await asyncio.to_thread(
                _feed, detector, rows, ZoneInfo(zone), position, seen, cfg.allowed_lateness)
            checkpoints += taken
            if rows:
                new_cursor = rows[-1][0]
            elif inclusive:  # restored to just before window_end and nothing came after it
                new_cursor = position - _TICK
            else:
                new_cursor = cursor
            await repo.save_state(
                conn, tenant_id=tenant_id, person_id=person_id, state=detector.to_bytes(), state_version=STATE_VERSION,
                cursor_time=new_cursor, readings_seen=seen + fed, late_readings=late + too_late,
            )
            await repo.save_checkpoints(conn, tenant_id=tenant_id, person_id=person_id, state_version=STATE_VERSION,
                                        checkpoints=checkpoints)
            if checkpoints and new_cursor is not None:  # a new one may retire older ones
                await repo.prune_checkpoints(conn, person_id, new_cursor - cfg.allowed_lateness)
            await repo.done_work(conn, work.ids)
            if not complete:  # the rest is read on from the new cursor by the next pass
                await repo.queue_continuation(conn, tenant_id=tenant_id, person_id=person_id)
            inserted = await repo.insert_events(conn, tenant_id=tenant_id, person_id=person_id, events=events,
                                                received_at=received)
        if too_late:
            DETECTION_LATE_READINGS.inc(too_late)
            log.warning("detection.too_late person=%s readings=%s", person_id, too_late)
        if replay_since is not None:
            DETECTION_RESCORES.inc()
        if events:
            log.info("detection.events person=%s emitted=%s new=%s", person_id, len(events), inserted)
        return PassResult(people=1, readings=len(rows), events=inserted, rescored=replay_since is not None,
                          too_late=too_late, more=not complete)

    async def process_fresh(self, tenant_id: UUID, people: list[UUID]) -> PassResult:
        """:meth:`process_person` for several people at once, in one transaction and a fixed number of statements
        (a fresh person's pass is mostly its round trips, not its few new readings). Those the common case
        does not fit — no state yet, state to rebuild, late data to re-score, feedback to apply, no monitoring
        consent, several sources of a metric — each get their own :meth:`process_person` after it commits.
        What is committed per person is exactly what :meth:`process_person` commits."""
        cfg = self.config
        total = PassResult()
        alone: list[UUID] = []
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            locked = await repo.try_lock_people(conn, people)
            total.contended = len(locked) < len(people)  # another worker has some of them right now
            works = await repo.pending_work_of(conn, locked)
            locked = [p for p in locked if p in works]  # someone has just done the others' work
            if not locked:
                return total
            zones = await repo.person_zones(conn, locked)
            states = await repo.load_states(conn, locked)
            consented = await repo.monitored_metrics_of(conn, locked)
            feedback = await repo.with_pending_feedback(conn, locked)
            plans: list[tuple[UUID, PersonDetector, repo.StoredState, repo.Work, list[str]]] = []
            for person_id in locked:
                stored, work, metrics = states.get(person_id), works[person_id], consented.get(person_id)
                if (stored is None or stored.cursor_time is None or not metrics or person_id in feedback
                        or (work.earliest is not None and work.earliest <= stored.cursor_time)):
                    alone.append(person_id)
                    continue
                try:
                    detector = PersonDetector.from_bytes(stored.state, self.detector_config)
                except IncompatibleState:
                    alone.append(person_id)
                    continue
                _sync_consent(detector, metrics)
                plans.append((person_id, detector, stored, work, sorted(metrics)))
            heads = await repo.stream_heads_of(conn, [(p, metrics, stored.cursor_time)
                                                      for p, _d, stored, _w, metrics in plans])
            reads = []
            for plan in list(plans):
                person_id, _detector, stored, _work, metrics = plan
                mine = heads.get(person_id, [])
                if len({metric for metric, _source, _head in mine}) < len(mine):
                    plans.remove(plan)  # several sources of a metric: the hour's source is chosen alone
                    alone.append(person_id)
                    continue
                until = watermark(mine, cfg.watermark_hold, stored.cursor_time)
                if until is not None and stored.released_until is not None:
                    until = max(until, stored.released_until)
                reads.append((person_id, metrics, stored.cursor_time, until))
            limit = cfg.max_readings_per_pass
            done = [i for _p, _d, _s, work, _m in plans for i in work.ids]
            rows = await repo.readings_of(conn, reads, limit=limit, work=done) if reads else {}
            fed = await asyncio.to_thread(_feed_each, plans, rows, zones, cfg.allowed_lateness, limit)
            states_out, checkpoints, horizons, more = [], [], [], []
            for (person_id, detector, stored, work, _metrics), (rows_fed, complete, _events, _received, taken, n) in (
                    zip(plans, fed)):
                cursor = rows_fed[-1][0] if rows_fed else stored.cursor_time
                states_out.append((person_id, detector.to_bytes(), cursor, stored.readings_seen + n,
                                   stored.late_readings))
                checkpoints += [(person_id, *c) for c in taken]
                if taken:
                    horizons.append((person_id, cursor - cfg.allowed_lateness))
                if not complete:
                    more.append(person_id)
            await repo.save_states(conn, tenant_id=tenant_id, state_version=STATE_VERSION, states=states_out)
            await repo.save_checkpoints_of(conn, tenant_id=tenant_id, state_version=STATE_VERSION,
                                           checkpoints=checkpoints)
            await repo.prune_checkpoints_of(conn, horizons)
            await repo.done_work(conn, done)
            await repo.queue_continuations(conn, tenant_id=tenant_id, people=more)
            inserted = {}
            for (person_id, *_), (_rows, _complete, events, received, _taken, _n) in zip(plans, fed):
                if events:
                    inserted[person_id] = await repo.insert_events(conn, tenant_id=tenant_id, person_id=person_id,
                                                                   events=events, received_at=received)
        for (person_id, *_), (rows_fed, complete, events, _received, _taken, _n) in zip(plans, fed):
            if events:
                log.info("detection.events person=%s emitted=%s new=%s", person_id, len(events), inserted[person_id])
            total.add(PassResult(people=1, readings=len(rows_fed), events=inserted.get(person_id, 0),
                                 more=not complete))
        for person_id in alone:
            total.add(await self.process_person(tenant_id, person_id, only_with_work=True))
        return total

    def _restore(self, stored: repo.StoredState | None, person_id: UUID, zone: str
                 ) -> tuple[PersonDetector, datetime | None, int, bool]:
        """``(detector, cursor, readings_seen, rebuilt)`` from the stored state."""
        if stored is not None:
            try:
                return (PersonDetector.from_bytes(stored.state, self.detector_config), stored.cursor_time,
                        stored.readings_seen, False)
            except IncompatibleState as exc:
                # Rebuild from stored history: start over from a window before the old cursor.
                log.warning("detection.state_rebuild person=%s reason=%s", person_id, exc)
                start = (stored.cursor_time or datetime.now(timezone.utc)) - timedelta(days=self.config.rebuild_days)
                return PersonDetector(str(person_id), zone, self.detector_config), start, 0, True
        return PersonDetector(str(person_id), zone, self.detector_config), None, 0, False

    def _from_checkpoint(self, checkpoint: repo.Checkpoint | None, person_id: UUID) -> PersonDetector | None:
        if checkpoint is None:
            return None
        try:
            return PersonDetector.from_bytes(checkpoint.state, self.detector_config)
        except IncompatibleState as exc:
            log.warning("detection.checkpoint_unreadable person=%s reason=%s", person_id, exc)
            return None

    async def apply_feedback(self, tenant_id: UUID, person_id: UUID) -> None:
        """Apply care-team feedback now, even if no new reading comes (a pass with nothing to read)."""
        await self.process_person(tenant_id, person_id)

    async def check_gaps(self, tenant_id: UUID, now: datetime | None = None) -> int:
        """Report data gaps for people who have gone quiet. The detector is only *peeked* at: its saved state
        does not move, so readings that sync late are still scored when they arrive."""
        now = now or datetime.now(timezone.utc)
        emitted = 0
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            people = await repo.idle_people(conn, now - self.config.gap_check_after, self.config.batch_people)
        for person_id in people:
            async with self.db.transaction(tenant_id=tenant_id) as conn:
                if not await repo.try_lock_person(conn, person_id):
                    continue
                stored = await repo.load_state(conn, person_id)
                if stored is None:
                    continue
                try:
                    detector = PersonDetector.from_bytes(stored.state, self.detector_config)
                except IncompatibleState:
                    continue
                events = [e for e in detector.flush(now - self.config.gap_flush_lag) if e.kind == "data_gap"]
                emitted += await repo.insert_events(conn, tenant_id=tenant_id, person_id=person_id, events=events)
                await repo.touch_state(conn, person_id)
        return emitted

    async def drop_metric(self, tenant_id: UUID, person_id: UUID, metric: str) -> None:
        """Consent for ``metric`` was withdrawn: forget everything the detector learned from it."""
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            stored = await repo.load_state(conn, person_id)
            if stored is None:
                return
            if not await repo.monitored_metrics(conn, person_id):
                await repo.delete_state(conn, person_id)
                await repo.delete_checkpoints(conn, person_id)
                log.info("detection.state_deleted person=%s reason=no_monitoring_consent", person_id)
                return
            try:
                detector = PersonDetector.from_bytes(stored.state, self.detector_config)
            except IncompatibleState:
                await repo.delete_state(conn, person_id)
                await repo.delete_checkpoints(conn, person_id)
                return
            dropped = detector.drop_feature_for_metric(metric)
            await repo.save_state(conn, tenant_id=tenant_id, person_id=person_id, state=detector.to_bytes(),
                                  state_version=STATE_VERSION, cursor_time=stored.cursor_time,
                                  readings_seen=stored.readings_seen, late_readings=stored.late_readings)
            # The checkpoints hold what was learned from it too: they forget it the same way.
            rewritten = []
            for window_end, state, seen in await repo.all_checkpoints(conn, person_id):
                try:
                    past = PersonDetector.from_bytes(state, self.detector_config)
                except IncompatibleState:
                    continue
                past.drop_feature_for_metric(metric)
                rewritten.append((window_end, past.to_bytes(), seen))
            await repo.delete_checkpoints(conn, person_id)
            await repo.save_checkpoints(conn, tenant_id=tenant_id, person_id=person_id, state_version=STATE_VERSION,
                                        checkpoints=rewritten)
        log.info("detection.consent_dropped person=%s metric=%s features=%s", person_id, metric, dropped)


def _whole_instants(rows: list[tuple]) -> list[tuple]:
    """Drop the trailing readings that share the last timestamp (heart rate and steps often do), so a pass
    that stops at its row limit never leaves part of an instant behind the cursor."""
    last, cut = rows[-1][0], len(rows)
    while cut > 0 and rows[cut - 1][0] == last:
        cut -= 1
    return rows[:cut] if cut else rows


def _sync_consent(detector: PersonDetector, monitored: set[str]) -> None:
    """No model is kept or scored for a data type without monitoring consent."""
    for metric in DATA_TYPES:
        if metric in monitored:
            detector.allow_metric(metric)
        else:
            detector.drop_feature_for_metric(metric)


# Only a continuously sampled signal holds the watermark: its silence means "not synced yet". Steps come
# only while someone walks (a person ill in bed sends none), and sleep sessions, blood pressure or a daily
# summary come now and then: waiting for them would hold everything else back, so theirs are late data
# when they are late (re-scored within the allowed lateness).
HOLDING_METRICS = frozenset({"heart_rate"})


def watermark(heads: list[tuple[str, str, datetime]], hold: timedelta, cursor: datetime | None) -> datetime | None:
    """How far the detector may read: the oldest head among the streams that hold it back.

    A heart-rate stream (one per source) holds the watermark while its newest reading is at or after the
    detector's position (``cursor``) and within ``hold`` of the newest reading of any stream: a watch that
    syncs a day late keeps the night open for its heart rate. A stream already behind the position (a
    device that stopped for longer than the hold, or a second device uploading its past) holds nothing:
    what it sends is late data. None when the person has no readings."""
    times = [head for _metric, _source, head in heads if head is not None]
    if not times:
        return None
    newest = max(times)
    holding = [head for metric, _source, head in heads
               if head is not None and metric in HOLDING_METRICS and head >= newest - hold
               and (cursor is None or head >= cursor)]
    return min(holding) if holding else newest


_TICK = timedelta(microseconds=1)


def _feed(detector: PersonDetector, rows: list[tuple], zone: ZoneInfo, position: datetime | None, seen: int,
          lateness: timedelta) -> tuple[list[AnomalyEvent], list, list[tuple[datetime, bytes, int]], int]:
    """Feed rows in order; each event is paired with when the reading that revealed it was received.

    Also takes a checkpoint at every local midnight the rows cross (the state then holds exactly the
    readings before it), skipping those too old to be restored again. Returns the events, their
    received times, the checkpoints and how many readings were fed."""
    events: list[AnomalyEvent] = []
    received: list = []
    checkpoints: list[tuple[datetime, bytes, int]] = []
    if not rows:
        return events, received, checkpoints, 0
    keep_from = (rows[-1][0] - lateness - timedelta(days=1)).timestamp()
    boundary = _next_midnight(position, zone).timestamp() if position is not None else math.inf
    process = detector.process_epoch
    fed = 0
    for time, metric, value, value2, received_at, counted in rows:
        ts = time.timestamp()
        if ts >= boundary:
            midnight = _midnight_at_or_before(time, zone)
            if midnight.timestamp() >= keep_from:
                checkpoints.append((midnight, detector.to_bytes(), seen + fed))
            boundary = _next_midnight(time, zone).timestamp()
        elif boundary == math.inf:
            boundary = _next_midnight(time, zone).timestamp()
        if not counted:
            continue
        fed += 1
        out = process(metric, ts, value, value2)
        if out:
            events.extend(out)
            received.extend([received_at] * len(out))
    return events, received, checkpoints, fed


def _feed_each(plans: list[tuple], rows: dict[UUID, list[tuple]], zones: dict[UUID, str], lateness: timedelta,
               limit: int) -> list[tuple[list[tuple], bool, list[AnomalyEvent], list, list, int]]:
    """:func:`_feed` for each planned person from their position (the cursor): per person ``(rows fed, whether
    they were all there was, events, their received times, checkpoints, readings fed)``."""
    out = []
    for person_id, detector, stored, _work, _metrics in plans:
        mine = rows.get(person_id, [])
        complete = len(mine) < limit
        if not complete:
            mine = _whole_instants(mine)
        events, received, taken, fed = _feed(detector, mine, ZoneInfo(zones.get(person_id) or "UTC"),
                                             stored.cursor_time, stored.readings_seen, lateness)
        out.append((mine, complete, events, received, taken, fed))
    return out


def _midnight_at_or_before(t: datetime, zone: ZoneInfo) -> datetime:
    local = t.astimezone(zone)
    return datetime.combine(local.date(), dtime(0), tzinfo=zone).astimezone(timezone.utc)


def _next_midnight(t: datetime, zone: ZoneInfo) -> datetime:
    local = t.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), dtime(0), tzinfo=zone).astimezone(timezone.utc)
