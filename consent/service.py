"""Granting and withdrawing consent. The history is append-only; current state is derived from it.

Every change goes through :func:`record`, which serialises changes per person, appends the event and
announces it on ``beidou_consent`` (delivered at commit). Callers decide who may change what:
:func:`change_own` for a person, :func:`change_for_dependant` for a guardian, :func:`withdraw_all` for the
system (a birth date that makes someone a minor, erasure).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import psycopg

from app.core import channels
from app.core.errors import Forbidden, Gone, Invalid, NotFound
from consent import people, repository
from consent.catalog import (AGE_OF_CONSENT, DATA_TYPE_NAMES, DATA_TYPES, NEEDS, PURPOSE_NAMES, PURPOSES,
                             describe, language_or_default)

SELF, GUARDIAN, SYSTEM = "self", "guardian", "system"


class UnknownConsentTarget(NotFound, code="unknown_consent_target"):
    """The data type or purpose is not one we know."""


class InvalidConsent(Invalid, code="invalid_consent"):
    """The request is well-formed but cannot be a consent (e.g. it would end in the past)."""


class GuardianRequired(Forbidden, code="guardian_required"):
    """The person is under the age of consent: only a guardian may grant for them."""


class DependantDecides(Forbidden, code="dependant_decides"):
    """The dependant has reached the age of consent (or their age is unknown) and decides for themselves."""


class NoSuchDependant(NotFound):
    """The caller is not an active guardian of that person (never says whether the person exists)."""


class PersonErased(Gone):
    """The person's data was erased; the row left behind is a tombstone that nothing may act on."""


# How a change travels between processes (LISTEN/NOTIFY payload): declared with the channel.
ConsentChange = channels.ConsentChange


@dataclass(frozen=True, slots=True)
class ConsentView:
    """One data type × purpose as a person sees it: state, what it needs, what it means."""

    data_type: str
    purpose: str
    granted: bool
    in_effect: bool
    needs: tuple[str, ...]
    valid_until: datetime | None
    updated_at: datetime | None
    notice_version: str | None
    app: str | None
    actor: str | None
    event_id: int | None
    title: str
    description: str


def check_target(data_type: str, purpose: str) -> None:
    """Refuse data types and purposes that are not in the catalogue."""
    if data_type not in DATA_TYPES:
        raise UnknownConsentTarget(f"unknown data type {data_type!r}; known: {', '.join(DATA_TYPES)}")
    if purpose not in PURPOSES:
        raise UnknownConsentTarget(f"unknown purpose {purpose!r}; known: {', '.join(PURPOSES)}")


def is_minor(person: people.PersonFacts) -> bool:
    """Under the age of consent by the birth date we hold (unknown birth date: not a minor)."""
    return person.age is not None and person.age < AGE_OF_CONSENT


def _check_valid_until(valid_until: datetime | None) -> None:
    if valid_until is None:
        return
    if valid_until.tzinfo is None:
        raise InvalidConsent("valid_until needs a UTC offset, e.g. 2027-01-01T00:00:00+08:00")
    if valid_until <= datetime.now(timezone.utc):
        raise InvalidConsent("valid_until is in the past: a consent must end after it is given")


async def record(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str, purpose: str,
                 grant: bool, notice_version: str | None = None, app: str | None = None, actor: str = SELF,
                 valid_until: datetime | None = None, actor_person_id: UUID | None = None,
                 reason: str | None = None) -> repository.ConsentEvent:
    """Append a grant or withdrawal to the person's history and announce it to every process."""
    check_target(data_type, purpose)
    await repository.lock_person(conn, person_id)
    event = await repository.insert_event(
        conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type, purpose=purpose,
        action="grant" if grant else "withdraw", notice_version=notice_version, app=app, actor=actor,
        valid_until=valid_until if grant else None, actor_person_id=actor_person_id, reason=reason,
    )
    await repository.notify_change(conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type,
                                   purpose=purpose, granted=grant)
    return event


async def subject(conn: psycopg.AsyncConnection, *, person_id: UUID) -> people.PersonFacts:
    """The person as the database has them now; refused if their data was erased."""
    person = await people.person(conn, person_id)
    if person is None:
        raise NotFound("no such person")
    if person.erased_at is not None:
        raise PersonErased("this person's data was erased; nothing more can be done for them")
    return person


async def change_own(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, data_type: str,
                     purpose: str, grant: bool, notice_version: str | None = None, app: str | None = None,
                     valid_until: datetime | None = None) -> repository.ConsentEvent:
    """A person grants or withdraws their own consent; under 14 only withdrawing is theirs to do."""
    check_target(data_type, purpose)
    if grant:
        _check_valid_until(valid_until)
    await repository.lock_person(conn, person_id)
    person = await subject(conn, person_id=person_id)
    if grant and is_minor(person):
        raise GuardianRequired(f"people under {AGE_OF_CONSENT} need a guardian's grant; ask your guardian to "
                               "grant it in their app (withdrawing is always yours to do)")
    return await record(conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type, purpose=purpose,
                        grant=grant, notice_version=notice_version, app=app, valid_until=valid_until)


async def dependant_of(conn: psycopg.AsyncConnection, *, guardian_id: UUID, external_id: str) -> people.PersonFacts:
    """The caller's dependant with this external id (an active link is required)."""
    minor = await people.dependant(conn, guardian_id=guardian_id, external_id=external_id)
    if minor is None:
        raise NoSuchDependant("you are not the guardian of that person")
    if minor.erased_at is not None:
        raise PersonErased("this person's data was erased; nothing more can be done for them")
    return minor


async def change_for_dependant(conn: psycopg.AsyncConnection, *, tenant_id: UUID, guardian_id: UUID,
                               dependant_external_id: str, data_type: str, purpose: str, grant: bool,
                               notice_version: str | None = None, app: str | None = None,
                               valid_until: datetime | None = None) -> repository.ConsentEvent:
    """A guardian grants or withdraws consent for a linked dependant under 14."""
    check_target(data_type, purpose)
    if grant:
        _check_valid_until(valid_until)
    minor = await dependant_of(conn, guardian_id=guardian_id, external_id=dependant_external_id)
    await repository.lock_person(conn, minor.id)
    if not is_minor(minor):
        raise DependantDecides(f"{dependant_external_id} is {AGE_OF_CONSENT} or older and decides for themselves")
    return await record(conn, tenant_id=tenant_id, person_id=minor.id, data_type=data_type, purpose=purpose,
                        grant=grant, notice_version=notice_version, app=app, valid_until=valid_until,
                        actor=GUARDIAN, actor_person_id=guardian_id)


async def withdraw_all(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, reason: str,
                       only_actor: str | None = None) -> list[repository.ConsentEvent]:
    """Withdraw every grant the person has (optionally only those given by ``only_actor``), as the system."""
    await repository.lock_person(conn, person_id)
    events = []
    for data_type, purpose in await repository.active_grants(conn, person_id, actor=only_actor):
        events.append(await record(conn, tenant_id=tenant_id, person_id=person_id, data_type=data_type,
                                   purpose=purpose, grant=False, actor=SYSTEM, reason=reason))
    return events


async def overview(conn: psycopg.AsyncConnection, *, person_id: UUID, language: str | None) -> list[ConsentView]:
    """Every data type × purpose with its current state and a plain-language description."""
    lang = language_or_default(language)
    current = {(c.data_type, c.purpose): c for c in await repository.current_with_events(conn, person_id)}
    views = []
    for data_type in DATA_TYPES:
        for purpose in PURPOSES:
            c = current.get((data_type, purpose))
            is_granted = c is not None and c.granted
            views.append(ConsentView(
                data_type=data_type, purpose=purpose, granted=is_granted,
                in_effect=c is not None and c.in_force,
                needs=NEEDS[purpose], valid_until=c.valid_until if c else None,
                updated_at=c.updated_at if c else None, notice_version=c.notice_version if c else None,
                app=c.app if c else None, actor=c.actor if c else None, event_id=c.event_id if c else None,
                title=f"{PURPOSE_NAMES[purpose][lang]} · {DATA_TYPE_NAMES[data_type][lang]}",
                description=describe(data_type, purpose, lang),
            ))
    return views


async def history(conn: psycopg.AsyncConnection, *, person_id: UUID) -> list[repository.ConsentEvent]:
    """Every grant, change and withdrawal of the person, oldest first."""
    return await repository.history(conn, person_id)
