"""Export of everything we hold about a person, streamed: JSON (complete) or a FHIR R4 Bundle.

Both run in one transaction scoped to the person (RLS shows nothing else) and read the big tables through
server-side cursors, handing out chunks of about 64 KiB: a year of minute readings never sits in memory.
The first chunk is produced only after the person has been checked, so a caller can prime the stream and
still answer an erased person with an error instead of a broken document.

JSON holds the profile, current consents with their plain-language descriptions, and every table of
:data:`consent.erasure.PERSONAL_DATA` as rows (readings, packed history, sources, consent history, and whatever
later tables register there). FHIR holds what FHIR has resources for: Patient, Consent, Device (sources) and Observation
(readings, LOINC coded).
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from uuid import UUID

import psycopg
from psycopg import sql

from app.core.db import Database, ReadDatabase
from consent import fhir, people, repository, service
from consent.erasure import PERSONAL_DATA, present_tables

CHUNK_BYTES = 64 * 1024
FETCH_ROWS = 2000
FORMAT_NAME = "health-beidou.export"
FORMAT_VERSION = 1


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


class _Chunks:
    """Collects text and hands it out as byte chunks of about CHUNK_BYTES."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def add(self, text: str) -> bytes | None:
        self._parts.append(text)
        self._size += len(text)
        return self.take() if self._size >= CHUNK_BYTES else None

    def take(self) -> bytes:
        data = "".join(self._parts).encode()
        self._parts, self._size = [], 0
        return data


async def _rows(conn: psycopg.AsyncConnection, query: sql.Composable, params: tuple, name: str) -> AsyncIterator[tuple]:
    async with conn.cursor(name=name) as cur:
        cur.itersize = FETCH_ROWS
        await cur.execute(query, params)
        async for row in cur:
            yield row


def _profile(person: people.PersonFacts) -> dict:
    return {"id": person.id, "external_id": person.external_id, "time_zone": person.time_zone,
            "language": person.language, "birth_date": person.birth_date, "created_at": person.created_at}


def _views(views: list[service.ConsentView]) -> list[dict]:
    return [{"data_type": v.data_type, "purpose": v.purpose, "granted": v.granted, "in_effect": v.in_effect,
             "valid_until": v.valid_until, "updated_at": v.updated_at, "notice_version": v.notice_version,
             "description": v.description} for v in views]


async def export_json(db: Database | ReadDatabase, *, tenant_id: UUID, person_id: UUID) -> AsyncIterator[bytes]:
    """Everything held about the person as one JSON document, streamed in chunks."""
    async with db.transaction(tenant_id=tenant_id, person_id=person_id) as conn:
        person = await service.subject(conn, person_id=person_id)
        views = await service.overview(conn, person_id=person_id, language=person.language)
        head = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                "exported_at": datetime.now(timezone.utc), "person": _profile(person), "consents": _views(views)}
        yield (_dumps(head)[:-1] + ',"data":{').encode()
        out, counts = _Chunks(), {}
        present = await present_tables(conn)
        for n, entry in enumerate(t for t in PERSONAL_DATA if t.table in present):
            chunk = out.add(("," if n else "") + _dumps(entry.name) + ":[")
            if chunk:
                yield chunk
            query = sql.SQL("SELECT to_jsonb(t)::text FROM {} t WHERE {} = %s ORDER BY {}").format(
                sql.Identifier(entry.table), sql.Identifier(entry.person_column), sql.SQL(entry.order_by))
            count = 0
            async for (row,) in _rows(conn, query, (person_id,), f"export_{n}"):
                chunk = out.add(("," if count else "") + row)
                count += 1
                if chunk:
                    yield chunk
            counts[entry.name] = count
            out.add("]")
        out.add('},"counts":' + _dumps(counts) + "}")
        yield out.take()


# Both tiers (hot and packed history): past the hot window a dense signal's Observation is a minute's average.
_READINGS = sql.SQL("""SELECT time, metric, value, value2, details, source, utc_offset_min
                         FROM beidou_readings_span(%s, (SELECT array_agg(name) FROM data_types), '-infinity',
                                                   'infinity')
                        ORDER BY time, metric, source""")


async def export_fhir(db: Database | ReadDatabase, *, tenant_id: UUID, person_id: UUID) -> AsyncIterator[bytes]:
    """The person as a FHIR R4 Bundle (type collection): Patient, Consents, Devices, Observations."""
    async with db.transaction(tenant_id=tenant_id, person_id=person_id) as conn:
        person = await service.subject(conn, person_id=person_id)
        now = datetime.now(timezone.utc)
        head = {"resourceType": "Bundle", "type": "collection", "timestamp": now.isoformat()}
        entries = [fhir.entry(fhir.patient(person))]
        entries += [fhir.entry(fhir.consent(c, person_id=person_id))
                    for c in await repository.current_with_events(conn, person_id)]
        cur = await conn.execute("SELECT source FROM sources WHERE person_id = %s ORDER BY source", (person_id,))
        entries += [fhir.entry(fhir.device(person_id, source)) for (source,) in await cur.fetchall()]
        yield (_dumps(head)[:-1] + ',"entry":[' + ",".join(_dumps(e) for e in entries)).encode()
        out = _Chunks()
        async for time, metric, value, value2, details, source, offset in _rows(conn, _READINGS, (person_id,),
                                                                                "export_readings"):
            resource = fhir.observation(person_id, time=time, metric=metric, value=value, value2=value2,
                                        details=details, source=source, utc_offset_min=offset)
            chunk = out.add("," + _dumps(fhir.entry(resource)))
            if chunk:
                yield chunk
        out.add("]}")
        yield out.take()
