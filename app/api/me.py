"""A policyholder's profile, data export, erasure and access log; the insurer's admin routes for guardians and
erasure."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from datetime import datetime

from fastapi import APIRouter, Body, Depends, Path, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from alerts import repository as alerts_repo
from app.api.consents import PROBLEMS
from app.api.deps import Principal, Services, policyholder, services, staff
from app.api.schemas import Problem
from app.core.errors import Forbidden, Invalid, NotFound
from consent import erasure, export, guardians, people, profile
from consent.schemas import (ErasureIn, ErasureReceiptOut, GuardianshipIn, GuardianshipList, GuardianshipOut,
                             ProfileOut, ProfilePatch)

router = APIRouter()

_ERASURE_DESCRIPTION = (
    "Deletes the person's readings, sources, guardian links and everything later tables register "
    "(detector state, anomaly events, alerts, notifications, push devices), all in one transaction. "
    "Kept, restricted: the consent history and state (proof of what was allowed), an audit-log tombstone, "
    "and the person's row as a tombstone (`erased_at`) so the external id never becomes someone new: "
    "afterwards the consent and profile routes answer 410 `erased` and readings are rejected. Answers with "
    "an erasure receipt. If erasure cannot be complete in this deployment, nothing is erased "
    "(500 `erasure_blocked` naming the table)."
)


async def tenant_admin(who: Principal = Depends(staff)) -> Principal:
    if who.claims.role != "tenant_admin":
        raise Forbidden("this route is for the insurer's tenant_admin")
    return who


@router.get("/v1/me", summary="My profile", tags=["profile"], response_model=ProfileOut,
            responses={410: PROBLEMS[410]})
async def my_profile(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        person = await profile.get(conn, person_id=who.person_id)
    return ProfileOut.of(person)


@router.patch("/v1/me", summary="Change my profile", tags=["profile"], response_model=ProfileOut,
              description="Fields left out stay as they are. `time_zone` is an IANA name (e.g. Asia/Shanghai); "
                          "`language` is `en` or `zh-CN`; `birth_date` decides who may grant consent: under 14, "
                          "the grants you gave yourself are withdrawn and a guardian grants instead. A birth date "
                          "the insurer set with a guardian link can only be changed by the insurer (409).",
              responses={409: {"model": Problem}, 410: PROBLEMS[410], 422: {"model": Problem}})
async def change_profile(body: ProfilePatch, who: Principal = Depends(policyholder),
                         svc: Services = Depends(services)):
    if "birth_date" in body.model_fields_set and body.birth_date is None:
        raise profile.InvalidProfile("birth_date can be corrected but not removed")
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        person = await profile.update(conn, tenant_id=who.tenant_id, person_id=who.person_id,
                                      time_zone=body.time_zone, language=body.language,
                                      birth_date=body.birth_date)
    return ProfileOut.of(person)


async def _then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


@router.get("/v1/me/export", summary="Export all my data", tags=["profile"],
            description="Everything held about you, streamed. `format=json` (default): profile, consents with "
                        "their history, readings, sources and every other table holding your data, plus row "
                        "counts. `format=fhir`: a FHIR R4 Bundle (type `collection`) of your Patient, Consent, "
                        "Device (sources) and Observation resources (readings with LOINC codes, UCUM units). "
                        "Readings older than the hot window (BEIDOU_HOT_DAYS) are compact history: `json` lists "
                        "its rows (`readings_packed`: per data type, UTC day and source, per-minute sums, lowest, "
                        "highest and counts of dense signals, every other reading exactly); in `fhir` a dense "
                        "signal has one Observation per minute (its average).",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/json": {}, "application/fhir+json": {}}},
                       410: PROBLEMS[410]})
async def export_my_data(format: Literal["json", "fhir"] = Query("json", description="`json` or `fhir`."),
                         who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    make = export.export_fhir if format == "fhir" else export.export_json
    stream = make(svc.reads, tenant_id=who.tenant_id, person_id=who.person_id)
    first = await anext(stream)  # checks the person before any byte of the document is sent
    media = "application/fhir+json" if format == "fhir" else "application/json"
    filename = f"health-beidou-export.{'fhir.json' if format == 'fhir' else 'json'}"
    return StreamingResponse(_then(first, stream), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _erase(svc: Services, who: Principal, *, person_id, subject: str, actor_kind: str, actor_id: str,
                 reason: str | None):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=person_id) as conn:
        receipt = await erasure.erase_person(conn, tenant_id=who.tenant_id, person_id=person_id,
                                             actor_kind=actor_kind, actor_id=actor_id, reason=reason)
    svc.principals.forget_person(who.tenant_id, subject)
    return ErasureReceiptOut.of(receipt)


@router.delete("/v1/me", summary="Erase my data", tags=["profile"], response_model=ErasureReceiptOut,
               description=_ERASURE_DESCRIPTION, responses={410: PROBLEMS[410], 500: {"model": Problem}})
async def erase_me(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    return await _erase(svc, who, person_id=who.person_id, subject=who.claims.subject, actor_kind="person",
                        actor_id=who.claims.subject, reason="requested by the person")


@router.post("/v1/admin/people/{external_id}/erasure", summary="Erase a policyholder's data", tags=["admin"],
             response_model=ErasureReceiptOut,
             description=_ERASURE_DESCRIPTION + " Only a `tenant_admin`; the reason is kept in the audit log.",
             responses={403: {"model": Problem}, **PROBLEMS, 500: {"model": Problem}})
async def erase_person(external_id: str = Path(description="The policyholder's external id."),
                       body: ErasureIn = Body(...), who: Principal = Depends(tenant_admin),
                       svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        person = await people.person_by_external_id(conn, external_id)
    if person is None:
        raise NotFound("no policyholder with that external id")
    return await _erase(svc, who, person_id=person.id, subject=external_id, actor_kind="staff",
                        actor_id=who.claims.subject, reason=body.reason)


@router.post("/v1/admin/guardianships", summary="Link a guardian to a person under 14", tags=["admin"],
             status_code=status.HTTP_201_CREATED, response_model=GuardianshipOut,
             description="Only a `tenant_admin`, from the insurer's own files. Both people are policyholders of "
                         "this insurer (created if they have not used the app yet). Records the minor's birth "
                         "date (which must be under 14; only the insurer changes it from then on) and withdraws "
                         "the grants the minor gave themselves. Linking again re-activates an ended link. Audited.",
             responses={403: {"model": Problem}, 410: PROBLEMS[410], 422: {"model": Problem}})
async def link_guardian(body: GuardianshipIn, who: Principal = Depends(tenant_admin),
                        svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        link = await guardians.link(conn, tenant_id=who.tenant_id, guardian_external_id=body.guardian,
                                    minor_external_id=body.minor, minor_birth_date=body.minor_birth_date,
                                    staff_external_id=who.claims.subject)
    return GuardianshipOut.of(link)


@router.get("/v1/admin/guardianships", summary="Guardian links", tags=["admin"], response_model=GuardianshipList,
            description="Every link of this insurer (active and ended), or those of one person.",
            responses={403: {"model": Problem}})
async def list_guardianships(person: str | None = Query(None, description="Only links where this external id is "
                                                               "the guardian or the minor."),
                             who: Principal = Depends(tenant_admin), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        found = await guardians.links(conn, external_id=person)
    return GuardianshipList(guardianships=[GuardianshipOut.of(g) for g in found])


@router.delete("/v1/admin/guardianships/{guardian}/{minor}", summary="End a guardian link", tags=["admin"],
               response_model=GuardianshipOut, responses={403: {"model": Problem}, 404: {"model": Problem}},
               description="From now on the guardian neither sees nor changes the minor's consents; grants they "
                           "gave stay until someone changes them. Audited.")
async def end_guardianship(guardian: str = Path(description="The guardian's external id."),
                           minor: str = Path(description="The minor's external id."),
                           who: Principal = Depends(tenant_admin), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        link = await guardians.unlink(conn, tenant_id=who.tenant_id, guardian_external_id=guardian,
                                      minor_external_id=minor, staff_external_id=who.claims.subject)
    return GuardianshipOut.of(link)


class AccessItem(BaseModel):
    at: datetime
    role: str | None = Field(description="The role of the staff member who looked: care_agent, care_supervisor or "
                                         "tenant_admin.")
    what: str = Field(description="What they looked at: `readings:<data type>` or `alert`.")
    why: str = Field(description="Why: `alert <id>` (an alert about you in their queue), or the reason they gave "
                                 "when they looked without one.")
    staff: str | None = Field(description="The staff member's id, only if your insurer chose to show it.")


class AccessLog(BaseModel):
    items: list[AccessItem]
    next: str | None = Field(description="Pass as `before` for older entries; null at the end.")


@router.get("/v1/me/access-log", summary="Who looked at my data", tags=["profile"], response_model=AccessLog,
            description="Every time your insurer's staff looked at your health data, newest first: when, their role "
                        "(their id only if your insurer chose to show it), what and why. Page with `before` = the "
                        "previous answer's `next`.",
            responses={410: PROBLEMS[410], 422: {"model": Problem}})
async def my_access_log(limit: int = Query(50, ge=1, le=200),
                        before: str | None = Query(None, max_length=40, description="`next` of the previous answer."),
                        who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> AccessLog:
    if before is not None and (not before.isdigit() or len(before) > 18):
        raise Invalid("invalid `before`: pass `next` of the previous answer")
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await profile.get(conn, person_id=who.person_id)
        rows, named = await alerts_repo.access_log(conn, person_id=who.person_id,
                                                   before=int(before) if before else None, limit=limit)
    items = []
    for row in rows:
        d = row["detail"] or {}
        what = d.get("what") or ("alert" if row["action"] == "alert.evidence_viewed" else f"readings:{d.get('metric')}")
        why = d.get("why") or (f"alert {d['alert_id']}" if d.get("alert_id") else "not recorded")
        items.append(AccessItem(at=row["at"], role=d.get("role"), what=what, why=why,
                                staff=row["staff"] if named else None))
    return AccessLog(items=items, next=str(rows[-1]["id"]) if len(rows) == limit else None)
