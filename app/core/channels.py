"""Every LISTEN/NOTIFY channel the processes talk on, with its payload format: senders encode and listeners
decode here, so the two ends cannot drift apart.

A notification is a wake-up call, delivered when the sending transaction commits; the database stays the
truth, so a lost one only delays work until the next periodic sweep.

>>> ALERTS.decode(ALERTS.encode(AlertChange("t", "a", "claimed")))
AlertChange(tenant_id='t', alert_id='a', action='claimed', shown=True)
>>> ALERTS.decode("t|a|claimed|hidden").shown
False
>>> CONSENT.encode(ConsentChange("t", "p", "steps", "outreach", False))
't|p|steps|outreach|0'
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

import psycopg

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Channel(Generic[T]):
    name: str
    encode: Callable[[T], str]
    decode: Callable[[str], T]


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A consent change as it travels between processes."""

    tenant_id: str
    person_id: str
    data_type: str
    purpose: str
    granted: bool

    @classmethod
    def parse(cls, payload: str) -> ConsentChange:
        tenant_id, person_id, data_type, purpose, granted = payload.split("|")
        return cls(tenant_id, person_id, data_type, purpose, granted == "1")

    def payload(self) -> str:
        return f"{self.tenant_id}|{self.person_id}|{self.data_type}|{self.purpose}|{'1' if self.granted else '0'}"


@dataclass(frozen=True, slots=True)
class AlertChange:
    """Something happened to an alert (opened, claimed, a push sent...): the care pages refresh it."""

    tenant_id: str
    alert_id: str
    action: str
    shown: bool = True
    """False when the person's monitoring consent for the alert's data type is not in force: the feed then
    never names the alert (alerts.repository.notify_alert_change decides this in SQL, at the change)."""

    @classmethod
    def parse(cls, payload: str) -> AlertChange:
        tenant_id, alert_id, rest = payload.split("|", 2)
        action, _, visibility = rest.rpartition("|")
        if visibility not in ("shown", "hidden"):  # no visibility part: shown
            return cls(tenant_id, alert_id, rest)
        return cls(tenant_id, alert_id, action, visibility == "shown")

    def prefix(self) -> str:
        """The payload without its visibility (which the database appends)."""
        return f"{self.tenant_id}|{self.alert_id}|{self.action}"

    def payload(self) -> str:
        return f"{self.prefix()}|{'shown' if self.shown else 'hidden'}"


def _tenant(payload: str) -> UUID:
    return UUID(payload)


def _person(value: tuple[UUID, UUID]) -> str:
    return f"{value[0]}|{value[1]}"


def _parse_person(payload: str) -> tuple[UUID, UUID]:
    tenant_id, person_id = payload.split("|")
    return UUID(tenant_id), UUID(person_id)


INGEST: Channel[UUID] = Channel("beidou_ingest", str, _tenant)
"""New readings were committed for a tenant: detection has work."""
ANOMALY: Channel[UUID] = Channel("beidou_anomaly", str, _tenant)
"""Anomaly events were committed for a tenant: alerting has work."""
OUTBOX: Channel[UUID] = Channel("beidou_outbox", str, _tenant)
"""A notification was queued for a tenant: the sender has work."""
FEEDBACK: Channel[tuple[UUID, UUID]] = Channel("beidou_feedback", _person, _parse_person)
"""A care agent's verdict on a person's alert (tenant, person): the detector adjusts."""
CONSENT: Channel[ConsentChange] = Channel("beidou_consent", ConsentChange.payload, ConsentChange.parse)
"""A consent changed: open streams, detection and alerting react at once."""
ALERTS: Channel[AlertChange] = Channel("beidou_alerts", AlertChange.payload, AlertChange.parse)
"""An alert changed: the care pages' live feeds."""

ALL: tuple[Channel, ...] = (INGEST, ANOMALY, OUTBOX, FEEDBACK, CONSENT, ALERTS)


async def notify(conn: psycopg.AsyncConnection, channel: Channel[T], value: T) -> None:
    """Announce ``value`` on ``channel``; delivered to listeners when the transaction commits."""
    await conn.execute("SELECT pg_notify(%s, %s)", (channel.name, channel.encode(value)))
