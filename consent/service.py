"""Granting and withdrawing consent. The history is append-only; current state is derived from it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg

from consent import repository
from consent.catalog import DATA_TYPES, PURPOSES

CONSENT_CHANNEL = "beidou_consent"


class UnknownConsentTarget(ValueError):
    """The data type or purpose is not one we know."""


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A change as it travels between processes (LISTEN/NOTIFY payload)."""

    tenant_id: str
    person_id: str
    data_type: str
    purpose: str
    granted: bool

    @classmethod
    def parse(cls, payload: str) -> ConsentChange:
        tenant_id, person_id, data_type, purpose, granted = payload.split("|")
        return cls(tenant_id, person_id, data_type, purpose, granted == "1")


def _check(data_type: str, purpose: str) -> None:
    if data_type not in DATA_TYPES:
        raise UnknownConsentTarget(f"unknown data type {data_type!r}; known: {', '.join(DATA_TYPES)}")
    if purpose not in PURPOSES:
        raise UnknownConsentTarget(f"unknown purpose {purpose!r}; known: {', '.join(PURPOSES)}")


async def record(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str, purpose: str,
                 grant: bool, notice_version: str | None = None, app: str | None = None, actor: str = "self",
                 valid_until: datetime | None = None) -> repository.ConsentEvent:
    """Append a grant or withdrawal to the person's history and announce it to every process."""
    _check(data_type, purpose)
    event = await repository.insert_event(
        conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type, purpose=purpose,
        action="grant" if grant else "withdraw", notice_version=notice_version, app=app, actor=actor,
        valid_until=valid_until if grant else None,
    )
    await repository.notify_change(conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type,
                                   purpose=purpose, granted=grant)
    return event
