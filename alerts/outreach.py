"""Reaching out to a person about an alert, respecting their quiet hours and a weekly cap, and what
happens when they answer."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from alerts import outbox_repository as outbox
from alerts import repository as repo
from alerts import service, timeline
from app.core.db import tenant_wide
from app.core.errors import Conflict, NotFound
from consent import repository as consent_repo
from consent.catalog import MONITORING, OUTREACH

ANSWERS = ("fine", "help", "call")
PENDING = outbox.PENDING


class NoOutreachConsent(Conflict):
    """The person's outreach consent for the alert's data type is not in force: no push."""

    code = "no_outreach_consent"


def quiet_until(now: datetime, zone: str, start: time, end: time) -> datetime | None:
    """The end of the person's quiet hours if ``now`` falls inside them (in their own time zone), else None."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = timezone.utc
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside or start == end:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=tz).astimezone(timezone.utc)


async def _person(conn: psycopg.AsyncConnection, person_id: UUID) -> dict:
    return await outbox.person_for_outreach(conn, person_id)


async def hold_for(conn: psycopg.AsyncConnection, *, person: dict, critical: bool, now: datetime,
                   weekly_cap: int) -> tuple[datetime | None, str | None]:
    """When a non-critical message to this person must wait, and why (quiet hours, weekly cap)."""
    if critical:
        return None, None
    until = quiet_until(now, person["time_zone"], person["quiet_start"], person["quiet_end"])
    if until is not None:
        return until, "quiet_hours"
    count, oldest = await outbox.sent_to_person_since(conn, person["id"], now - timedelta(days=7))
    if count >= weekly_cap:
        return oldest + timedelta(days=7), "weekly_cap"
    return None, None


async def reach_out(conn: psycopg.AsyncConnection, *, alert_id: UUID, actor: service.Actor, weekly_cap: int,
                    now: datetime | None = None) -> UUID:
    """Queue a check-in push for the alert's person, in the same transaction as the request. Returns the
    notification id (the pending one if there already is one: pressing twice sends once)."""
    now = now or datetime.now(timezone.utc)
    alert = await repo.alert_for_update(conn, alert_id)
    if alert is None:
        raise NotFound("no such alert")
    if alert["status"] == "resolved":
        raise Conflict("the alert is resolved")
    if not await consent_repo.in_force(conn, alert["person_id"], alert["metric"], OUTREACH):
        # Not in force covers not granted, withdrawn, expired, and granted without monitoring of the same data.
        raise NoOutreachConsent("the person has not agreed to be contacted about this data (no outreach consent)")
    # Pressing twice sends once: a check-in still pending, or sent in the last ten minutes, is the answer.
    pending = await outbox.recent_check_in(conn, alert_id, now)
    if pending:
        return pending
    person = await _person(conn, alert["person_id"])
    critical = alert["severity"] == "critical"
    held_until, why = await hold_for(conn, person=person, critical=critical, now=now, weekly_cap=weekly_cap)
    purpose = "reconnect" if alert["kind"] == "data_gap" else "check_in"
    notification_id = await repo.queue_notification(
        conn, tenant_id=alert["tenant_id"], alert_id=alert_id, purpose=purpose, person_id=alert["person_id"],
        metric=alert["metric"], critical=critical, not_before=held_until or now)
    if held_until:
        await outbox.hold(conn, notification_id, why)
    await timeline.add(conn, alert_id=alert_id, tenant_id=alert["tenant_id"], person_id=alert["person_id"],
                            actor_kind=actor.kind, actor_id=actor.id, action="reach_out",
                            detail={"notification_id": str(notification_id), "held_until":
                                    held_until.isoformat() if held_until else None, "held_reason": why})
    return notification_id


async def message_for_person(conn: psycopg.AsyncConnection, *, person_id: UUID, notification_id: UUID,
                             mark_opened: bool) -> dict:
    message = await outbox.message_for_person(conn, person_id, notification_id)
    if message is None:
        raise NotFound("no such message")
    if mark_opened and message["opened_at"] is None:
        await outbox.mark_opened(conn, notification_id)
        message["opened_at"] = now = datetime.now(timezone.utc)
        if message["status"] == "sent":
            message["status"] = "opened"
        if message["alert_id"]:
            person = await _person(conn, person_id)
            await timeline.add(conn, alert_id=message["alert_id"], tenant_id=await _tenant(conn),
                                    person_id=person_id, actor_kind="person", actor_id=person["external_id"],
                                    action="message_opened", detail={"notification_id": str(notification_id),
                                                                     "at": now.isoformat()})
    return message


async def _tenant(conn: psycopg.AsyncConnection) -> UUID:
    return await outbox.current_tenant(conn)


async def reply(conn: psycopg.AsyncConnection, *, person_id: UUID, notification_id: UUID, answer: str) -> dict:
    """The person's answer, once per message: "fine" resolves the alert as member_fine; "help" or "call" makes it
    urgent (reopening it if needed) for whoever has it now, or the supervisors and on-duty staff when nobody
    does. Where the alert's health data may no longer be shown (monitoring consent not in force), help goes to
    a request-for-help item of its own. A later answer to the same message is recorded on the timeline only."""
    if answer not in ANSWERS:
        raise Conflict(f"answer must be one of {', '.join(ANSWERS)}")
    message = await message_for_person(conn, person_id=person_id, notification_id=notification_id, mark_opened=False)
    alert_id = message["alert_id"]
    person = await _person(conn, person_id)
    if message["answer"] is not None:
        if alert_id is not None:
            await timeline.add(conn, alert_id=alert_id, tenant_id=await _tenant(conn), person_id=person_id,
                               actor_kind="person", actor_id=person["external_id"], action="person_replied_again",
                               detail={"answer": answer, "notification_id": str(notification_id),
                                       "kept": message["answer"]})
        return message
    await outbox.mark_answered(conn, notification_id, answer)
    if alert_id is None:
        return {**message, "answer": answer, "status": "answered"}
    alert = await repo.alert_for_update(conn, alert_id)
    actor = service.Actor("person", person["external_id"])
    tenant_id = alert["tenant_id"]
    await timeline.add(conn, alert_id=alert_id, tenant_id=tenant_id, person_id=person_id, actor_kind="person",
                            actor_id=person["external_id"], action="person_replied",
                            detail={"answer": answer, "notification_id": str(notification_id)})
    if answer == "fine":
        if alert["status"] != "resolved":
            await service.act(conn, alert_id=alert_id, actor=actor, action="resolve", reason="member_fine",
                              note="the member answered: I'm fine")
        return {**message, "answer": answer, "status": "answered"}
    async with tenant_wide(conn):  # staff rows and the tenant's policy are outside the person's own view
        if alert["kind"] != service.HELP_REQUEST and not await consent_repo.in_force(conn, person_id, alert["metric"],
                                                                                     MONITORING):
            target = await service.request_help(conn, tenant_id=tenant_id, person_id=person_id, actor=actor,
                                                after_alert=alert_id)
        else:
            target = alert_id
            if alert["status"] == "resolved":
                # A newer alert for the same condition may be open already: the request for help goes to it.
                newer = await repo.open_alert_for_update(conn, person_id, alert["kind"], alert["feature"])
                if newer is not None:
                    target = newer["id"]
                else:
                    await service.act(conn, alert_id=alert_id, actor=actor, action="reopen")
            await repo.update_alert(conn, target, urgent=True)
        current = await repo.alert_for_update(conn, target)  # escalation follows who has it now
        staff = [current["assignee_id"]] if current["assignee_id"] else (
            await repo.staff_to_notify(conn, "supervisors", None) + await repo.staff_to_notify(conn, "on_duty", None))
        for staff_id in dict.fromkeys(staff):
            await repo.queue_notification(conn, tenant_id=tenant_id, alert_id=target, purpose="person_replied",
                                          staff_id=staff_id, critical=True)
    return {**message, "answer": answer, "status": "answered"}
