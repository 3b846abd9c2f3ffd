"""Consent: a policyholder's own (read, grant, withdraw, history, FHIR) and, for guardians, their dependants'.

(Consents that reach their valid_until are recorded and announced by :func:`consent.expiry.run_forever`, which
the app factory starts with the other background tasks.)
"""
from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Body, Depends, Path
from fastapi.responses import JSONResponse

from app.api.deps import Principal, Services, policyholder, services
from app.api.schemas import Problem
from app.api.problems import problem_response
from app.core.errors import BeidouError
from consent import fhir, guardians, repository, service
from consent.catalog import MONITORING
from consent.schemas import (ConsentChangeOut, ConsentGrantIn, ConsentOverviewOut, ConsentItemOut, ConsentWithdrawIn,
                             DependantList, DependantOut, HistoryEventOut, HistoryOut, ShorthandGrantIn)


router = APIRouter(tags=["consent"])

# Every domain error is a BeidouError, rendered by the app's one handler. These two names remain only for
# routers that still catch errors themselves (app/api/me.py); new code raises and lets the handler answer.
DOMAIN_ERRORS = (BeidouError,)
problem = problem_response
PROBLEMS = {404: {"model": Problem, "description": "Unknown data type or purpose, or no such dependant."},
            410: {"model": Problem, "description": "This person's data was erased (code `erased`)."}}
_DATA_TYPE = Path(description="A data type, e.g. heart_rate (the ingest metrics).")
_PURPOSE = Path(description="`monitoring`, `outreach` or `research`.")
_DEPENDANT = Path(description="The dependant's external id (as the insurer knows them).")


def _as_said(body: ConsentGrantIn | ShorthandGrantIn | ConsentWithdrawIn | None) -> dict:
    """What a grant or withdrawal body says beside the decision itself (every field optional)."""
    return {"notice_version": body.notice_version if body else None, "app": body.app if body else None,
            "valid_until": getattr(body, "valid_until", None)}


async def _change_own(who: Principal, svc: Services, data_type: str, purpose: str, grant: bool,
                      body: ConsentGrantIn | ShorthandGrantIn | ConsentWithdrawIn | None):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        event = await service.change_own(
            conn, tenant_id=who.tenant_id, person_id=who.person_id, data_type=data_type, purpose=purpose,
            grant=grant, **_as_said(body))
    return ConsentChangeOut.of(event)


@router.get("/v1/me/consents", summary="My consents: every data type × purpose", response_model=ConsentOverviewOut,
            description="The current state of every data type × purpose (never decided = not granted), with what "
                        "each means in plain words in your profile's language (`en` or `zh-CN`).",
            responses={410: PROBLEMS[410]})
async def my_consents(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        person = await service.subject(conn, person_id=who.person_id)
        views = await service.overview(conn, person_id=who.person_id, language=person.language)
    return ConsentOverviewOut(language=person.language, consents=[ConsentItemOut.of(v) for v in views])


@router.get("/v1/me/consents/history", summary="My consent history", response_model=HistoryOut,
            description="Every grant, change and withdrawal, oldest first, each with its receipt id. The history "
                        "is append-only: nothing in it is ever changed or removed, not even by erasure.",
            responses={410: PROBLEMS[410]})
async def my_history(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await service.subject(conn, person_id=who.person_id)
        events = await service.history(conn, person_id=who.person_id)
    return HistoryOut(events=[HistoryEventOut.of(e) for e in events])


@router.get("/v1/me/consents/fhir", summary="My consents as FHIR R4 Consent resources",
            description="A Bundle of type `collection` with one Consent per data type × purpose ever decided: "
                        "status `active` with provision `permit` while granted; `inactive` once withdrawn "
                        "(provision `deny`) or past its end (provision `permit`, period ended). Scope "
                        "`patient-privacy`, purpose coded in our system and HL7 v3 ActReason, class = data type.",
            response_class=JSONResponse, responses={200: {"content": {"application/fhir+json": {}}},
                                                    410: PROBLEMS[410]})
async def my_consents_fhir(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await service.subject(conn, person_id=who.person_id)
        currents = await repository.current_with_events(conn, who.person_id)
    bundle = fhir.consent_bundle(currents, person_id=who.person_id, now=datetime.now(timezone.utc))
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.put("/v1/me/consents/{data_type}/{purpose}", summary="Grant or change a consent",
            description="Records a grant with the notice version you saw, the app, and an optional end "
                        "(`valid_until`); granting again changes it. Returns a consent receipt. People under 14 "
                        "cannot grant themselves (403 `guardian_required`): their guardian grants for them.",
            response_model=ConsentChangeOut, responses={403: {"model": Problem}, **PROBLEMS, 422: {"model": Problem}})
async def grant(data_type: str = _DATA_TYPE, purpose: str = _PURPOSE, body: ConsentGrantIn = Body(...),
                who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    return await _change_own(who, svc, data_type, purpose, True, body)


@router.delete("/v1/me/consents/{data_type}/{purpose}", summary="Withdraw a consent",
               description="The same route as granting and needs no more: the body is optional (`app`, "
                           "`notice_version`). Takes effect at once and is announced to every process; for "
                           "`monitoring`, new readings of the type are rejected with `no_consent`. Other purposes "
                           "and data types are untouched. Returns a receipt.",
               response_model=ConsentChangeOut, responses=PROBLEMS)
async def withdraw(data_type: str = _DATA_TYPE, purpose: str = _PURPOSE, body: ConsentWithdrawIn | None = Body(None),
                   who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    return await _change_own(who, svc, data_type, purpose, False, body)


@router.put("/v1/me/consents/{data_type}", summary="Grant monitoring consent for a data type (shorthand)",
            description="Shorthand for `PUT /v1/me/consents/{data_type}/monitoring`, kept for existing clients: "
                        "the body is optional and a missing notice version is recorded as unknown. From the moment "
                        "this returns, readings of this data type are stored and analysed for your care.",
            response_model=ConsentChangeOut, responses={403: {"model": Problem}, **PROBLEMS})
async def grant_monitoring(data_type: str = _DATA_TYPE, body: ShorthandGrantIn | None = Body(None),
                           who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    return await _change_own(who, svc, data_type, MONITORING, True, body)


@router.delete("/v1/me/consents/{data_type}", summary="Withdraw monitoring consent for a data type (shorthand)",
               description="Shorthand for `DELETE /v1/me/consents/{data_type}/monitoring`. Takes effect at once: new "
                           "readings of this type are rejected with `no_consent`, and every open stream of yours is "
                           "told.",
               response_model=ConsentChangeOut, responses=PROBLEMS)
async def withdraw_monitoring(data_type: str = _DATA_TYPE, body: ConsentWithdrawIn | None = Body(None),
                              who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    return await _change_own(who, svc, data_type, MONITORING, False, body)


@router.get("/v1/me/dependants", summary="People I am the guardian of", response_model=DependantList,
            description="The people under 14 the insurer has linked to you as their guardian.")
async def my_dependants(who: Principal = Depends(policyholder), svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        found = await guardians.dependants(conn, guardian_id=who.person_id)
    return DependantList(dependants=[DependantOut(external_id=p.external_id, birth_date=p.birth_date, age=p.age,
                                                  needs_guardian=service.is_minor(p)) for p in found])


@router.get("/v1/me/dependants/{person}/consents", summary="A dependant's consents",
            response_model=ConsentOverviewOut, responses=PROBLEMS,
            description="Like `GET /v1/me/consents`, for a person you are the guardian of, in your language.")
async def dependant_consents(person: str = _DEPENDANT, who: Principal = Depends(policyholder),
                             svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        me = await service.subject(conn, person_id=who.person_id)
        minor = await service.dependant_of(conn, guardian_id=who.person_id, external_id=person)
        views = await service.overview(conn, person_id=minor.id, language=me.language)
    return ConsentOverviewOut(language=me.language, consents=[ConsentItemOut.of(v) for v in views])


@router.get("/v1/me/dependants/{person}/consents/history", summary="A dependant's consent history",
            response_model=HistoryOut, responses=PROBLEMS)
async def dependant_history(person: str = _DEPENDANT, who: Principal = Depends(policyholder),
                            svc: Services = Depends(services)):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        minor = await service.dependant_of(conn, guardian_id=who.person_id, external_id=person)
        events = await service.history(conn, person_id=minor.id)
    return HistoryOut(events=[HistoryEventOut.of(e) for e in events])


async def _change_for(who: Principal, svc: Services, person: str, data_type: str, purpose: str, grant: bool,
                      body: ConsentGrantIn | ConsentWithdrawIn | None):
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await service.subject(conn, person_id=who.person_id)
        event = await service.change_for_dependant(
            conn, tenant_id=who.tenant_id, guardian_id=who.person_id, dependant_external_id=person,
            data_type=data_type, purpose=purpose, grant=grant, **_as_said(body))
    return ConsentChangeOut.of(event)


@router.put("/v1/me/dependants/{person}/consents/{data_type}/{purpose}", summary="Grant a consent for my dependant",
            description="As their guardian, for a person under 14 linked to you by the insurer. The event records "
                        "actor `guardian` and who you are. From 14 the person decides (403 `dependant_decides`).",
            response_model=ConsentChangeOut, responses={403: {"model": Problem}, **PROBLEMS, 422: {"model": Problem}})
async def grant_for_dependant(person: str = _DEPENDANT, data_type: str = _DATA_TYPE, purpose: str = _PURPOSE,
                              body: ConsentGrantIn = Body(...), who: Principal = Depends(policyholder),
                              svc: Services = Depends(services)):
    return await _change_for(who, svc, person, data_type, purpose, True, body)


@router.delete("/v1/me/dependants/{person}/consents/{data_type}/{purpose}",
               summary="Withdraw a consent for my dependant",
               description="Same route and no more than granting needed. Takes effect at once, like your own.",
               response_model=ConsentChangeOut, responses={403: {"model": Problem}, **PROBLEMS})
async def withdraw_for_dependant(person: str = _DEPENDANT, data_type: str = _DATA_TYPE, purpose: str = _PURPOSE,
                                 body: ConsentWithdrawIn | None = Body(None), who: Principal = Depends(policyholder),
                                 svc: Services = Depends(services)):
    return await _change_for(who, svc, person, data_type, purpose, False, body)
