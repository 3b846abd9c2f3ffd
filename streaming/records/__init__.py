"""Records from a phone's health store or a FHIR partner: identity, version, and the readings a record owns.

The platform modules (:mod:`.healthconnect`, :mod:`.healthkit`, :mod:`.huawei`, :mod:`.fhir`) turn the
platforms' own shapes into the operations below; :func:`apply` carries them out for one person in ONE
transaction and answers one result per operation, in order:

* ``Upsert`` → ``inserted`` (new record), ``replaced`` (its readings swapped for the new ones at once),
  ``unchanged`` (same version and content), ``stale`` (an older version: nothing changes);
* ``Delete`` → ``deleted`` (its readings withdrawn, the record kept as a tombstone) or ``not_found``;
* ``Window`` (everything a source holds for a type between two times) → deletes the live records there that
  the same request did not send.

Every sample is checked by the same validation as ``/v1/readings`` (units, plausible range, time); one bad
sample rejects its whole record and nothing of it is stored.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import psycopg

from consent import repository as consent_repo
from consent.catalog import MONITORING
from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from streaming.metrics import METRICS
from streaming import repository as detection_repo
from streaming.records import repository as repo
from streaming.records.shapes import convert
from streaming.validation import Limits, RawReading, Rejected, validate, validate_series

log = logging.getLogger(__name__)

INSERTED, REPLACED, UNCHANGED, STALE = "inserted", "replaced", "unchanged", "stale"
DELETED, NOT_FOUND, REJECTED = "deleted", "not_found", "rejected"
STATUSES = (INSERTED, REPLACED, UNCHANGED, STALE, DELETED, NOT_FOUND, REJECTED)

# Readings of a record carry "<prefix>:<app>" as their source; /v1/readings sources never have these prefixes
# by convention, and the record id keeps them apart in any case.
SOURCE_PREFIX = {"health_connect": "health-connect", "healthkit": "healthkit", "huawei": "huawei", "fhir": "fhir"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(slots=True)
class Sample:
    """One value of a record as the platform sent it: the time is timezone-aware (offset as sent or inferred)."""

    time: datetime
    value: float | None = None
    unit: str | None = None
    systolic: float | None = None
    diastolic: float | None = None
    end: datetime | None = None
    stages: dict[str, float] | None = None


@dataclass(slots=True)
class Upsert:
    platform: str
    source_app: str
    native_id: str
    record_type: str
    metric: str
    start: datetime
    end: datetime
    samples: list[Sample]
    offset_min: int | None            # None: the platform sent no offset; the person's zone is used
    version_time: datetime | None = None
    version_seq: int = 0
    alias_id: str | None = None
    zone: str | None = None           # an IANA zone name sent instead of an offset (HealthKit HKTimeZone)
    empty_ok: bool = False            # a record that owns no readings (HealthKit "in bed")


@dataclass(slots=True)
class Delete:
    platform: str
    native_id: str
    source_app: str | None = None


@dataclass(slots=True)
class Window:
    platform: str
    source_app: str
    metric: str
    start: datetime
    end: datetime
    deletion: bool = False            # a range deletion (nothing is kept) rather than a snapshot


@dataclass(slots=True)
class Invalid:
    """An item refused before it reached the database."""

    reason: str
    detail: str
    native_id: str | None = None


Operation = Upsert | Delete | Window | Invalid


def unsupported(kind: str, known) -> Invalid:
    return Invalid("unsupported_type", f"unknown record type {kind!r}; supported: {', '.join(sorted(known))}")


def metric_or_invalid(metric: str, kind: str) -> Invalid | None:
    """Types that map to a data type this deployment does not have yet (e.g. SDNN) are refused by name."""
    if metric not in METRICS:
        return Invalid("unsupported_type", f"{kind} maps to data type {metric!r}, which this service does not store")
    return None


MAX_VERSION = 2**63 - 1


def metric_of(kind: object, types: dict[str, str]) -> str | Invalid:
    """The data type a platform's record type maps to, or an Invalid: an unknown record type, or a data type this
    deployment does not store."""
    if kind not in types:
        return unsupported(str(kind), types)
    metric = types[kind]
    return metric_or_invalid(metric, kind) or metric


def as_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise Rejected("time_without_offset", f"`{what}` must be an instant with a UTC offset or Z")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise Rejected("invalid", f"`{what}` is out of range") from None


def version(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_VERSION:
        raise Rejected("invalid", f"`{what}` must be an integer from 0 to {MAX_VERSION}")
    return value


def window(item: object, struct: type, platform: str, types: dict[str, str]) -> Operation:
    """A ``windows[]`` item as a Window, or Invalid. ``struct`` is the platform's shape of it: four fields, in
    this order, named as the platform names them: record type, source app, start, end."""
    kind_field, source_field, start_field, end_field = struct.__struct_fields__
    try:
        w = convert(item, struct, "windows[]")
        kind = getattr(w, kind_field)
        if kind not in types:
            return unsupported(kind, types)
        return Window(platform, getattr(w, source_field), types[kind], as_utc(getattr(w, start_field), start_field),
                      as_utc(getattr(w, end_field), end_field))
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail)


@dataclass(slots=True)
class _Prepared:
    """An upsert checked and converted: canonical readings, ready to store."""

    op: Upsert
    source: str
    rows: list[tuple]      # (time, metric, value, value2, details, utc_offset_min)
    start: datetime
    end: datetime
    offset_min: int
    inferred: bool
    content_hash: str


@dataclass(slots=True)
class SyncResult:
    results: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        counts = {status: 0 for status in STATUSES}
        for r in self.results:
            counts[r["status"]] += 1
        return {"results": self.results, **counts}


def _zone_offset(zone: ZoneInfo, instant: datetime) -> int:
    return int(instant.astimezone(zone).utcoffset().total_seconds() // 60)


def _prepare(op: Upsert, *, person_zone: ZoneInfo, now: datetime, limits: Limits) -> _Prepared:
    """Validate every sample the way /v1/readings does; raises :class:`Rejected` for the whole record."""
    if not op.samples and not op.empty_ok:
        raise Rejected("invalid", "the record holds no samples")
    source = f"{SOURCE_PREFIX[op.platform]}:{op.source_app}"[: limits.max_source_len]
    inferred = op.offset_min is None
    zone: timezone | ZoneInfo
    if op.offset_min is not None:
        zone = timezone(timedelta(minutes=op.offset_min))
    elif op.zone:
        try:
            zone = ZoneInfo(op.zone)
        except (ValueError, KeyError, OSError):
            raise Rejected("invalid", f"unknown time zone {op.zone!r}") from None
        inferred = False
    else:
        zone = person_zone
    try:
        local = [(s.time.astimezone(zone), s.end.astimezone(zone) if s.end else None) for s in op.samples]
    except OverflowError:
        raise Rejected("invalid", "a sample's time is out of range") from None
    if op.metric in ("blood_pressure", "sleep") or len({s.unit for s in op.samples}) > 1:
        readings = [validate(RawReading(metric=op.metric, time=at, value=s.value, unit=s.unit, source=source,
                                        systolic=s.systolic, diastolic=s.diastolic, end=end, stages=s.stages),
                             now=now, limits=limits) for s, (at, end) in zip(op.samples, local)]
    else:  # a series of plain values (60 heart-rate samples): the per-metric work once
        readings = validate_series(op.metric, op.samples[0].unit if op.samples else None, source,
                                   [(at, s.value) for s, (at, _) in zip(op.samples, local)], now=now, limits=limits)
    rows = sorted(((r.time.astimezone(timezone.utc), r.metric, r.value, r.value2, r.details, r.utc_offset_min)
                   for r in readings), key=lambda r: r[0])
    start = min([as_utc(op.start, "start")] + [r[0] for r in rows[:1]])
    end = max([as_utc(op.end, "end")] + [r[0] for r in rows[-1:]])
    if end - start > timedelta(days=31):
        raise Rejected("invalid", "a record may span at most 31 days")
    digest = hashlib.sha256(msgspec.json.encode([op.record_type, start, end, rows])).hexdigest()[:32]
    offset = op.offset_min if op.offset_min is not None else _zone_offset(zone, start)  # type: ignore[arg-type]
    return _Prepared(op, source, rows, start, end, offset, inferred, digest)


def _order(version_time: datetime | None, version_seq: int) -> tuple[datetime, int]:
    return (version_time or _EPOCH, version_seq)


async def apply(db: Database, *, tenant_id: UUID, person_id: UUID, operations: list[Operation],
                limits: Limits) -> SyncResult:
    """Carry out a person's operations in one transaction; one result per operation, in order, after the commit.

    Two requests of the same person racing to create the same record, or locking records in different orders,
    make one transaction fail; it is simply run again (it then sees the other's records)."""
    for attempt in range(3):
        try:
            return await _apply_once(db, tenant_id=tenant_id, person_id=person_id, operations=operations,
                                     limits=limits)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected) as exc:
            log.warning("sync.conflict_retry attempt=%s error=%s", attempt, type(exc).__name__)
    raise DatabaseUnavailable("write conflict, please retry")


async def _apply_once(db: Database, *, tenant_id: UUID, person_id: UUID, operations: list[Operation],
                      limits: Limits) -> SyncResult:
    now = datetime.now(timezone.utc)
    out = SyncResult()
    operations = [_printable_names(op) for op in operations]
    async with db.transaction(tenant_id=tenant_id, person_id=person_id) as conn:
        allowed = {t for _, t in await consent_repo.granted_pairs(conn, [person_id], MONITORING)}
        person_zone = _person_zone(await repo.person_time_zone(conn, person_id))
        identities = [(op.platform, op.native_id) for op in operations if isinstance(op, Upsert | Delete)]
        identities += [(op.platform, op.alias_id) for op in operations if isinstance(op, Upsert) and op.alias_id]
        known = await repo.find_records(conn, person_id, identities)
        sent: set[tuple[str, str, str]] = set()
        pending: dict[int, tuple[str, list[tuple]]] = {}   # record id -> (source, rows), inserted after the loop
        touched: list[datetime] = []
        created: dict[int, tuple[_Prepared, repo.StoredRecord]] = {}  # placeholder id -> new record
        nights: set[tuple[str, date, int]] = set()  # HealthKit sleep nights whose stage samples changed
        for index, op in enumerate(operations):
            result: dict = {"index": index}
            if isinstance(op, Invalid):
                result.update(status=REJECTED, reason=op.reason, detail=op.detail)
                if op.native_id:
                    result["id"] = op.native_id
            elif isinstance(op, Upsert):
                result["id"] = op.native_id
                if op.metric not in allowed:
                    result.update(status=REJECTED, reason="no_consent",
                                  detail=f"no active consent to store {op.metric} for monitoring")
                else:
                    try:
                        prepared = _prepare(op, person_zone=person_zone, now=now, limits=limits)
                    except Rejected as exc:
                        result.update(status=REJECTED, reason=exc.reason, detail=exc.detail)
                    else:
                        if op.record_type.startswith(_STAGE_PREFIX):
                            nights.add(_night(op.source_app, prepared.start, prepared.offset_min))
                            nights.update(_night(r.source_app, r.start_time, r.utc_offset_min)
                                          for r in known.get((op.platform, op.native_id), [])
                                          if r.source_app == op.source_app and r.state == "live")
                        sent.add((op.platform, op.source_app, op.native_id))
                        status, record_id, earliest = await _upsert(conn, person_id, prepared, known, created)
                        result.update(status=status, readings=len(prepared.rows) if record_id else 0)
                        if record_id is not None:
                            pending[record_id] = (prepared.source, prepared.rows)
                        if earliest is not None:
                            touched.append(earliest)
            elif isinstance(op, Delete):
                result["id"] = op.native_id
                matches = [r for r in known.get((op.platform, op.native_id), [])
                           if op.source_app is None or r.source_app == op.source_app]
                if not matches:
                    result.update(status=NOT_FOUND)
                else:
                    for record in matches:
                        if record.record_type.startswith(_STAGE_PREFIX) and record.state == "live":
                            nights.add(_night(record.source_app, record.start_time, record.utc_offset_min))
                        pending.pop(record.id, None)
                        if record.state == "live" and record.id < 0:
                            record.state = "deleted"  # created and deleted by this request: a tombstone only
                        elif record.state == "live":
                            await repo.withdraw(conn, person_id, record)
                            touched.append(record.start_time)
                    result.update(status=DELETED)
            else:  # Window
                gone = 0
                for record in await repo.live_in_window(conn, person_id, op.platform, op.source_app, op.metric,
                                                        op.start, op.end):
                    if (record.platform, record.source_app, record.native_id) in sent:
                        continue
                    if record.record_type == _SESSION:  # a derived night follows its stage samples
                        nights.add(_night(record.source_app, record.start_time, record.utc_offset_min))
                        continue
                    pending.pop(record.id, None)
                    await repo.withdraw(conn, person_id, record)
                    touched.append(record.start_time)
                    if record.record_type.startswith(_STAGE_PREFIX):
                        nights.add(_night(record.source_app, record.start_time, record.utc_offset_min))
                    gone += 1
                result.update(status=DELETED if gone else (NOT_FOUND if op.deletion else UNCHANGED), records=gone)
            out.results.append(result)
        if created:
            ids = await repo.insert_records(conn, tenant_id, person_id, list(created.values()))
            pending = {ids.get(key, key): value for key, value in pending.items()}
        if any(rows for _, rows in pending.values()):
            await repo.insert_readings(conn, tenant_id, person_id, pending)
        if nights:
            touched += await _sleep_sessions(conn, tenant_id, person_id, nights, person_zone=person_zone, now=now,
                                             limits=limits)
        if pending or touched:
            # The oldest reading time this commit wrote or withdrew: detection re-scores from there.
            earliest = min(touched + [rows[0][0] for _, rows in pending.values() if rows], default=None)
            await detection_repo.request_rescore(conn, tenant_id=tenant_id, person_id=person_id, earliest=earliest)
    return out


# healthkit.STAGE_PREFIX and healthkit.SESSION (that module imports this one)
_STAGE_PREFIX, _SESSION = "HKCategoryTypeIdentifierSleepAnalysis:", "HKSleepSession"


def _night(source_app: str, start: datetime, offset_min: int | None) -> tuple[str, date, int]:
    from streaming.records import healthkit
    offset = offset_min or 0
    return source_app, healthkit.night_of(start, offset), offset


async def _sleep_sessions(conn, tenant_id: UUID, person_id: UUID, nights: set[tuple[str, date, int]], *,
                          person_zone: ZoneInfo, now: datetime, limits: Limits) -> list[datetime]:
    """Re-derive the sleep session of each HealthKit night whose stage samples this request changed, from the
    source's live stage samples of that night: inserted, replaced, left unchanged, or withdrawn when no stage is
    left. Returns the times detection must re-score from."""
    from streaming.records import healthkit
    touched: list[datetime] = []
    for source_app, night, offset in sorted(nights):
        low, high = healthkit.night_bounds(night, offset)
        stages = await repo.live_of_type(conn, person_id, healthkit.PLATFORM, source_app, healthkit.STAGE_PREFIX,
                                         low, high)
        op = healthkit.night_session(source_app, night, offset, [
            (r.record_type.removeprefix(healthkit.STAGE_PREFIX), r.start_time, r.end_time) for r in stages])
        native_id = f"sleep-night:{night.isoformat()}"
        known = await repo.find_records(conn, person_id, [(healthkit.PLATFORM, native_id)])
        if op is None:
            for record in known.get((healthkit.PLATFORM, native_id), []):
                if record.source_app == source_app and record.state == "live":
                    await repo.withdraw(conn, person_id, record)
                    touched.append(record.start_time)
            continue
        try:
            prepared = _prepare(op, person_zone=person_zone, now=now, limits=limits)
        except Rejected as exc:  # stages that cannot form a session (a night over 24 h): the stages stay
            log.warning("sync.sleep_session_refused night=%s reason=%s", night, exc.detail)
            continue
        created: dict[int, tuple[_Prepared, repo.StoredRecord]] = {}
        _, record_id, earliest = await _upsert(conn, person_id, prepared, known, created)
        if created:
            record_id = (await repo.insert_records(conn, tenant_id, person_id, list(created.values())))[record_id]
        if record_id is not None:
            await repo.insert_readings(conn, tenant_id, person_id, {record_id: (prepared.source, prepared.rows)})
            touched.append(prepared.start)
        if earliest is not None:
            touched.append(earliest)
    return touched


def _printable_names(op: Operation) -> Operation:
    """Ids and app names PostgreSQL can store and people can read (no NUL, no lone surrogate, no control)."""
    names = [getattr(op, a, None) for a in ("native_id", "source_app", "alias_id", "zone")]
    if any(isinstance(n, str) and not n.isprintable() for n in names):
        return Invalid("invalid", "record ids, app names and zone names must be printable text")
    return op


def _person_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


async def _upsert(conn, person_id: UUID, p: _Prepared, known: dict, created: dict
                  ) -> tuple[str, int | None, datetime | None]:
    """Insert or replace one record; (status, record id whose rows to insert or None, earliest time re-scored).

    New records are inserted together at the end of the request (one statement): until then they carry a
    negative placeholder id and live only in ``created``."""
    op = p.op
    existing = [r for r in known.get((op.platform, op.native_id), []) if r.source_app == op.source_app]
    if not existing:
        record = repo.StoredRecord(
            id=-(len(created) + 1), platform=op.platform, source_app=op.source_app, native_id=op.native_id,
            alias_id=op.alias_id, metric=op.metric, version_time=op.version_time, version_seq=op.version_seq,
            content_hash=p.content_hash, state="live", start_time=p.start, end_time=p.end, record_type=op.record_type,
            utc_offset_min=p.offset_min)
        created[record.id] = (p, record)
        known.setdefault((op.platform, op.native_id), []).append(record)
        return INSERTED, record.id, None
    record = existing[0]
    incoming, stored = _order(op.version_time, op.version_seq), _order(record.version_time, record.version_seq)
    if incoming < stored:
        return STALE, None, None
    if incoming == stored and p.content_hash == record.content_hash:
        return (UNCHANGED if record.state == "live" else STALE), None, None
    if incoming == stored and record.state == "deleted" and (op.version_time or op.version_seq):
        return STALE, None, None  # a replay of a version that was deleted since
    status = REPLACED if record.state == "live" else INSERTED
    if record.id < 0:  # created earlier in this request: nothing in the database yet
        record.version_time, record.version_seq, record.content_hash = op.version_time, op.version_seq, p.content_hash
        record.state, record.start_time, record.end_time, record.metric = "live", p.start, p.end, op.metric
        record.record_type, record.utc_offset_min = op.record_type, p.offset_min
        created[record.id] = (p, record)
        return status, record.id, None
    earliest = None
    if record.state == "live":
        await repo.delete_readings(conn, person_id, record)
        earliest = min(record.start_time, p.start)
    updated = await repo.update_record(conn, record.id, p)
    known[(op.platform, op.native_id)] = [updated if r is record else r for r in known[(op.platform, op.native_id)]]
    return status, updated.id, earliest
