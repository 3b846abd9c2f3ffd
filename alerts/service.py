"""Alert lifecycle: open or extend from anomaly events, staff actions, escalation, consent withdrawal.

Every change happens on a locked row (``SELECT … FOR UPDATE``), re-checks the state it depends on, and
is recorded in the alert's timeline in the same transaction; so two agents pressing "claim" at once, or
an escalation job that runs twice, can never both act.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

from alerts import repository as repo
from alerts import timeline
from alerts.policy import DEFAULT_POLICY, SEVERITY_RANK, EscalationPolicy, severity_for
from app.core.errors import Conflict, Forbidden, NotFound
from consent import repository as consent_repo
from consent.catalog import MONITORING
from streaming.events import TIER_RANK, AnomalyEvent

RESOLUTIONS = ("needed_help", "member_fine", "false_alarm", "no_response", "consent_withdrawn")
SUPERVISING_ROLES = ("care_supervisor", "tenant_admin")
FALSE_ALARM_QUIET = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str         # staff | person | system
    id: str           # external id (or "system")
    staff_id: UUID | None = None
    role: str | None = None

    @property
    def supervises(self) -> bool:
        return self.role in SUPERVISING_ROLES


SYSTEM = Actor("system", "system")

HELP_REQUEST = "help_request"
HELP_SUMMARY = "The person asked for help."


class ConsentNotInForce(Conflict):
    """The person's monitoring consent for the alert's data type is not in force: the alert stays closed."""

    code = "consent_not_in_force"


async def open_from_anomaly(conn: psycopg.AsyncConnection, *, tenant_id: UUID, event: AnomalyEvent,
                            now: datetime | None = None) -> UUID | None:
    """Open an alert for the event's person and condition, or extend the open one. Returns the alert id,
    or None when monitoring consent for the data type is gone (nothing reaches anyone). The event's
    structured reason is copied into the alert, next to its English summary."""
    now = now or datetime.now(timezone.utc)
    person_id = UUID(event.person)
    consent_event = await consent_repo.in_force_event(conn, person_id, event.metric, MONITORING)
    if consent_event is None:
        return None
    severity = severity_for(event.kind, event.tier, event.feature, event.metric)
    existing = await repo.open_alert_for_update(conn, person_id, event.kind, event.feature)
    if existing is None:
        policy = EscalationPolicy.model_validate(await repo.tenant_policy(conn) or DEFAULT_POLICY.model_dump())
        try:
            async with conn.transaction():  # a savepoint: another worker may open the same alert right now
                alert_id = await repo.insert_alert(
                    conn, tenant_id=tenant_id, person_id=person_id, kind=event.kind, feature=event.feature,
                    metric=event.metric, tier=event.tier, severity=severity,
                    severity_rank=SEVERITY_RANK[severity], status="open", summary=event.reason,
                    reason_code=event.reason_code, details=event.details,
                    episode_start=event.start, episode_end=event.end, opened_at=now,
                    consent_event_id=consent_event, policy=policy.model_dump(),
                    next_escalation_at=policy.next_due(severity, now, []),
                )
        except psycopg.errors.UniqueViolation:
            existing = await repo.open_alert_for_update(conn, person_id, event.kind, event.feature)
        else:
            await repo.add_evidence(conn, alert_id=alert_id, event_id=event.id, tenant_id=tenant_id,
                                    person_id=person_id)
            await timeline.add(conn, alert_id=alert_id, tenant_id=tenant_id, person_id=person_id,
                                    actor_kind="system", actor_id="detector", action="opened", to_status="open",
                                    detail={"severity": severity, "reason": event.reason, "event_id": event.id})
            return alert_id
    return await _extend(conn, existing, event, severity, consent_event)


async def _extend(conn: psycopg.AsyncConnection, alert: dict, event: AnomalyEvent, severity: str,
                  consent_event: int) -> UUID:
    changes: dict = {"episode_end": max(alert["episode_end"], event.end), "consent_event_id": consent_event}
    raised = SEVERITY_RANK[severity] > alert["severity_rank"]
    if TIER_RANK[event.tier] > TIER_RANK[alert["tier"]]:
        changes["tier"] = event.tier
    if raised:
        policy = EscalationPolicy.model_validate(alert["policy"])
        changes.update(severity=severity, severity_rank=SEVERITY_RANK[severity], summary=event.reason,
                       reason_code=event.reason_code, details=event.details,
                       next_escalation_at=policy.next_due(severity, alert["opened_at"], alert["escalations_done"]))
    await repo.update_alert(conn, alert["id"], **changes)
    await repo.add_evidence(conn, alert_id=alert["id"], event_id=event.id, tenant_id=alert["tenant_id"],
                            person_id=alert["person_id"])
    await timeline.add(conn, alert_id=alert["id"], tenant_id=alert["tenant_id"], person_id=alert["person_id"],
                            actor_kind="system", actor_id="detector", action="severity_raised" if raised else "extended",
                            detail={"severity": severity if raised else alert["severity"], "reason": event.reason,
                                    "event_id": event.id})
    return alert["id"]


async def act(conn: psycopg.AsyncConnection, *, alert_id: UUID, actor: Actor, action: str,
              reason: str | None = None, note: str | None = None, assignee: str | None = None,
              now: datetime | None = None) -> dict:
    """A staff action on an alert: claim, contact, resolve, reassign or reopen. Returns the changed row."""
    now = now or datetime.now(timezone.utc)
    alert = await repo.alert_for_update(conn, alert_id)
    if alert is None:
        raise NotFound("no such alert")
    status = alert["status"]
    mine = alert["assignee_id"] is not None and alert["assignee_id"] == actor.staff_id
    changes: dict = {}
    detail: dict = {"note": note} if note else {}
    if action == "claim":
        if status == "resolved":
            raise Conflict("the alert is resolved; reopen it first")
        if alert["assignee_id"] is not None and not mine and not actor.supervises:
            raise Conflict("already claimed by someone else; a supervisor can reassign it")
        changes = {"status": "claimed" if status == "open" else status, "assignee_id": actor.staff_id,
                   "claimed_at": alert["claimed_at"] or now}
    elif action == "contact":
        if status not in ("claimed", "contacted"):
            raise Conflict("claim the alert before recording contact")
        if not mine and not actor.supervises:
            raise Forbidden("only the assignee or a supervisor can record contact")
        changes = {"status": "contacted"}
    elif action == "resolve":
        if status == "resolved":
            raise Conflict("the alert is already resolved")
        if reason not in RESOLUTIONS:
            raise Conflict(f"a resolution reason is needed: one of {', '.join(RESOLUTIONS)}")
        if alert["assignee_id"] is not None and not mine and not actor.supervises and actor.kind == "staff":
            raise Forbidden("only the assignee or a supervisor can resolve a claimed alert")
        changes = {"status": "resolved", "resolution": reason, "resolution_note": note, "resolved_at": now,
                   "next_escalation_at": None, "urgent": False}
        detail["reason"] = reason
        await repo.cancel_pending_notifications(conn, alert_id, f"alert resolved: {reason}")
        if reason == "false_alarm" and alert["kind"] == "health":
            await repo.add_feedback(conn, tenant_id=alert["tenant_id"], person_id=alert["person_id"],
                                    feature=alert["feature"], until=now + FALSE_ALARM_QUIET)
    elif action == "reassign":
        if not actor.supervises:
            raise Forbidden("only a supervisor or tenant admin can reassign")
        target = await repo.staff_by_external(conn, assignee or "")
        if target is None:
            raise NotFound("no such staff member")
        if status == "resolved":
            raise Conflict("the alert is resolved")
        changes = {"assignee_id": target["id"], "status": "claimed" if status == "open" else status,
                   "claimed_at": alert["claimed_at"] or now}
        detail["assignee"] = target["external_id"]
    elif action == "reopen":
        if status != "resolved":
            raise Conflict("only a resolved alert can be reopened")
        if alert["kind"] != HELP_REQUEST and not await consent_repo.in_force(conn, alert["person_id"], alert["metric"],
                                                                             MONITORING):
            raise ConsentNotInForce("the person's monitoring consent for this data type is not in force; the "
                                    "alert stays closed")
        changes = {"status": "claimed" if actor.staff_id else "open", "assignee_id": actor.staff_id,
                   "resolution": None, "resolved_at": None, "resolution_note": None}
    else:
        raise Conflict(f"unknown action {action!r}")
    try:
        async with conn.transaction():
            await repo.update_alert(conn, alert_id, **changes)
    except psycopg.errors.UniqueViolation:
        raise Conflict("this person already has an open alert for the same condition") from None
    await timeline.add(conn, alert_id=alert_id, tenant_id=alert["tenant_id"], person_id=alert["person_id"],
                            actor_kind=actor.kind, actor_id=actor.id, action=action, from_status=status,
                            to_status=changes.get("status", status), detail=detail)
    return {**alert, **changes}


async def escalate_due(conn: psycopg.AsyncConnection, *, tenant_id: UUID, now: datetime | None = None,
                       limit: int = 100) -> int:
    """Run every escalation step that is due. Safe to run twice: rows are locked and steps recorded."""
    now = now or datetime.now(timezone.utc)
    fired = 0
    for alert in await repo.due_escalations(conn, limit):
        policy = EscalationPolicy.model_validate(alert["policy"])
        done = list(alert["escalations_done"])
        for step in policy.steps_for(alert["severity"]):
            if step.id in done or alert["opened_at"] + timedelta(minutes=step.after_minutes) > now:
                continue
            done.append(step.id)
            holds = alert["status"] == "open" if step.when == "unclaimed" else alert["status"] != "resolved"
            if not holds:
                continue
            recipients = await repo.staff_to_notify(conn, step.notify, alert["assignee_id"])
            for staff_id in recipients:
                await repo.queue_notification(conn, tenant_id=tenant_id, alert_id=alert["id"], purpose="escalation",
                                              staff_id=staff_id, metric=alert["metric"],
                                              critical=alert["severity"] == "critical")
            await timeline.add(conn, alert_id=alert["id"], tenant_id=tenant_id, person_id=alert["person_id"],
                                    actor_kind="system", actor_id="escalation", action="escalated",
                                    detail={"step": step.id, "notify": step.notify, "recipients": len(recipients)})
            fired += 1
        await repo.update_alert(conn, alert["id"], escalations_done=done,
                                next_escalation_at=policy.next_due(alert["severity"], alert["opened_at"], done))
    return fired


async def close_for_withdrawn_consent(conn: psycopg.AsyncConnection, *, person_id: UUID, metric: str) -> int:
    """Monitoring consent for ``metric`` was withdrawn: its open alerts close and their messages are cancelled."""
    closed = 0
    for alert in await repo.open_alerts_for_metric(conn, person_id, metric):
        await act(conn, alert_id=alert["id"], actor=SYSTEM, action="resolve", reason="consent_withdrawn")
        closed += 1
    return closed


async def request_help(conn: psycopg.AsyncConnection, *, tenant_id: UUID, person_id: UUID, actor: Actor,
                       after_alert: UUID | None, now: datetime | None = None) -> UUID:
    """The person asked for help where the alert's health data may no longer be shown: an urgent request-for-help
    item of its own (no data type, values or detector reason), or the open one made urgent again."""
    now = now or datetime.now(timezone.utc)
    existing = await repo.open_help_request_for_update(conn, person_id)
    if existing is not None:
        await repo.update_alert(conn, existing["id"], urgent=True)
        return existing["id"]
    policy = EscalationPolicy.model_validate(await repo.tenant_policy(conn) or DEFAULT_POLICY.model_dump())
    severity = "high"
    alert_id = await repo.insert_alert(
        conn, tenant_id=tenant_id, person_id=person_id, kind=HELP_REQUEST, feature=HELP_REQUEST, metric=HELP_REQUEST,
        tier="alert", severity=severity, severity_rank=SEVERITY_RANK[severity], urgent=True, status="open",
        summary=HELP_SUMMARY, episode_start=now, episode_end=now, opened_at=now, consent_event_id=None,
        policy=policy.model_dump(), next_escalation_at=policy.next_due(severity, now, []))
    await timeline.add(conn, alert_id=alert_id, tenant_id=tenant_id, person_id=person_id, actor_kind=actor.kind,
                       actor_id=actor.id, action="opened", to_status="open",
                       detail={"reason": HELP_REQUEST, "after_alert": str(after_alert) if after_alert else None})
    return alert_id


async def send_break_glass_digest(conn: psycopg.AsyncConnection, *, tenant_id: UUID,
                                  now: datetime | None = None) -> int:
    """Once per UTC day: tell the supervisors how many break-the-glass looks there were the day before (a push
    that names no one; the audit view has the details). Safe to run again: the digest is recorded in the audit
    log and a day is never sent twice. Returns the number of looks reported."""
    now = now or datetime.now(timezone.utc)
    end = datetime.combine(now.date(), datetime.min.time(), tzinfo=timezone.utc)
    start = end - timedelta(days=1)
    looks = await repo.break_glass_digest_due(conn, start, end)
    if not looks:
        return 0
    recipients = await repo.staff_to_notify(conn, "supervisors", None)
    for staff_id in recipients:
        await repo.queue_notification(conn, tenant_id=tenant_id, alert_id=None, purpose="break_glass_digest",
                                      staff_id=staff_id)
    await repo.audit(conn, tenant_id=tenant_id, actor_kind="system", actor_id="scheduler", action=repo.DIGEST_ACTION,
                     person_id=None, detail={"from": start.isoformat(), "to": end.isoformat(), "looks": looks,
                                             "recipients": len(recipients)})
    return looks
