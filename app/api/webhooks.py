"""Tenant admins manage the insurer's webhook endpoints: where events go, which, and the signing secret.

Events leave through the notification outbox (see alerts/webhooks.py and docs/webhooks.md): signed per the
Standard Webhooks spec, at least once, in order per alert, with backoff, a dead letter and a manual replay.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from alerts import outbox_repository as outbox
from alerts.signing import new_secret, valid_secret
from alerts.webhooks import check_url
from app.api.deps import Principal, Services, services, staff
from app.core.errors import Conflict, Forbidden, Invalid, NotFound

router = APIRouter(prefix="/v1/tenant/webhooks", tags=["webhooks"])

Event = Literal["alert.opened", "alert.claimed", "alert.contacted", "alert.resolved", "member.replied",
                "consent.changed"]
_NOT_FOUND = {404: {"description": "No such endpoint (or delivery) at this insurer"}}


async def tenant_admin(who: Principal = Depends(staff)) -> Principal:
    if who.staff.role != "tenant_admin":
        raise Forbidden("only a tenant admin manages webhooks")
    return who


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="https:// (plain http only to loopback).")
    events: list[Event] = Field(min_length=1, max_length=6)
    description: str | None = Field(None, max_length=500)
    include_health_values: bool = Field(False, description="Add the detector's wording (which quotes values) to "
                                        "alert events. Off: ids and states only.")
    enabled: bool = Field(True, description="False: registered, but nothing is sent until it is enabled.")
    secret: str | None = Field(None, max_length=200, description="A Standard Webhooks secret (`whsec_` + base64 of "
                               "24–64 bytes); omitted: one is generated and returned once.")


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, min_length=1, max_length=2048)
    events: list[Event] | None = Field(None, min_length=1, max_length=6)
    description: str | None = Field(None, max_length=500)
    include_health_values: bool | None = None
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    include_health_values: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_until: datetime | None = Field(description="During a rotation: until when the old secret "
                                                   "still signs (a second signature).")


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret. Shown only now: store it in the receiving system.")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_minutes: int = Field(24 * 60, ge=0, le=7 * 24 * 60, description="How long the old secret keeps "
                                 "signing beside the new one (0: stop at once).")


class Delivery(BaseModel):
    id: UUID = Field(description="Also the `webhook-id` header, prefixed `msg_`.")
    event: str
    alert_id: UUID | None
    status: str = Field(description="queued, sending, sent, failed (dead letter) or cancelled.")
    status_detail: str | None
    attempts: int
    not_before: datetime
    created_at: datetime
    updated_at: datetime
    payload: dict


def _secret(value: str | None) -> str:
    if value is None:
        return new_secret()
    if not value.startswith("whsec_") or not valid_secret(value) or not 24 <= _secret_bytes(value) <= 64:
        raise Invalid("the secret must be whsec_ followed by base64 of 24 to 64 random bytes", code="invalid_secret")
    return value


def _secret_bytes(value: str) -> int:
    return len(base64.b64decode(value[len("whsec_"):] + "=="))


@router.get("", summary="The insurer's webhook endpoints (tenant admins)", response_model=list[EndpointOut])
async def list_endpoints(who: Principal = Depends(tenant_admin), svc: Services = Depends(services)) -> list[dict]:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        return await outbox.list_endpoints(conn)


@router.post("", summary="Add a webhook endpoint (tenant admins)", response_model=EndpointWithSecret, status_code=201,
             responses={422: {"description": "Not an https URL (or loopback http), or an unusable secret"}})
async def create_endpoint(body: EndpointIn, who: Principal = Depends(tenant_admin),
                          svc: Services = Depends(services)) -> dict:
    check_url(body.url)
    secret = _secret(body.secret)
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        row = await outbox.create_endpoint(conn, tenant_id=who.tenant_id, url=body.url,
                                           events=list(dict.fromkeys(body.events)), description=body.description,
                                           include_health_values=body.include_health_values, secret=secret,
                                           enabled=body.enabled, by=who.claims.subject)
    return {**row, "secret": secret}


@router.get("/{endpoint_id}", summary="A webhook endpoint", response_model=EndpointOut, responses=_NOT_FOUND)
async def get_endpoint(endpoint_id: UUID, who: Principal = Depends(tenant_admin),
                       svc: Services = Depends(services)) -> dict:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        row = await outbox.get_endpoint(conn, endpoint_id)
    if row is None:
        raise NotFound("no such webhook endpoint")
    return row


@router.patch("/{endpoint_id}", summary="Change a webhook endpoint", response_model=EndpointOut,
              responses={**_NOT_FOUND, 422: {"description": "Not an https URL (or loopback http)"}})
async def patch_endpoint(endpoint_id: UUID, body: EndpointPatch, who: Principal = Depends(tenant_admin),
                         svc: Services = Depends(services)) -> dict:
    fields = body.model_dump(exclude_unset=True)
    for name in ("url", "events", "include_health_values", "enabled"):
        if name in fields and fields[name] is None:
            raise Invalid(f"{name} cannot be null")
    if "url" in fields:
        check_url(fields["url"])
    if "events" in fields:
        fields["events"] = list(dict.fromkeys(fields["events"]))
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        row = await (outbox.update_endpoint(conn, endpoint_id, **fields) if fields
                     else outbox.get_endpoint(conn, endpoint_id))
    if row is None:
        raise NotFound("no such webhook endpoint")
    return row


@router.delete("/{endpoint_id}", summary="Remove a webhook endpoint (and its pending deliveries)", status_code=204,
               responses=_NOT_FOUND)
async def delete_endpoint(endpoint_id: UUID, who: Principal = Depends(tenant_admin),
                          svc: Services = Depends(services)) -> Response:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        if not await outbox.delete_endpoint(conn, endpoint_id):
            raise NotFound("no such webhook endpoint")
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", summary="Rotate the signing secret, with an overlap",
             response_model=EndpointWithSecret, responses=_NOT_FOUND,
             description="The new secret signs from now on. Until `previous_secret_until` every request also "
                         "carries a signature made with the old secret, so the receiver can switch at its own pace.")
async def rotate_secret(endpoint_id: UUID, body: RotateIn | None = None, who: Principal = Depends(tenant_admin),
                        svc: Services = Depends(services)) -> dict:
    body = body or RotateIn()
    secret = new_secret()
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        row = await outbox.rotate_secret(conn, endpoint_id, secret, timedelta(minutes=body.overlap_minutes))
    if row is None:
        raise NotFound("no such webhook endpoint")
    return {**row, "secret": secret}


@router.get("/{endpoint_id}/deliveries", summary="Events sent (or to be sent) to an endpoint, newest first",
            response_model=list[Delivery], responses=_NOT_FOUND)
async def deliveries(endpoint_id: UUID, status: Literal["queued", "sending", "sent", "failed", "cancelled"] | None
                     = Query(None, description="`failed`: the dead letters."),
                     limit: int = Query(50, ge=1, le=500), who: Principal = Depends(tenant_admin),
                     svc: Services = Depends(services)) -> list[dict]:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        if await outbox.get_endpoint(conn, endpoint_id) is None:
            raise NotFound("no such webhook endpoint")
        return await outbox.webhook_deliveries(conn, endpoint_id, status=status, limit=limit)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/replay", summary="Send an event again", status_code=202,
             responses={**_NOT_FOUND, 409: {"description": "The event is still pending: it will be sent anyway"}},
             description="For a dead letter (or a delivered event the receiver lost). The event keeps its id "
                         "(`webhook-id`), payload and place in its alert's order; it is signed afresh.")
async def replay(endpoint_id: UUID, delivery_id: UUID, who: Principal = Depends(tenant_admin),
                 svc: Services = Depends(services)) -> Response:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        if await outbox.replay_delivery(conn, endpoint_id, delivery_id):
            return Response(status_code=202)
        if not await outbox.webhook_delivery_exists(conn, endpoint_id, delivery_id):
            raise NotFound("no such delivery for this endpoint")
    raise Conflict("the event is still pending; it will be sent")
