"""Consent receipts: a stable id for every recorded grant or withdrawal, recomputable from the history.

The id is ``cr-<event id>-<first 24 hex of the fingerprint>``; the fingerprint is the SHA-256 of the event's
fields in a canonical JSON form (sorted keys, UTC times, microseconds). Anyone holding a receipt can check it
against the person's history: the same event always gives the same receipt, and a changed event would not.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

from consent.repository import ConsentEvent


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: str
    fingerprint: str
    event: ConsentEvent


def _utc(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def canonical(event: ConsentEvent) -> bytes:
    """The event as canonical JSON bytes: what the fingerprint is computed over."""
    fields = {
        "event_id": event.id, "tenant_id": _text(event.tenant_id), "person_id": str(event.person_id),
        "data_type": event.data_type, "purpose": event.purpose, "action": event.action,
        "notice_version": event.notice_version, "app": event.app, "actor": event.actor,
        "actor_person_id": _text(event.actor_person_id), "reason": event.reason,
        "valid_until": _utc(event.valid_until), "recorded_at": _utc(event.created_at),
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def receipt_for(event: ConsentEvent) -> Receipt:
    """The receipt of a recorded consent event."""
    fingerprint = hashlib.sha256(canonical(event)).hexdigest()
    return Receipt(receipt_id=f"cr-{event.id}-{fingerprint[:24]}", fingerprint=fingerprint, event=event)
