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

RESOLUTIONS = ("needed_help", "member_fine", "false_alarm", "no_response", "consent_withdrawn")
SUPERVISING_ROLES = ("care_supervisor", "tenant_admin")
FALSE_ALARM_QUIET = timedelta(days=14)
TIER_RANK = {"watch": 1, "alert": 2}


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


def _summary(event: dict) -> str:
    return event["reason"]


async def open_from_anomaly(conn: psycopg.AsyncConnection, *, tenant_id: UUID, event: dict,
                            now: datetime | None = None) -> UUID | None:
    """Open an alert for the event's person and condition, or extend the open one. Returns the alert id,
    or None when monitoring consent for the data type is gone (nothing reaches anyone)."""
    now = now or datetime.now(timezone.utc)
    person_id = event["person_id"]
    consent_event = await repo.consent_event_for(conn, person_id, event["metric"], "monitoring")
    if consent_event is None:
        return None
    severity = severity_for(event["kind"], event["tier"], event["feature"])
    existing = await repo.open_alert_for_update(conn, person_id, event["kind"], event["feature"])
    if existing is None:
        policy = EscalationPolicy.model_validate(await repo.tenant_policy(conn) or DEFAULT_POLICY.model_dump())
        try:
            async with conn.transaction():  # a savepoint: another worker may open the same alert right now
                alert_id = await repo.insert_alert(
                    conn, tenant_id=tenant_id, person_id=person_id, kind=event["kind"], feature=event["feature"],
                    metric=event["metric"], tier=event["tier"], severity=severity,
                    severity_rank=SEVERITY_RANK[severity], status="open", summary=_summary(event),
                    episode_start=event["start_time"], episode_end=event["end_time"], opened_at=now,
                    consent_event_id=consent_event, policy=policy.model_dump(),
                    next_escalation_at=policy.next_due(severity, now, []),
                )
        except psycopg.errors.UniqueViolation:
            existing = await repo.open_alert_for_update(conn, person_id, event["kind"], event["feature"])
        else:
            await repo.add_evidence(conn, alert_id=alert_id, event_id=event["id"], tenant_id=tenant_id,
                                    person_id=person_id)
            await timeline.add(conn, alert_id=alert_id, tenant_id=tenant_id, person_id=person_id,
                                    actor_kind="system", actor_id="detector", action="opened", to_status="open",
                                    detail={"severity": severity, "reason": event["reason"], "event_id": event["id"]})
            return alert_id
    return await _extend(conn, existing, event, severity, consent_event)


async def _extend(conn: psycopg.AsyncConnection, alert: dict, event: dict, severity: str, consent_event: int) -> UUID:
    changes: dict = {"episode_end": max(alert["episode_end"], event["end_time"]), "consent_event_id": consent_event}
    raised = SEVERITY_RANK[severity] > alert["severity_rank"]
    if TIER_RANK[event["tier"]] > TIER_RANK[alert["tier"]]:
        changes["tier"] = event["tier"]
    if raised:
        policy = EscalationPolicy.model_validate(alert["policy"])
        changes.update(severity=severity, severity_rank=SEVERITY_RANK[severity], summary=_summary(event),
                       next_escalation_at=policy.next_due(severity, alert["opened_at"], alert["escalations_done"]))
    await repo.update_alert(conn, alert["id"], **changes)
    await repo.add_evidence(conn, alert_id=alert["id"], event_id=event["id"], tenant_id=alert["tenant_id"],
                            person_id=alert["person_id"])
    await timeline.add(conn, alert_id=alert["id"], tenant_id=alert["tenant_id"], person_id=alert["person_id"],
                            actor_kind="system", actor_id="detector", action="severity_raised" if raised else "extended",
                            detail={"severity": severity if raised else alert["severity"], "reason": event["reason"],
                                    "event_id": event["id"]})
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
