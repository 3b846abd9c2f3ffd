"""A policyholder's consents: read, grant, withdraw."""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, HTTPException, Path, status

from app.api.deps import Principal, Services, policyholder, services
from app.api.schemas import ConsentGrantIn, ConsentList, ConsentOut
from consent import repository, service
from consent.catalog import MONITORING

router = APIRouter(tags=["consent"])

_DATA_TYPE = Path(description="A data type, e.g. heart_rate (see the ReadingIn metric list).")


@router.get("/v1/me/consents", summary="My current consents", response_model=ConsentList)
async def my_consents(who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> ConsentList:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        states = await repository.current_for_person(conn, who.person_id)
    return ConsentList(consents=[ConsentOut(data_type=s.data_type, purpose=s.purpose, granted=s.granted,
                                            valid_until=s.valid_until, updated_at=s.updated_at) for s in states])


async def _record(who: Principal, svc: Services, data_type: str, grant: bool, body: ConsentGrantIn | None) -> ConsentOut:
    body = body or ConsentGrantIn()
    try:
        async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
            event = await service.record(
                conn, tenant_id=who.tenant_id, person_id=who.person_id, data_type=data_type, purpose=MONITORING,
                grant=grant, notice_version=body.notice_version, app=body.app, valid_until=body.valid_until,
            )
    except service.UnknownConsentTarget as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    return ConsentOut(data_type=data_type, purpose=MONITORING, granted=grant,
                      valid_until=event.valid_until, updated_at=event.created_at)


@router.put(
    "/v1/me/consents/{data_type}",
    summary="Grant monitoring consent for a data type",
    description="From the moment this returns, readings of this data type are stored and analysed for your care.",
    response_model=ConsentOut,
)
async def grant_consent(data_type: str = _DATA_TYPE, body: ConsentGrantIn | None = Body(None),
                        who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> ConsentOut:
    return await _record(who, svc, data_type, True, body)


@router.delete(
    "/v1/me/consents/{data_type}",
    summary="Withdraw monitoring consent for a data type",
    description="Takes effect at once: new readings of this type are rejected with `no_consent`, and every open "
                "stream of yours is told.",
    response_model=ConsentOut,
)
async def withdraw_consent(data_type: str = _DATA_TYPE, who: Principal = Depends(policyholder),
                           svc: Services = Depends(services)) -> ConsentOut:
    return await _record(who, svc, data_type, False, None)
