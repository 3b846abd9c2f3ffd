"""Consents that reach their valid_until: record the end and announce it like any withdrawal.

The ingest gate already ignores a grant past its valid_until, so this sweep is not what stops data; it
makes the end visible in the history (a ``withdraw`` by the system, reason ``expired``) and tells every
process on ``beidou_consent`` (open streams, detection, alerts). Safe to run in several processes at once:
each expiry is re-checked under the person's consent lock before anything is written.
"""
from __future__ import annotations

import asyncio
import logging

from app.core.db import Database
from app.core.errors import DatabaseUnavailable
from consent import repository, service

log = logging.getLogger(__name__)

EXPIRED_REASON = "expired"


async def expire_due(db: Database, *, limit: int = 500) -> int:
    """Record and announce every grant past its valid_until; returns how many ended now."""
    async with db.transaction(tenant_id=None) as conn:
        due = await repository.due_expiries(conn, limit)
    ended = 0
    for item in due:
        async with db.transaction(tenant_id=item.tenant_id, person_id=item.person_id) as conn:
            await repository.lock_person(conn, item.person_id)
            state = await repository.state_of(conn, item.person_id, item.data_type, item.purpose)
            if state is None or not state.granted or state.event_id != item.event_id:
                continue  # changed since we looked: someone else recorded it, or the person decided again
            await service.record(conn, tenant_id=item.tenant_id, person_id=item.person_id,
                                 data_type=item.data_type, purpose=item.purpose, grant=False,
                                 actor=service.SYSTEM, reason=EXPIRED_REASON)
            ended += 1
    if ended:
        log.info("consent.expiry.recorded count=%s", ended)
    return ended


async def run_forever(db: Database, *, every_s: float = 2.0) -> None:
    """Sweep until cancelled; a failed sweep is logged and retried on the next tick."""
    while True:
        try:
            await expire_due(db)
        except asyncio.CancelledError:
            raise
        except DatabaseUnavailable as exc:
            log.warning("consent.expiry.sweep_failed error=%s", exc)
        except Exception:
            log.exception("consent.expiry.sweep_crashed")
        await asyncio.sleep(every_s)
