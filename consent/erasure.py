"""Erasure: delete everything of a person that the law does not require us to keep, in one transaction.

What is personal data is a registry, :data:`PERSONAL_DATA`: one line per (table, column naming the person).
Export reads the same registry, so a new table is added to both by one line here (and its migration grants
the service role DELETE on it). Lines marked ``erase=False`` are kept and restricted: the consent history
(proof of what was allowed, and when) and the derived consent state. The audit log keeps a tombstone entry,
and the ``people`` row stays as a tombstone with ``erased_at`` so the same external id never becomes a new
person and every later check can refuse it.

Erasure fails closed: if a registered table cannot be deleted from, or a table with a person column (person_id,
a foreign key to people, or the lean tables' person_no) is not registered at all, nothing is erased and the
caller is told why.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg import sql

from app.core.errors import BeidouError
from consent import people, repository, service

ERASURE_REASON = "erasure"


@dataclass(frozen=True, slots=True)
class PersonalTable:
    """A table holding a person's data, and the column that says whose it is."""

    table: str
    person_column: str
    erase: bool = True        # False: kept by law, restricted with the tombstone
    order_by: str = "1"       # export order
    key: str | None = None    # name in exports; defaults to the table name
    erase_with: str | None = None  # a SQL function (person id -> rows deleted) that erases instead of DELETE
    covers: tuple[str, ...] = ()   # the tables keyed by person_no (not person_id) that ``erase_with`` empties

    @property
    def name(self) -> str:
        return self.key or self.table


# Children before parents, so each count is exact and no foreign-key cascade runs ahead of us.
# A table that does not exist in this deployment is skipped. First the tables whose `person_id` names the person
# (table: export order), then the rest.
_BY_PERSON_ID = {
    "notification_deliveries": "id", "notifications": "created_at, id", "devices": "created_at, id",
    "alert_timeline": "id", "alert_evidence": "alert_id, anomaly_event_id", "alerts": "opened_at, id",
    "detector_feedback": "id", "anomaly_events": "id", "detector_state": "1", "detector_checkpoints": "window_end",
    "detection_work": "id", "sources": "source", "source_priority": "metric", "records": "start_time, id",
}
PERSONAL_DATA: tuple[PersonalTable, ...] = (
    *(PersonalTable(table, "person_id", order_by=order) for table, order in _BY_PERSON_ID.items()),
    # A view over the lean hot tables (migration 0017): exported as whole readings, erased table by table.
    PersonalTable("readings", "person_id", order_by="time, metric, source", erase_with="beidou_erase_hot_readings",
                  covers=("readings_hot", "readings_hot_extra")),
    PersonalTable("readings_packed", "person_id", order_by="day, metric, source"),
    PersonalTable("readings_hourly", "person_id", order_by="day, metric, source"),
    PersonalTable("readings_hourly_dirty", "person_id", order_by="hour, metric"),
    PersonalTable("guardianships", "guardian_id", order_by="created_at", key="guardianships_as_guardian"),
    PersonalTable("guardianships", "minor_id", order_by="created_at", key="guardianships_as_minor"),
    PersonalTable("consent_events", "person_id", erase=False, order_by="id"),
    PersonalTable("consent_state", "person_id", erase=False, order_by="data_type, purpose"),
)

# Kept outside the registry: the tombstone row itself, and the audit log (subject_person_id, append-only).
KEPT_ELSEWHERE = ("people", "audit_log")


class ErasureBlocked(BeidouError, status=500, code="erasure_blocked"):
    """Erasure cannot be complete in this deployment; nothing was erased (500: the deployment is incomplete, not
    the caller's fault)."""


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    receipt_id: str
    person_id: UUID
    external_id: str
    erased_at: datetime
    erased: dict[str, int]
    kept: tuple[str, ...]
    consents_withdrawn: int
    requested_by: str
    reason: str | None
    detail: dict = field(default_factory=dict)


async def present_tables(conn: psycopg.AsyncConnection) -> set[str]:
    """Registered tables that exist in this database."""
    names = sorted({t.table for t in PERSONAL_DATA})
    cur = await conn.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass('public.' || t) IS NOT NULL",
                             (names,))
    return {row[0] for row in await cur.fetchall()}


async def _blockers(conn: psycopg.AsyncConnection, present: set[str]) -> list[str]:
    """Why erasure could not be complete: registered tables we may not delete from, unregistered person tables
    (a person_id column or a foreign key to people, or a person_no column no erasing function covers)."""
    erasable = sorted({t.table for t in PERSONAL_DATA if t.erase and t.table in present}
                      | {c for t in PERSONAL_DATA if t.erase and t.table in present for c in t.covers})
    cur = await conn.execute(
        "SELECT t FROM unnest(%s::text[]) AS t WHERE NOT has_table_privilege('public.' || t, 'DELETE')", (erasable,))
    problems = [f"the service role may not delete from {row[0]}" for row in await cur.fetchall()]
    registered = {(t.table, t.person_column) for t in PERSONAL_DATA}
    registered |= {(c, "person_no") for t in PERSONAL_DATA if t.erase and t.table in present for c in t.covers}
    kept = {t.table for t in PERSONAL_DATA if not t.erase} | set(KEPT_ELSEWHERE)
    cur = await conn.execute(
        """SELECT c.table_name, c.column_name FROM information_schema.columns c
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND c.column_name IN ('person_id', 'person_no')
              AND t.table_type = 'BASE TABLE'
           UNION
           SELECT cl.relname, a.attname FROM pg_constraint k
             JOIN pg_class cl ON cl.oid = k.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
            WHERE k.contype = 'f' AND k.confrelid = 'public.people'::regclass AND n.nspname = 'public'""")
    for table, column in await cur.fetchall():
        if (table, column) not in registered and table not in kept:
            problems.append(f"{table}.{column} holds people's data but is not in consent.erasure.PERSONAL_DATA")
    return problems


async def erase_person(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, actor_kind: str,
                       actor_id: str, reason: str | None) -> ErasureReceipt:
    """Erase a person's data; the transaction must be scoped to that person so RLS narrows every delete."""
    await repository.lock_person(conn, person_id)
    person = await service.subject(conn, person_id=person_id)
    present = await present_tables(conn)
    problems = await _blockers(conn, present)
    if problems:
        raise ErasureBlocked("erasure cannot be complete, so nothing was erased: " + "; ".join(problems))
    withdrawn = await service.withdraw_all(conn, tenant_id=tenant_id, person_id=person_id, reason=ERASURE_REASON)
    erased: dict[str, int] = {}
    for entry in PERSONAL_DATA:
        if entry.erase and entry.table in present:
            if entry.erase_with:
                cur = await conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(entry.erase_with)),
                                         (person_id,))
                erased[entry.name] = (await cur.fetchone())[0]
                continue
            cur = await conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                sql.Identifier(entry.table), sql.Identifier(entry.person_column)), (person_id,))
            erased[entry.name] = cur.rowcount
    erased_at = await people.mark_erased(conn, person_id)
    kept = tuple(t.name for t in PERSONAL_DATA if not t.erase and t.table in present) + (
        "people (tombstone: id, external id, erased_at)", "audit_log")
    body = {"person_id": str(person_id), "erased_at": erased_at.isoformat(), "erased": erased,
            "requested_by": f"{actor_kind}:{actor_id}", "reason": reason}
    receipt_id = "er-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    await people.audit(conn, tenant_id=tenant_id, actor_kind=actor_kind, actor_id=actor_id, action="person.erased",
                       subject_person_id=person_id,
                       detail={**body, "receipt_id": receipt_id, "kept": list(kept),
                               "consents_withdrawn": len(withdrawn)})
    return ErasureReceipt(receipt_id=receipt_id, person_id=person_id, external_id=person.external_id,
                          erased_at=erased_at, erased=erased, kept=kept, consents_withdrawn=len(withdrawn),
                          requested_by=f"{actor_kind}:{actor_id}", reason=reason)
