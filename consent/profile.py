"""A person's profile as the consent centre uses it: time zone, language, birth date.

The birth date decides who may grant consent. A person may state their own; once the insurer has linked
them to a guardian (which records the birth date from the insurer's files), only the insurer changes it — also
after that link ended.
A birth date that makes someone a minor withdraws the grants they gave themselves.
"""
from __future__ import annotations

import zoneinfo
from datetime import date
from functools import lru_cache
from uuid import UUID

import psycopg

from app.core.errors import Conflict, Invalid
from consent import people, repository, service
from consent.catalog import LANGUAGES

UNDER_AGE_REASON = "under_14"


class InvalidProfile(Invalid, code="invalid_profile"):
    """A profile value we cannot accept; the message says which and why."""


class BirthDateLocked(Conflict, code="birth_date_locked"):
    """The insurer set this birth date when it linked a guardian; only the insurer changes it."""


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# Names in the zone database that are not places: the server's own zone, POSIX rule files, a placeholder.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


def check_time_zone(name: str) -> str:
    """An IANA time zone name such as Asia/Shanghai, or InvalidProfile."""
    if name not in _zones() or name in _NOT_PLACES or name.startswith(("posix/", "right/")):
        raise InvalidProfile(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or UTC")
    zoneinfo.ZoneInfo(name)
    return name


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidProfile(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    return language


def check_birth_date(value: date, *, today: date) -> date:
    if value > today:
        raise InvalidProfile("birth_date is in the future")
    if value.year < 1900:
        raise InvalidProfile("birth_date is before 1900")
    return value


async def get(conn: psycopg.AsyncConnection, *, person_id: UUID) -> people.PersonFacts:
    """The person's profile; refused once their data was erased."""
    return await service.subject(conn, person_id=person_id)


async def update(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, time_zone: str | None = None,
                 language: str | None = None, birth_date: date | None = None) -> people.PersonFacts:
    """Change the given profile fields; a birth date under 14 withdraws the person's own grants."""
    if time_zone is not None:
        check_time_zone(time_zone)
        if not await people.time_zone_known(conn, time_zone):
            raise InvalidProfile(f"time zone {time_zone!r} is not known to the database; use another name for it")
    if language is not None:
        check_language(language)
    if birth_date is not None:
        check_birth_date(birth_date, today=date.today())
    await repository.lock_person(conn, person_id)
    person = await service.subject(conn, person_id=person_id)
    # Locked once the insurer recorded it with a guardian link, even after the link ended: otherwise a minor could
    # make themselves an adult the moment the guardian steps back.
    if (birth_date is not None and birth_date != person.birth_date
            and await people.birth_date_set_by_insurer(conn, person_id)):
        raise BirthDateLocked("your birth date was set by your insurer with your guardian; ask them to correct it")
    await people.update_profile(conn, person_id, time_zone=time_zone, language=language, birth_date=birth_date)
    person = await service.subject(conn, person_id=person_id)
    if service.is_minor(person):
        await service.withdraw_all(conn, tenant_id=tenant_id, person_id=person_id, reason=UNDER_AGE_REASON,
                                   only_actor=service.SELF)
    return person
