"""Request and response shapes of the consent centre as the OpenAPI document shows them."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from consent import people, receipts, repository, service
from consent.catalog import DATA_TYPES, LANGUAGES
from consent.erasure import ErasureReceipt

DataType = Literal[DATA_TYPES]  # type: ignore[valid-type]
Language = Literal[LANGUAGES]  # type: ignore[valid-type]


class ConsentGrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"notice_version": "2026-03", "app": "beidou-ios/4.2.0", "valid_until": "2027-03-01T00:00:00+08:00"}]})
    notice_version: str = Field(min_length=1, max_length=64, description="Version of the notice the person saw.")
    app: str | None = Field(None, max_length=128, description="App (and version) the consent was given in.")
    valid_until: datetime | None = Field(None, description="Optional end of the consent (with a UTC offset); "
                                         "it must lie in the future.")


class ShorthandGrantIn(BaseModel):
    """The body of the older monitoring shorthand: everything optional, an unknown notice version recorded as such."""

    model_config = ConfigDict(extra="forbid")
    notice_version: str | None = Field(None, max_length=64, description="Version of the notice the person saw.")
    app: str | None = Field(None, max_length=128, description="App (and version) the consent was given in.")
    valid_until: datetime | None = Field(None, description="Optional end of the consent.")


class ConsentWithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notice_version: str | None = Field(None, max_length=64, description="Version of the notice shown, if any.")
    app: str | None = Field(None, max_length=128, description="App (and version) the withdrawal was made in.")


class ConsentReceiptOut(BaseModel):
    """Proof of one recorded grant or withdrawal. The receipt id is stable: recomputed from the stored event."""

    receipt_id: str = Field(description="`cr-<event id>-<24 hex of the fingerprint>`.")
    fingerprint: str = Field(description="SHA-256 of the event's canonical JSON (see docs/consent.md).")
    event_id: int
    person_id: UUID
    data_type: str
    purpose: str
    action: Literal["grant", "withdraw"]
    notice_version: str | None
    app: str | None
    actor: str = Field(description="`self`, `guardian` or `system`.")
    actor_person_id: UUID | None = Field(description="The guardian who acted, when actor is `guardian`.")
    valid_until: datetime | None
    recorded_at: datetime

    @classmethod
    def of(cls, event: repository.ConsentEvent) -> ConsentReceiptOut:
        r = receipts.receipt_for(event)
        return cls(receipt_id=r.receipt_id, fingerprint=r.fingerprint, event_id=event.id, person_id=event.person_id,
                   data_type=event.data_type, purpose=event.purpose, action=event.action,
                   notice_version=event.notice_version, app=event.app, actor=event.actor,
                   actor_person_id=event.actor_person_id, valid_until=event.valid_until, recorded_at=event.created_at)


class ConsentChangeOut(BaseModel):
    data_type: str
    purpose: str
    granted: bool
    valid_until: datetime | None
    updated_at: datetime
    receipt: ConsentReceiptOut

    @classmethod
    def of(cls, event: repository.ConsentEvent) -> ConsentChangeOut:
        return cls(data_type=event.data_type, purpose=event.purpose, granted=event.action == "grant",
                   valid_until=event.valid_until, updated_at=event.created_at, receipt=ConsentReceiptOut.of(event))


class ConsentItemOut(BaseModel):
    data_type: str
    purpose: str
    granted: bool = Field(description="Granted and not past valid_until.")
    in_effect: bool = Field(description="Granted, and so is every purpose it needs for this data type.")
    needs: list[str] = Field(description="Purposes this one works on (outreach and research need monitoring).")
    valid_until: datetime | None
    updated_at: datetime | None = Field(description="When this was last decided; null if never.")
    notice_version: str | None
    app: str | None
    actor: str | None = Field(description="Who last decided: `self`, `guardian` or `system`; null if never.")
    title: str
    description: str = Field(description="What granting it means, in the person's language.")

    @classmethod
    def of(cls, view: service.ConsentView) -> ConsentItemOut:
        return cls(data_type=view.data_type, purpose=view.purpose, granted=view.granted, in_effect=view.in_effect,
                   needs=list(view.needs), valid_until=view.valid_until, updated_at=view.updated_at,
                   notice_version=view.notice_version, app=view.app, actor=view.actor, title=view.title,
                   description=view.description)


class ConsentOverviewOut(BaseModel):
    language: str
    consents: list[ConsentItemOut] = Field(description="Every data type × purpose, data types in catalogue order.")


class HistoryEventOut(BaseModel):
    event_id: int
    receipt_id: str
    data_type: str
    purpose: str
    action: Literal["grant", "withdraw"]
    notice_version: str | None
    app: str | None
    actor: str
    actor_person_id: UUID | None
    reason: str | None = Field(description="Why the system acted: `expired`, `under_14`, `erasure`.")
    valid_until: datetime | None
    recorded_at: datetime

    @classmethod
    def of(cls, event: repository.ConsentEvent) -> HistoryEventOut:
        return cls(event_id=event.id, receipt_id=receipts.receipt_for(event).receipt_id, data_type=event.data_type,
                   purpose=event.purpose, action=event.action, notice_version=event.notice_version, app=event.app,
                   actor=event.actor, actor_person_id=event.actor_person_id, reason=event.reason,
                   valid_until=event.valid_until, recorded_at=event.created_at)


class HistoryOut(BaseModel):
    events: list[HistoryEventOut] = Field(description="Oldest first. Nothing here is ever changed or removed.")


class ProfileOut(BaseModel):
    person_id: UUID
    external_id: str
    time_zone: str
    language: str
    birth_date: date | None
    age: int | None
    needs_guardian: bool = Field(description="Under 14: consent is granted by a guardian.")

    @classmethod
    def of(cls, person: people.PersonFacts) -> ProfileOut:
        return cls(person_id=person.id, external_id=person.external_id, time_zone=person.time_zone,
                   language=person.language, birth_date=person.birth_date, age=person.age,
                   needs_guardian=service.is_minor(person))


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"time_zone": "Asia/Shanghai", "language": "zh-CN", "birth_date": "1980-05-17"}]})
    time_zone: str | None = Field(None, max_length=64, description="IANA time zone name, e.g. Asia/Shanghai.")
    language: Language | None = Field(None, description="Language for texts shown to you.")
    birth_date: date | None = Field(None, description="Decides who may grant consent (under 14: a guardian). "
                                    "Can be corrected, not removed.")


class DependantOut(BaseModel):
    external_id: str
    birth_date: date | None
    age: int | None
    needs_guardian: bool


class DependantList(BaseModel):
    dependants: list[DependantOut]


class GuardianshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    guardian: str = Field(min_length=1, max_length=200, description="The guardian's external id (a policyholder).")
    minor: str = Field(min_length=1, max_length=200, description="The minor's external id (a policyholder).")
    minor_birth_date: date = Field(description="The minor's birth date from the insurer's files; must be under 14.")


class GuardianshipOut(BaseModel):
    guardian: str
    minor: str
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    active: bool

    @classmethod
    def of(cls, link: people.Guardianship) -> GuardianshipOut:
        return cls(guardian=link.guardian_external_id, minor=link.minor_external_id, created_by=link.created_by,
                   created_at=link.created_at, ended_at=link.ended_at, active=link.ended_at is None)


class GuardianshipList(BaseModel):
    guardianships: list[GuardianshipOut]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="Why the insurer erases this person's data.")


class ErasureReceiptOut(BaseModel):
    receipt_id: str
    person_id: UUID
    external_id: str
    erased_at: datetime
    erased: dict[str, int] = Field(description="Rows deleted per table.")
    kept: list[str] = Field(description="What the law requires us to keep, now restricted.")
    consents_withdrawn: int
    requested_by: str
    reason: str | None

    @classmethod
    def of(cls, r: ErasureReceipt) -> ErasureReceiptOut:
        return cls(receipt_id=r.receipt_id, person_id=r.person_id, external_id=r.external_id, erased_at=r.erased_at,
                   erased=r.erased, kept=list(r.kept), consents_withdrawn=r.consents_withdrawn,
                   requested_by=r.requested_by, reason=r.reason)
