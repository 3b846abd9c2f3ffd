"""Storing readings: consent gate, deduplication on the natural key, and group commit.

Many small batches (WebSocket frames, HTTP requests) arriving together are written in one transaction
with one binary COPY, per tenant. A caller's ``store`` returns only after its readings are committed,
so an acknowledgement always means "in the database". The queue is bounded: a slow database slows
the callers down instead of growing memory.
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from app.core.db import Database
from app.core.errors import DatabaseUnavailable, TooManySources
from app.core.observability import INGEST_COMMIT_SECONDS, INGEST_GROUP_ROWS
from consent import repository as consent_repo
from consent.catalog import MONITORING
from streaming.repository import INGEST_CHANNEL
from streaming.rollup import repository as rollup_repo
from streaming.validation import Reading

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, NO_CONSENT = "accepted", "duplicate", "no_consent"

_STAGE = """CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    idx integer, time timestamptz, person_id uuid, metric text, value double precision,
    value2 double precision, details jsonb, source text, utc_offset_min smallint) ON COMMIT DELETE ROWS;
CREATE OR REPLACE TEMP VIEW ingest_coded AS
  WITH names AS MATERIALIZED (  -- a look-up per person and source of the stage, not a pass over the tenant
    SELECT k.person_id, k.source, (SELECT p.person_no FROM people p WHERE p.id = k.person_id) AS person_no,
           (SELECT so.source_no FROM sources so WHERE so.person_id = k.person_id AND so.source = k.source)
             AS source_no
      FROM (SELECT DISTINCT person_id, source FROM ingest_stage) AS k)
  SELECT s.*, n.person_no, d.code AS metric_no, n.source_no
    FROM ingest_stage s JOIN names n ON n.person_id = s.person_id AND n.source = s.source
    LEFT JOIN data_types d ON d.name = s.metric"""
# ingest_coded: the stage's rows with the lean table's numbers (people.person_no, data_types.code,
# sources.source_no: the sources are noted before the insert), the one definition every statement below and
# beidou_ingest_staged (migration 0021) read. A row without its numbers fails the insert loudly (NOT NULL)
# instead of vanishing from it.
_COPY = ("COPY ingest_stage (idx, time, person_id, metric, value, value2, details, source, "
         "utc_offset_min) FROM STDIN (FORMAT BINARY)")
_COPY_TYPES = ["int4", "timestamptz", "uuid", "text", "float8", "float8", "jsonb", "text", "int2"]
# A diastolic or sleep stages go beside the reading, for the rows this transaction stored.
_INSERT_EXTRA = """INSERT INTO readings_hot_extra (time, person_no, tenant_no, metric_no, source_no, value2, details)
                   SELECT DISTINCT ON (r.person_no, r.metric_no, r.time, r.source_no)
                          r.time, r.person_no, r.tenant_no, r.metric_no, r.source_no, s.value2, s.details
                     FROM ingest_coded s JOIN readings_hot r ON r.person_no = s.person_no AND r.metric_no = s.metric_no
                                    AND r.time = s.time AND r.source_no = s.source_no
                    WHERE (s.value2 IS NOT NULL OR s.details IS NOT NULL) AND r.received_at = now()
                      AND r.time BETWEEN %s AND %s
                    ORDER BY r.person_no, r.metric_no, r.time, r.source_no, s.idx"""
# Rows inserted by this transaction carry received_at = now(); anything else was there before us.
_DUPLICATES = """SELECT s.idx FROM ingest_coded s JOIN readings_hot r
                    ON r.person_no = s.person_no AND r.metric_no = s.metric_no AND r.source_no = s.source_no
                   AND r.time = s.time
                 WHERE r.time BETWEEN %s AND %s AND r.received_at <> now()"""
# Days past the hot window are packed (readings_packed): a resend of a reading packed there would otherwise be
# stored again. A dense signal's minute already holding a reading from that source, or a sparse reading's exact
# time, is a repeat; anything else for a packed day is new (late) data and goes to the hot table to be merged.
_ALREADY_PACKED = """DELETE FROM ingest_stage s USING readings_packed p
                      WHERE p.person_id = s.person_id AND p.metric = s.metric AND p.source = s.source
                        AND p.day = (s.time AT TIME ZONE 'UTC')::date
                        AND CASE WHEN beidou_packs_by_minute(s.metric)
                                 THEN coalesce(p.n[floor(extract(epoch FROM s.time - (p.day::timestamp AT TIME ZONE 'UTC'))
                                                         / 60)::int + 1], 0) > 0
                                 ELSE round(extract(epoch FROM s.time - (p.day::timestamp AT TIME ZONE 'UTC')) * 1000)::int
                                      = ANY(p.at_ms) END
                  RETURNING s.idx"""
# Everything after the COPY in one round trip (migration 0021): note the stage's sources, insert its rows into
# readings_hot (plainly; on a stored key, again without the stored ones), queue detection work per person with
# the oldest reading time stored now, notify the worker. True if some staged rows were not stored (a resend).
_STORE_STAGED = "SELECT beidou_ingest_staged(%s, %s)"


@dataclass(slots=True)
class _Job:
    tenant_id: UUID
    person_id: UUID
    readings: list[Reading]  # or plain tuples in Reading's field order
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class IngestWriter:
    """Group-commit writer shared by every connection of one process."""

    def __init__(self, db: Database, *, writers: int = 3, max_rows_per_commit: int = 20_000, queue_size: int = 512,
                 hot_days: int = 30):
        self.db = db
        # Readings older than this may belong to a packed day (checked only then: the common group is all recent).
        self.packed_before = timedelta(days=max(0, hot_days - 1))
        self.writers = writers
        self.max_rows = max_rows_per_commit
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._tasks: list[asyncio.Task] = []
        self._staged: weakref.WeakSet = weakref.WeakSet()  # connections whose temp stage table exists
        self.lag = 0.0  # how long the last job taken had waited in the queue (seconds)

    def overloaded(self, lag_s: float = 0.1) -> bool:
        """Jobs wait longer for a writer than ``lag_s``: callers that can should send less (WebSocket ``slow_down``)."""
        return self.lag > lag_s

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"ingest-writer-{i}") for i in range(self.writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def store(self, tenant_id: UUID, person_id: UUID, readings: list[Reading]) -> list[str]:
        """Store a person's validated readings; one outcome per reading, after the commit."""
        if not readings:
            return []
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(tenant_id, person_id, readings, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            self.lag = time.perf_counter() - jobs[0].queued_at
            rows = len(jobs[0].readings)
            while rows < self.max_rows and not self.queue.empty():
                job = self.queue.get_nowait()
                jobs.append(job)
                rows += len(job.readings)
            by_tenant: dict[UUID, list[_Job]] = defaultdict(list)
            for job in jobs:
                by_tenant[job.tenant_id].append(job)
            for tenant_id, group in by_tenant.items():
                await self._commit_group(tenant_id, group)

    async def _commit_group(self, tenant_id: UUID, jobs: list[_Job]) -> None:
        for attempt in range(3):
            try:
                outcomes = await self._write(tenant_id, jobs)
                break
            except psycopg.errors.DeadlockDetected:
                # Two groups inserting overlapping keys in different orders; the loser simply tries again.
                log.warning("ingest.deadlock_retry attempt=%s", attempt)
                if attempt == 2:
                    return _fail(jobs, DatabaseUnavailable("write conflict, please retry"))
            except psycopg.errors.CheckViolation as exc:
                if not TooManySources.raised_by(exc):
                    log.exception("ingest.group_failed tenant=%s", tenant_id)
                    return _fail(jobs, exc)
                # A person past the sources limit: the group is written again job by job, so only theirs fails.
                if len(jobs) == 1:
                    return _fail(jobs, TooManySources())
                for job in jobs:
                    await self._commit_group(tenant_id, [job])
                return None
            except DatabaseUnavailable as exc:
                return _fail(jobs, exc)
            except Exception as exc:  # keep the writer alive; the callers see the error
                log.exception("ingest.group_failed tenant=%s", tenant_id)
                return _fail(jobs, exc)
        done = time.perf_counter()
        for job, result in zip(jobs, outcomes):
            INGEST_COMMIT_SECONDS.observe(done - job.queued_at)
            if not job.future.done():
                job.future.set_result(result)

    async def _write(self, tenant_id: UUID, jobs: list[_Job]) -> list[list[str]]:
        outcomes: list[list[str]] = [[NO_CONSENT] * len(job.readings) for job in jobs]
        staged_now = None
        async with self.db.transaction(tenant_id=tenant_id) as conn:
            people = list({job.person_id for job in jobs})
            allowed: dict[UUID, set[str]] = defaultdict(set)
            for person, data_type in await consent_repo.granted_pairs(conn, people, MONITORING):
                allowed[person].add(data_type)
            rows: list[tuple] = []
            where: list[tuple[int, int]] = []
            for j, job in enumerate(jobs):
                person, readings, result = job.person_id, job.readings, outcomes[j]
                metrics = allowed.get(person, ())
                if metrics and all(r[1] in metrics for r in readings):  # the common case: every type consented
                    base = len(rows)
                    outcomes[j] = [ACCEPTED] * len(readings)
                    where.extend((j, i) for i in range(len(readings)))
                    rows.extend((base + i, t, person, m, v, v2, None if d is None else Jsonb(d), src, off)
                                for i, (t, m, v, v2, d, src, off) in enumerate(readings))
                    continue
                for i, (t, m, v, v2, d, src, off) in enumerate(readings):
                    if m in metrics:
                        result[i] = ACCEPTED
                        where.append((j, i))
                        rows.append((len(rows), t, person, m, v, v2, None if d is None else Jsonb(d), src, off))
            if not rows:
                return outcomes
            INGEST_GROUP_ROWS.observe(len(rows))
            if conn not in self._staged:
                # Created inside this transaction: a rollback (statement timeout, deadlock) undoes it, so the
                # connection counts as staged only once the transaction has committed.
                await conn.execute(_STAGE)
                staged_now = conn
            async with conn.cursor() as cur:
                async with cur.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    for row in rows:
                        await copy.write_row(row)
                packed: set[int] = set()
                oldest, newest = min(r[1] for r in rows), max(r[1] for r in rows)
                if oldest < datetime.now(timezone.utc) - self.packed_before:
                    await cur.execute(_ALREADY_PACKED)
                    packed = {idx for (idx,) in await cur.fetchall()}
                await cur.execute(_STORE_STAGED, (tenant_id, INGEST_CHANNEL))
                resent = (await cur.fetchone())[0]
                duplicates: set[int] = set(packed)
                if resent:
                    # Rare path (a resent batch): find which rows were already stored, and repeats within
                    # this group, without paying for it on every commit.
                    await cur.execute(_DUPLICATES, (oldest, newest))
                    duplicates |= set(_duplicates({idx for (idx,) in await cur.fetchall()},
                                                  [r for r in rows if r[0] not in packed]))
                for idx in duplicates:
                    j, i = where[idx]
                    outcomes[j][i] = DUPLICATE
                if len(duplicates) < len(rows) and any(r[5] is not None or r[6] is not None for r in rows):
                    await cur.execute(_INSERT_EXTRA, (oldest, newest))
                if oldest < rollup_repo.this_hour():  # hours the chart roll-up may hold are taken again
                    await rollup_repo.mark_past_hours(conn, ((r[2], r[3], r[1]) for r in rows
                                                             if r[0] not in duplicates))
        if staged_now is not None:
            self._staged.add(staged_now)
        return outcomes


def _duplicates(stored_before: set[int], rows: list[tuple]) -> list[int]:
    """Staged rows that were not stored now: already in the table, or a repeat of an earlier staged row."""
    seen: set[tuple] = set()
    duplicates = []
    for row in rows:
        key = (row[2], row[3], row[7], row[1])  # person, metric, source, time
        if row[0] in stored_before or key in seen:
            duplicates.append(row[0])
        seen.add(key)
    return duplicates


def _fail(jobs: list[_Job], exc: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)
