"""Push devices, reaching out to a person about an alert, and the person's messages and answers."""
from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from alerts import outbox_repository as outbox
from alerts import outreach
from alerts.messages import text_for
from app.api.care import AlertDetail, _actor, get_alert
from app.api.deps import Principal, Services, policyholder, services, staff
from app.api.schemas import Problem
from alerts import repository as repo
from app.core.errors import Conflict, Invalid
from consent.service import subject

router = APIRouter(tags=["outreach"])

_ERASED = {410: {"description": "Your data was erased (code `erased`): nothing more is stored for you."}}


class DeviceTokenInUse(Conflict):
    """The push token is registered to someone else whose device is not known to be gone."""

    code = "device_token_in_use"


async def _living(conn, who: Principal) -> None:
    """A policyholder's write needs a person whose data was not erased (410 ``erased``)."""
    if who.person_id is not None:
        await subject(conn, person_id=who.person_id)


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=4096, description="The push token the app got from its push "
                       "service (FCM, or the vendor service behind the insurer's push gateway).")
    provider: Literal["fcm", "gateway"] = Field(
        "fcm", description="Who delivers to this phone: `fcm` (Google), or `gateway` — the insurer's own push gateway, "
                           "for phones without Google services (Huawei, Xiaomi, OPPO, vivo, Honor). See docs/push.md.")
    platform: Literal["android", "ios", "web"]
    token_kind: Literal["registration", "installation"] = "registration"
    app_version: str | None = Field(None, max_length=64)
    language: str | None = Field(None, max_length=16, description="zh-CN or en; defaults to the person's language.")


class RegisteredDevice(BaseModel):
    id: UUID
    provider: Literal["fcm", "gateway"]
    platform: str
    app_version: str | None
    created_at: datetime


class DeviceRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=4096)


class MessageOut(BaseModel):
    id: UUID
    kind: str = Field(description="check_in or reconnect.")
    title: str
    body: str
    status: str
    created_at: datetime
    opened_at: datetime | None
    answer: Literal["fine", "help", "call"] | None
    answered_at: datetime | None
    reason: str | None = Field(None, description="What the care team noticed, in words (your own data).")


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: Literal["fine", "help", "call"] = Field(description='"I\'m fine", "I need help" or "please call me".')


_DEVICE_RULE = ("A token already registered to someone else is refused (409 `device_token_in_use`) unless the push "
                "service has confirmed that device gone (the token was dropped as unregistered); a staff member's "
                "device never moves to anyone else. Registering your own token again refreshes it.")


@router.post("/v1/me/devices", summary="Register this app for push notifications", response_model=RegisteredDevice,
             status_code=201, description=_DEVICE_RULE,
             responses={409: {"description": "The token belongs to another account"}, **_ERASED})
async def register_device(body: DeviceIn, who: Principal = Depends(policyholder),
                          svc: Services = Depends(services)) -> RegisteredDevice:
    return await _register(body, who, svc)


@router.post("/v1/care/me/devices", summary="Register a staff app for escalation pushes", response_model=RegisteredDevice,
             status_code=201, tags=["care team"], description=_DEVICE_RULE,
             responses={409: {"description": "The token belongs to another account"}})
async def register_staff_device(body: DeviceIn, who: Principal = Depends(staff),
                                svc: Services = Depends(services)) -> RegisteredDevice:
    return await _register(body, who, svc)


async def _register(body: DeviceIn, who: Principal, svc: Services) -> RegisteredDevice:
    # Tenant-scoped: the row a token conflicts with may belong to someone a person-scoped transaction cannot see.
    # The owner written comes from the token, never from the body.
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await _living(conn, who)
        row = await outbox.register_device(
            conn, tenant_id=who.tenant_id, person_id=who.person_id, staff_id=who.staff.id if who.staff else None,
            provider=body.provider, token=body.token, token_kind=body.token_kind, platform=body.platform,
            app_version=body.app_version, language=body.language)
    if row is None:
        raise DeviceTokenInUse("this push token is registered to another account; it moves only once that "
                               "device is confirmed gone")
    return RegisteredDevice(**row)


@router.delete("/v1/me/devices", summary="Stop push notifications to this app", status_code=204, responses=_ERASED)
async def remove_device(body: DeviceRemove, who: Principal = Depends(policyholder),
                        svc: Services = Depends(services)) -> Response:
    return await _remove(body, who, svc)


@router.delete("/v1/care/me/devices", summary="Stop escalation pushes to a staff app", status_code=204,
               tags=["care team"])
async def remove_staff_device(body: DeviceRemove, who: Principal = Depends(staff),
                              svc: Services = Depends(services)) -> Response:
    return await _remove(body, who, svc)


async def _remove(body: DeviceRemove, who: Principal, svc: Services) -> Response:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await _living(conn, who)
        await outbox.remove_device(conn, token=body.token, person_id=who.person_id,
                                   staff_id=who.staff.id if who.staff else None)
    return Response(status_code=204)


@router.post("/v1/care/alerts/{alert_id}/reach-out", summary="Ask the person “do you need help?” by push",
             response_model=AlertDetail, tags=["care team"],
             description="Queues a check-in push in the same transaction. Outside critical alerts it waits for the "
                         "end of the person's quiet hours (default 22:00–08:00 in their time zone) or for room under "
                         "the weekly cap; the alert's notifications show `held` and until when. 409 without the "
                         "person's outreach consent in force for the alert's data type (code `no_outreach_consent`: "
                         "not granted, withdrawn, expired, or monitoring not granted) — call them instead.",
             responses={404: {"model": Problem, "description": "No such alert"},
                        409: {"model": Problem, "description": "Resolved, or no outreach consent in force (`no_outreach_consent`)"}})
async def reach_out(alert_id: UUID, who: Principal = Depends(staff), svc: Services = Depends(services)) -> AlertDetail:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await outreach.reach_out(conn, alert_id=alert_id, actor=_actor(who),
                                 weekly_cap=svc.settings.outreach_weekly_cap)
    return await get_alert(alert_id, who, svc)


def _message(row: dict) -> MessageOut:
    title, body = text_for(row["purpose"], row["language"])
    return MessageOut(id=row["id"], kind=row["purpose"], title=title, body=body, status=row["status"],
                      created_at=row["created_at"], opened_at=row["opened_at"], answer=row["answer"],
                      answered_at=row["answered_at"], reason=row["summary"])


@router.get("/v1/me/messages/{message_id}", summary="A message from the care team (marks it opened)",
            response_model=MessageOut, responses={404: {"description": "No such message for you"}})
async def get_message(message_id: UUID, who: Principal = Depends(policyholder),
                      svc: Services = Depends(services)) -> MessageOut:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        row = await outreach.message_for_person(conn, person_id=who.person_id, notification_id=message_id,
                                                mark_opened=True)
    return _message(row)


@router.post("/v1/me/messages/{message_id}/reply", summary="Answer the care team",
             response_model=MessageOut, responses={404: {"description": "No such message for you"}, **_ERASED},
             description="`fine` resolves the alert as member fine (an agent can reopen it); `help` and `call` make "
                         "it urgent for whoever has it now (or the supervisors and on-duty staff), who are notified "
                         "at once. One answer per message: a later answer is recorded, and changes nothing. After "
                         "you withdrew the data behind the alert, `help` reaches the care team as a request for "
                         "help that carries none of that data.")
async def reply(message_id: UUID, body: ReplyIn, who: Principal = Depends(policyholder),
                svc: Services = Depends(services)) -> MessageOut:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await _living(conn, who)
        row = await outreach.reply(conn, person_id=who.person_id, notification_id=message_id, answer=body.answer)
    return _message(row)


# Wall-clock times in the person's own time zone, without a UTC offset: JSON Schema's `time` format (RFC 3339
# full-time) requires an offset, so the answers ("22:00:00") would not match it.
_LOCAL_TIME = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$"}


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Annotated[time, WithJsonSchema({**_LOCAL_TIME, "description": "Local time quiet hours begin, e.g. 22:00."})]
    end: Annotated[time, WithJsonSchema({**_LOCAL_TIME, "description": "Local time they end, e.g. 08:00. Equal to "
                                                                        "`start`: no quiet hours."})]


@router.get("/v1/me/quiet-hours", summary="When the care team's check-ins wait", response_model=QuietHours)
async def get_quiet_hours(who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> QuietHours:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        start, end = await repo.quiet_hours(conn, who.person_id)
    return QuietHours(start=start, end=end)


@router.put("/v1/me/quiet-hours", summary="Set my quiet hours", response_model=QuietHours,
            description="In your own time zone (your profile's `time_zone`): wall-clock times without a UTC offset "
                        "(one is refused with 422, as it would be dropped). Outside critical alerts, check-ins wait "
                        "until quiet hours end.", responses={422: {"description": "A time with a UTC offset"},
                                                              **_ERASED})
async def put_quiet_hours(body: QuietHours, who: Principal = Depends(policyholder),
                          svc: Services = Depends(services)) -> QuietHours:
    if body.start.tzinfo is not None or body.end.tzinfo is not None:
        raise Invalid("quiet hours are wall-clock times in your own time zone: leave out the UTC offset "
                      "(e.g. 22:00); set your time zone in your profile")
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await _living(conn, who)
        await repo.set_quiet_hours(conn, who.person_id, body.start, body.end)
    return body
