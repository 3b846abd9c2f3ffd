"""SQL of the detection worker. Every function runs inside a tenant-scoped transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from app.core import channels
from consent import repository as consent_repo
from consent.catalog import MONITORING
from streaming.events import AnomalyEvent

ANOMALY_CHANNEL = channels.ANOMALY.name
INGEST_CHANNEL = channels.INGEST.name  # a person of this tenant (payload) has work for the detection worker


@dataclass(frozen=True, slots=True)
class StoredState:
    state: bytes
    state_version: int
    cursor_time: datetime | None
    readings_seen: int
    late_readings: int = 0
    released_until: datetime | None = None  # the newest reading time ever fed: re-scores read up to it


async def tenant_ids(conn: psycopg.AsyncConnection) -> list[UUID]:
    cur = await conn.execute("SELECT beidou_tenant_ids()")
    return [row[0] for row in await cur.fetchall()]


async def pending_people(conn: psycopg.AsyncConnection, limit: int, *, backfill_before: datetime,
                         backfill_limit: int) -> tuple[list[UUID], list[UUID]]:
    """People of the current tenant with readings the detector has not seen: ``(fresh, backfilling)``. A person
    is backfilling when their backlog starts before ``backfill_before``: the detector's position (its cursor),
    or for a person it has not seen yet the oldest reading announced. Fresh people come longest waiting first.
    Backfilling people who are also live (a reading of theirs is from ``backfill_before`` on: their fresh
    readings wait behind their own backlog) come before every other backfilling person, least behind first;
    the others longest waiting first."""
    cur = await conn.execute(
        """SELECT person_id, backfill FROM (
             SELECT person_id, backfill,
                    row_number() OVER (PARTITION BY backfill ORDER BY l.live IS NOT NULL DESC,
                                       CASE WHEN l.live THEN position END DESC, first) AS n
               FROM (SELECT w.person_id, min(w.id) AS first, coalesce(s.cursor_time, min(w.earliest_time)) AS position,
                            coalesce(coalesce(s.cursor_time, min(w.earliest_time)) < %(before)s, false) AS backfill
                       FROM detection_work w LEFT JOIN detector_state s ON s.person_id = w.person_id
                      GROUP BY w.person_id, s.cursor_time) p
               -- live: the newest reading of one of their streams (a backward step down the hot table's key, as
               -- for stream heads) is from the backfill age on; looked up for backfilling people only, and only
               -- when backfill is asked for (the fresh loop asks for none)
               LEFT JOIN LATERAL (
                 SELECT true AS live FROM people pp JOIN sources s ON s.person_id = pp.id CROSS JOIN data_types d
                  CROSS JOIN LATERAL (SELECT max(r.time) AS head FROM readings_hot r
                                       WHERE r.person_no = pp.person_no AND r.metric_no = d.code
                                         AND r.source_no = s.source_no AND r.time >= %(before)s) h
                  WHERE p.backfill AND %(backfill_limit)s > 0 AND pp.id = p.person_id AND h.head IS NOT NULL
                  LIMIT 1) l ON true) q
            WHERE n <= CASE WHEN backfill THEN %(backfill_limit)s ELSE %(limit)s END
            ORDER BY backfill, n""", {"before": backfill_before, "backfill_limit": backfill_limit, "limit": limit})
    fresh: list[UUID] = []
    backfill: list[UUID] = []
    for person_id, behind in await cur.fetchall():
        (backfill if behind else fresh).append(person_id)
    return fresh, backfill


async def idle_people(conn: psycopg.AsyncConnection, idle_since: datetime, limit: int) -> list[UUID]:
    """People whose detector has seen nothing new since ``idle_since`` (candidates for a data-gap check)."""
    cur = await conn.execute(
        "SELECT person_id FROM detector_state WHERE updated_at < %s ORDER BY updated_at LIMIT %s",
        (idle_since, limit),
    )
    return [row[0] for row in await cur.fetchall()]


async def try_lock_person(conn: psycopg.AsyncConnection, person_id: UUID) -> bool:
    """One worker at a time per person, across processes; released at the end of the transaction."""
    return bool(await try_lock_people(conn, [person_id]))


async def try_lock_people(conn: psycopg.AsyncConnection, people: list[UUID]) -> list[UUID]:
    """:func:`try_lock_person` for several people in one statement: those locked now, in the given order
    (the others are being processed by another worker)."""
    cur = await conn.execute(
        """SELECT p FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(p, n)
            WHERE pg_try_advisory_xact_lock(hashtextextended(p::text, 7)) ORDER BY n""", (people,))
    return [row[0] for row in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class Work:
    """The person's work rows visible now, and how far back they reach."""

    ids: list[int]
    earliest: datetime | None  # oldest reading time they announce (None: only readings after the cursor)
    queued_at: list[datetime]  # their commits' times, which are the received_at of the readings they stored


async def pending_work(conn: psycopg.AsyncConnection, person_id: UUID, limit: int = 10_000) -> Work:
    """Read BEFORE the readings, so every reading the rows announce is seen."""
    return (await pending_work_of(conn, [person_id], limit)).get(person_id, Work([], None, []))


async def pending_work_of(conn: psycopg.AsyncConnection, people: list[UUID], limit: int = 10_000
                          ) -> dict[UUID, Work]:
    """:func:`pending_work` for several people in one statement (those with none are left out)."""
    cur = await conn.execute(
        """SELECT person_id, id, earliest_time, created_at FROM (
             SELECT person_id, id, earliest_time, created_at,
                    row_number() OVER (PARTITION BY person_id ORDER BY id) AS n
               FROM detection_work WHERE person_id = ANY(%s)) w
            WHERE n <= %s ORDER BY person_id, id""", (people, limit))
    rows: dict[UUID, list[tuple]] = {}
    for person_id, *row in await cur.fetchall():
        rows.setdefault(person_id, []).append(row)
    out = {}
    for person_id, work in rows.items():
        times = [r[1] for r in work if r[1] is not None]
        out[person_id] = Work([r[0] for r in work], min(times) if times else None, sorted({r[2] for r in work}))
    return out


async def request_rescore(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID,
                          earliest: datetime | None) -> None:
    """Ask the worker to score the person's readings again from ``earliest`` (readings replaced or deleted
    there), in the caller's transaction: the worker restores the checkpoint at or before it (within the
    allowed lateness) and reads the readings as they are now."""
    await conn.execute("INSERT INTO detection_work (tenant_id, person_id, earliest_time) VALUES (%s, %s, %s)",
                       (tenant_id, person_id, earliest))
    await channels.notify(conn, channels.INGEST, tenant_id)


async def queue_continuation(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID) -> None:
    """A pass stopped at its row limit: bring the worker back to read on after the (new) cursor."""
    await queue_continuations(conn, tenant_id=tenant_id, people=[person_id])


async def queue_continuations(conn: psycopg.AsyncConnection, *, tenant_id: UUID, people: list[UUID]) -> None:
    """:func:`queue_continuation` for several people (in their order)."""
    if people:
        await conn.execute("""INSERT INTO detection_work (tenant_id, person_id, earliest_time)
                              SELECT %s, p, NULL FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(p, n) ORDER BY n""",
                           (tenant_id, people))


async def done_work(conn: psycopg.AsyncConnection, ids: list[int]) -> None:
    """Remove exactly the rows that were read: a row committed meanwhile stays and brings the worker back."""
    if ids:
        await conn.execute("DELETE FROM detection_work WHERE id = ANY(%s)", (ids,))


async def person_zone(conn: psycopg.AsyncConnection, person_id: UUID) -> str | None:
    return (await person_zones(conn, [person_id])).get(person_id)


async def person_zones(conn: psycopg.AsyncConnection, people: list[UUID]) -> dict[UUID, str]:
    cur = await conn.execute("SELECT id, time_zone FROM people WHERE id = ANY(%s)", (people,))
    return {row[0]: row[1] for row in await cur.fetchall() if row[1]}


async def load_state(conn: psycopg.AsyncConnection, person_id: UUID) -> StoredState | None:
    return (await load_states(conn, [person_id])).get(person_id)


async def load_states(conn: psycopg.AsyncConnection, people: list[UUID]) -> dict[UUID, StoredState]:
    """The people's stored detector states (locked for this transaction)."""
    cur = await conn.execute(
        """SELECT person_id, state, state_version, cursor_time, readings_seen, late_readings, released_until
             FROM detector_state WHERE person_id = ANY(%s) ORDER BY person_id FOR UPDATE""",
        (people,),
    )
    return {row[0]: StoredState(bytes(row[1]), *row[2:]) for row in await cur.fetchall()}


async def monitored_metrics(conn: psycopg.AsyncConnection, person_id: UUID) -> set[str]:
    """The data types whose monitoring consent is in force for the person (the one consent check)."""
    return await consent_repo.types_in_force(conn, person_id, MONITORING)


async def monitored_metrics_of(conn: psycopg.AsyncConnection, people: list[UUID]) -> dict[UUID, set[str]]:
    """:func:`monitored_metrics` for several people in one statement."""
    return await consent_repo.types_in_force_of(conn, people, MONITORING)


async def with_pending_feedback(conn: psycopg.AsyncConnection, people: list[UUID]) -> set[UUID]:
    """Those of ``people`` with care-team feedback not yet applied to their detector."""
    cur = await conn.execute(
        "SELECT DISTINCT person_id FROM detector_feedback WHERE person_id = ANY(%s) AND applied_at IS NULL",
        (people,))
    return {row[0] for row in await cur.fetchall()}


NO_FLOOR = datetime(1, 1, 1, tzinfo=timezone.utc)  # no lower bound


def _floor(bounds) -> datetime:
    """The oldest of several lower time bounds (none: no bound), passed to a statement over the hot table as a
    value of its own: the hypertable then leaves out the chunks before it once per statement, where a bound
    that differs per person (a lateral one) makes it look at every chunk again for each person (about 0.1 ms
    each with a month of chunks, most of a fresh pass's reads)."""
    bounds = list(bounds)
    return NO_FLOOR if not bounds or any(b is None for b in bounds) else min(bounds)


async def stream_heads(conn: psycopg.AsyncConnection, person_id: UUID, metrics: list[str],
                       since: datetime | None = None) -> list[tuple[str, str, datetime]]:
    """The newest reading time of each of the person's streams (metric × source) among ``metrics`` that has
    a reading at or after ``since`` (bounding it lets the hypertable skip old chunks)."""
    return (await stream_heads_of(conn, [(person_id, metrics, since)])).get(person_id, [])


async def stream_heads_of(conn: psycopg.AsyncConnection, wanted: list[tuple[UUID, list[str], datetime | None]]
                          ) -> dict[UUID, list[tuple[str, str, datetime]]]:
    """:func:`stream_heads` for several ``(person, metrics, since)`` in one statement."""
    cur = await conn.execute(
        """SELECT w.person_id, d.name, s.source, h.head
             FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[]) AS w(person_id, metrics, since)
             JOIN people p ON p.id = w.person_id JOIN sources s ON s.person_id = p.id
             JOIN data_types d ON d.name = ANY(string_to_array(w.metrics, ','))
             CROSS JOIN LATERAL (SELECT max(r.time) AS head FROM readings_hot r
                                  WHERE r.person_no = p.person_no AND r.metric_no = d.code
                                    AND r.source_no = s.source_no AND (w.since IS NULL OR r.time >= w.since)
                                    AND r.time >= %s) h
            WHERE h.head IS NOT NULL""",
        ([w[0] for w in wanted], [",".join(w[1]) for w in wanted], [w[2] for w in wanted],
         _floor(w[2] for w in wanted)),
    )
    out: dict[UUID, list[tuple[str, str, datetime]]] = {}
    for person_id, *head in await cur.fetchall():
        out.setdefault(person_id, []).append(tuple(head))
    return out


# Several sources of one metric (steps from the phone and from the watch) are never both fed: per metric
# and clock hour, only the source with the most readings in that hour counts (ties: the first source by
# name), judged on everything stored for that hour. Hours are UTC hours (date_bin from the epoch).
# Hot and packed history alike (a rebuild from history reads packed days as one reading per minute: its mean).
# Readings of a commit whose work row the pass has not read (it committed after the pass read its work) are
# left for the pass that reads it: fed now, their work row would look like late data to the next pass.
_SPAN_OF = """
  SELECT time, metric, value, value2, received_at, source
    FROM beidou_readings_span({person}, {metrics}, coalesce({after}::timestamptz, '-infinity'),
                              coalesce({until}::timestamptz + interval '1 microsecond', 'infinity'))
   WHERE ({after}::timestamptz IS NULL OR time > {after})
     AND ({until}::timestamptz IS NULL OR time <= {until})
     AND time >= %(floor)s
     AND NOT EXISTS (SELECT FROM detection_work unread
                      WHERE unread.person_id = {person} AND unread.created_at = received_at
                        AND unread.id <> ALL(%(work)s::bigint[]))
   ORDER BY time, metric, source LIMIT %(limit)s"""
_SPAN = _SPAN_OF.format(person="%(person)s::uuid", metrics="%(metrics)s", after="%(after)s", until="%(until)s")
# Several people at once, each with one source per metric (nothing to choose): their spans side by side.
_ONE_SOURCE_OF = """
SELECT w.person_id, s.time, s.metric, s.value, s.value2, s.received_at, true
  FROM unnest(%(people)s::uuid[], %(metrics)s::text[], %(after)s::timestamptz[], %(until)s::timestamptz[])
       AS w(person_id, metrics, after, until)
 CROSS JOIN LATERAL (""" + _SPAN_OF.format(person="w.person_id", metrics="string_to_array(w.metrics, ',')",
                                           after="w.after", until="w.until") + """) s
 ORDER BY w.person_id, s.time, s.metric, s.source"""
_MERGED = "WITH span AS (" + _SPAN + """
), chosen AS (
  SELECT DISTINCT ON (metric, hour) metric, hour, source FROM (
    SELECT metric, date_bin('1 hour', time, 'epoch') AS hour, source, sum(n) AS n
      FROM beidou_readings_span(%(person)s, %(metrics)s,
                                (SELECT coalesce(date_bin('1 hour', min(time), 'epoch'), 'infinity') FROM span),
                                (SELECT date_bin('1 hour', max(time), 'epoch') + interval '1 hour' FROM span))
     GROUP BY 1, 2, 3) c
   ORDER BY metric, hour, n DESC, source
)
SELECT s.time, s.metric, s.value, s.value2, s.received_at, c.source IS NOT NULL AS counted
  FROM span s LEFT JOIN chosen c
    ON c.metric = s.metric AND c.hour = date_bin('1 hour', s.time, 'epoch') AND c.source = s.source
 ORDER BY s.time, s.metric, s.source"""


async def readings_between(conn: psycopg.AsyncConnection, person_id: UUID, metrics: list[str], *,
                           after: datetime | None, until: datetime | None, limit: int, work: list[int],
                           several_sources: bool = True,
                           ) -> list[tuple[datetime, str, float, float | None, datetime, bool]]:
    """The person's consented readings in ``(after, until]``, oldest first, at most ``limit``:
    ``(time, metric, value, value2, received_at, counted)``; ``counted`` is False for a reading of a source
    that is not the one counted for its metric and hour. Readings whose commit queued a work row other than
    ``work`` (the rows the pass read) are left out: the pass that reads that row feeds them. Pass
    ``several_sources=False`` when each metric has one source (nothing to choose: a cheaper query)."""
    if not several_sources:
        return (await readings_of(conn, [(person_id, metrics, after, until)], limit=limit, work=work)
                ).get(person_id, [])
    cur = await conn.execute(_MERGED, {"person": person_id, "metrics": metrics, "after": after, "until": until,
                                       "limit": limit, "work": work, "floor": _floor([after])})
    return await cur.fetchall()


async def readings_of(conn: psycopg.AsyncConnection,
                      wanted: list[tuple[UUID, list[str], datetime | None, datetime | None]], *, limit: int,
                      work: list[int]) -> dict[UUID, list[tuple[datetime, str, float, float | None, datetime, bool]]]:
    """:func:`readings_between` for several ``(person, metrics, after, until)`` whose metrics have one source
    each, in one statement: at most ``limit`` readings per person (``work``: the rows the pass read, all
    people's)."""
    cur = await conn.execute(_ONE_SOURCE_OF, {
        "people": [w[0] for w in wanted], "metrics": [",".join(w[1]) for w in wanted],
        "after": [w[2] for w in wanted], "until": [w[3] for w in wanted], "limit": limit, "work": work,
        "floor": _floor(w[2] for w in wanted)})
    out: dict[UUID, list[tuple]] = {}
    for person_id, *row in await cur.fetchall():
        out.setdefault(person_id, []).append(tuple(row))
    return out


async def count_received(conn: psycopg.AsyncConnection, person_id: UUID, metrics: list[str], *,
                         since: datetime, before: datetime, received_at: list[datetime]) -> int:
    """Readings in ``[since, before)`` stored by the commits at ``received_at`` (too late to be scored)."""
    cur = await conn.execute(
        """SELECT count(*) FROM readings_hot r JOIN people p ON p.person_no = r.person_no
             JOIN data_types d ON d.code = r.metric_no
            WHERE p.id = %s AND d.name = ANY(%s) AND r.time >= %s AND r.time < %s AND r.received_at = ANY(%s)""",
        (person_id, metrics, since, before, received_at))
    return (await cur.fetchone())[0]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    window_end: datetime  # the state holds exactly the readings before this time
    state: bytes
    readings_seen: int
    created_at: datetime


async def checkpoint_at_or_before(conn: psycopg.AsyncConnection, person_id: UUID, at: datetime) -> Checkpoint | None:
    cur = await conn.execute(
        """SELECT window_end, state, readings_seen, created_at FROM detector_checkpoints
            WHERE person_id = %s AND window_end <= %s ORDER BY window_end DESC LIMIT 1""",
        (person_id, at))
    row = await cur.fetchone()
    return Checkpoint(row[0], bytes(row[1]), row[2], row[3]) if row else None


async def save_checkpoints(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, state_version: int,
                           checkpoints: list[tuple[datetime, bytes, int]]) -> None:
    """Store ``(window_end, state, readings_seen)`` checkpoints, replacing any at the same boundary."""
    await save_checkpoints_of(conn, tenant_id=tenant_id, state_version=state_version,
                              checkpoints=[(person_id, *c) for c in checkpoints])


async def save_checkpoints_of(conn: psycopg.AsyncConnection, *, tenant_id: UUID, state_version: int,
                              checkpoints: list[tuple[UUID, datetime, bytes, int]]) -> None:
    """:func:`save_checkpoints` for several people: ``(person, window_end, state, readings_seen)``."""
    if not checkpoints:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO detector_checkpoints AS c (person_id, tenant_id, window_end, state_version, state,
                                                     readings_seen)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (person_id, window_end) DO UPDATE SET state = EXCLUDED.state,
                   state_version = EXCLUDED.state_version, readings_seen = EXCLUDED.readings_seen,
                   created_at = now()""",
            [(person_id, tenant_id, end, state_version, state, seen) for person_id, end, state, seen in checkpoints])


async def prune_checkpoints(conn: psycopg.AsyncConnection, person_id: UUID, horizon: datetime) -> None:
    """Keep the newest checkpoint at or before ``horizon`` (a late reading back to the horizon restores it)
    and every later one."""
    await prune_checkpoints_of(conn, [(person_id, horizon)])


async def prune_checkpoints_of(conn: psycopg.AsyncConnection, horizons: list[tuple[UUID, datetime]]) -> None:
    """:func:`prune_checkpoints` for several ``(person, horizon)`` in one statement."""
    if horizons:
        await conn.execute(
            """DELETE FROM detector_checkpoints c
                USING (SELECT k.person_id, max(k.window_end) AS kept
                         FROM unnest(%s::uuid[], %s::timestamptz[]) AS u(person_id, horizon)
                         JOIN detector_checkpoints k ON k.person_id = u.person_id AND k.window_end <= u.horizon
                        GROUP BY k.person_id) h
               WHERE c.person_id = h.person_id AND c.window_end < h.kept""",
            ([h[0] for h in horizons], [h[1] for h in horizons]))


async def delete_checkpoints(conn: psycopg.AsyncConnection, person_id: UUID, *, after: datetime | None = None
                             ) -> None:
    """Delete the person's checkpoints (only those after ``after`` if given: a re-score rewrites them)."""
    await conn.execute("DELETE FROM detector_checkpoints WHERE person_id = %s AND (%s::timestamptz IS NULL "
                       "OR window_end > %s)", (person_id, after, after))


async def all_checkpoints(conn: psycopg.AsyncConnection, person_id: UUID) -> list[tuple[datetime, bytes, int]]:
    cur = await conn.execute(
        """SELECT window_end, state, readings_seen FROM detector_checkpoints WHERE person_id = %s
            ORDER BY window_end FOR UPDATE""", (person_id,))
    return [(r[0], bytes(r[1]), r[2]) for r in await cur.fetchall()]


async def feedback_applied_since(conn: psycopg.AsyncConnection, person_id: UUID, since: datetime
                                 ) -> list[tuple[int, str, str, datetime]]:
    """Care-team feedback applied after ``since`` (a checkpoint older than it must have it applied again)."""
    cur = await conn.execute(
        """SELECT id, feature, kind, until FROM detector_feedback
            WHERE person_id = %s AND applied_at > %s ORDER BY id""", (person_id, since))
    return await cur.fetchall()


async def save_state(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, state: bytes,
                     state_version: int, cursor_time: datetime | None, readings_seen: int,
                     late_readings: int = 0) -> None:
    await save_states(conn, tenant_id=tenant_id, state_version=state_version,
                      states=[(person_id, state, cursor_time, readings_seen, late_readings)])


async def save_states(conn: psycopg.AsyncConnection, *, tenant_id: UUID, state_version: int,
                      states: list[tuple[UUID, bytes, datetime | None, int, int]]) -> None:
    """Store ``(person, state, cursor_time, readings_seen, late_readings)`` for several people in one statement;
    ``released_until`` only ever moves forward (0019)."""
    if not states:
        return
    await conn.execute(
        """INSERT INTO detector_state AS s (person_id, tenant_id, state, state_version, cursor_time, readings_seen,
                                            late_readings, released_until, updated_at)
           SELECT p, %s, st, %s, c, n, l, c, now()
             FROM unnest(%s::uuid[], %s::bytea[], %s::timestamptz[], %s::bigint[], %s::bigint[]) AS u(p, st, c, n, l)
           ON CONFLICT (person_id) DO UPDATE SET state = EXCLUDED.state, state_version = EXCLUDED.state_version,
               cursor_time = EXCLUDED.cursor_time, readings_seen = EXCLUDED.readings_seen,
               late_readings = EXCLUDED.late_readings,
               released_until = greatest(s.released_until, EXCLUDED.released_until), updated_at = now()""",
        (tenant_id, state_version, *([s[i] for s in states] for i in range(5))),
    )


async def touch_state(conn: psycopg.AsyncConnection, person_id: UUID) -> None:
    await conn.execute("UPDATE detector_state SET updated_at = now() WHERE person_id = %s", (person_id,))


async def delete_state(conn: psycopg.AsyncConnection, person_id: UUID) -> None:
    await conn.execute("DELETE FROM detector_state WHERE person_id = %s", (person_id,))


async def insert_events(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID,
                        events: list[AnomalyEvent], received_at: list[datetime | None] | None = None) -> int:
    """Store events (a repeat of an already stored one is ignored) and wake the alerting layer."""
    if not events:
        return 0
    inserted = 0
    async with conn.cursor() as cur:
        for i, e in enumerate(events):
            await cur.execute(
                """INSERT INTO anomaly_events (tenant_id, person_id, kind, feature, metric, tier, start_time, end_time,
                                               value, baseline, reason, reason_code, details, source_received_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (person_id, feature, kind, tier, start_time) DO NOTHING""",
                (tenant_id, person_id, e.kind, e.feature, e.metric, e.tier, e.start, e.end, e.value, e.baseline,
                 e.reason, e.reason_code, Jsonb(e.details), received_at[i] if received_at else None),
            )
            inserted += cur.rowcount
        if inserted:
            await cur.execute("SELECT pg_notify(%s, %s)", (ANOMALY_CHANNEL, str(tenant_id)))
    return inserted


async def pending_feedback(conn: psycopg.AsyncConnection, person_id: UUID) -> list[tuple[int, str, str, datetime]]:
    """Care-team feedback not yet applied to the person's detector: (id, feature, kind, until)."""
    cur = await conn.execute(
        """SELECT id, feature, kind, until FROM detector_feedback
            WHERE person_id = %s AND applied_at IS NULL ORDER BY id FOR UPDATE""",
        (person_id,),
    )
    return await cur.fetchall()


async def mark_feedback_applied(conn: psycopg.AsyncConnection, ids: list[int]) -> None:
    await conn.execute("UPDATE detector_feedback SET applied_at = now() WHERE id = ANY(%s)", (ids,))
