"""The detection worker's logic: feed each person's new readings to their detector, in time order.

For one person, the detector state, the consumer's position (cursor and queue version) and the events
it emitted are committed in ONE transaction: a crash or restart neither forgets a baseline nor emits an
event twice. State written by an incompatible detector version is rebuilt from stored history.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from app.core.db import Database
from consent.catalog import DATA_TYPES
from streaming import repository as repo
from streaming.detection import STATE_VERSION, DetectorConfig, IncompatibleState, PersonDetector
from streaming.events import AnomalyEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerConfig:
    batch_people: int = 200          # people claimed per pass and tenant
    max_readings_per_pass: int = 50_000
    rebuild_days: int = 120          # history replayed when state must be rebuilt
    gap_check_after: timedelta = timedelta(hours=6)
    gap_flush_lag: timedelta = timedelta(minutes=30)


@dataclass
class PassResult:
    people: int = 0
    readings: int = 0
    events: int = 0


class DetectionConsumer:
    """Consumes newly committed readings per person and emits anomaly events."""

    def __init__(self, db: Database, *, detector_config: DetectorConfig | None = None,
                 config: ConsumerConfig | None = None):
        self.db = db
        self.detector_config = detector_config or DetectorConfig()
        self.config = config or ConsumerConfig()

    async def tenants(self) -> list[UUID]:
        async with self.db.transaction(tenant_id=None) as conn:
            return await repo.tenant_ids(conn)

    async def process_tenant(self, tenant_id: UUID) -> PassResult:
        """One pass over a tenant's people with unseen readings."""
        total = PassResult()
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            pending = await repo.pending_people(conn, self.config.batch_people)
        for person_id in pending:
            result = await self.process_person(tenant_id, person_id)
            total.people += result.people
            total.readings += result.readings
            total.events += result.events
        return total

    async def process_person(self, tenant_id: UUID, person_id: UUID) -> PassResult:
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            if not await repo.try_lock_person(conn, person_id):
                return PassResult()  # another worker has this person right now
            work = await repo.work_ids(conn, person_id)
            zone = await repo.person_zone(conn, person_id) or "UTC"
            metrics = await repo.monitored_metrics(conn, person_id)
            stored = await repo.load_state(conn, person_id)
            detector, cursor, seen = self._restore(stored, person_id, zone)
            if not metrics:
                # No monitoring consent for anything: keep no model at all.
                if stored:
                    await repo.delete_state(conn, person_id)
                await repo.done_work(conn, work)
                return PassResult(people=1)
            _sync_consent(detector, metrics)
            feedback = await repo.pending_feedback(conn, person_id)
            for _id, feature, kind, until in feedback:
                if kind == "false_alarm":
                    detector.apply_false_alarm(feature, until)
            if feedback:
                await repo.mark_feedback_applied(conn, [row[0] for row in feedback])
                log.info("detection.feedback_applied person=%s count=%s", person_id, len(feedback))
            rows = await repo.readings_after(conn, person_id, cursor, sorted(metrics), self.config.max_readings_per_pass)
            complete = len(rows) < self.config.max_readings_per_pass
            if not complete:
                rows = _whole_instants(rows)  # the next pass starts after the cursor: never split an instant
            events, received = await asyncio.to_thread(_feed, detector, rows)
            if rows:
                cursor = rows[-1][0]
            await repo.save_state(
                conn, tenant_id=tenant_id, person_id=person_id, state=detector.to_bytes(), state_version=STATE_VERSION,
                cursor_time=cursor, readings_seen=seen + len(rows),
            )
            if complete:  # otherwise the rows stay and the next pass reads on from the new cursor
                await repo.done_work(conn, work)
            inserted = await repo.insert_events(conn, tenant_id=tenant_id, person_id=person_id, events=events,
                                                received_at=received)
        if events:
            log.info("detection.events person=%s emitted=%s new=%s", person_id, len(events), inserted)
        return PassResult(people=1, readings=len(rows), events=inserted)

    def _restore(self, stored: repo.StoredState | None, person_id: UUID, zone: str
                 ) -> tuple[PersonDetector, datetime | None, int]:
        if stored is not None:
            try:
                return (PersonDetector.from_bytes(stored.state, self.detector_config), stored.cursor_time,
                        stored.readings_seen)
            except IncompatibleState as exc:
                # Rebuild from stored history: start over from a window before the old cursor.
                log.warning("detection.state_rebuild person=%s reason=%s", person_id, exc)
                start = (stored.cursor_time or datetime.now(timezone.utc)) - timedelta(days=self.config.rebuild_days)
                return PersonDetector(str(person_id), zone, self.detector_config), start, 0
        return PersonDetector(str(person_id), zone, self.detector_config), None, 0

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
                log.info("detection.state_deleted person=%s reason=no_monitoring_consent", person_id)
                return
            try:
                detector = PersonDetector.from_bytes(stored.state, self.detector_config)
            except IncompatibleState:
                await repo.delete_state(conn, person_id)
                return
            dropped = detector.drop_feature_for_metric(metric)
            await repo.save_state(conn, tenant_id=tenant_id, person_id=person_id, state=detector.to_bytes(),
                                  state_version=STATE_VERSION, cursor_time=stored.cursor_time,
                                  readings_seen=stored.readings_seen)
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


def _feed(detector: PersonDetector, rows: list[tuple]) -> tuple[list[AnomalyEvent], list]:
    """Feed rows in order; each event is paired with when the reading that revealed it was received."""
    events: list[AnomalyEvent] = []
    received: list = []
    process = detector.process_epoch
    for time, metric, value, value2, received_at in rows:
        out = process(metric, time.timestamp(), value, value2)
        if out:
            events.extend(out)
            received.extend([received_at] * len(out))
    return events, received
