"""The care team's API: the alert queue, an alert's evidence and timeline, actions, a person's readings.

Every route needs a staff token. Row-level security scopes every query to the staff member's insurer, so
another insurer's ids simply do not exist here (404). Each look at a person's health data is written to
the audit log in the same transaction that reads it.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from alerts import repository as repo
from alerts import service
from alerts.policy import DEFAULT_POLICY, EscalationPolicy, EscalationStep
from app.api.deps import Principal, Services, services, staff
from app.core.errors import Conflict, Forbidden, NoConsent, NotFound
from consent.catalog import DATA_TYPES
from streaming.records import repository as records_repo

router = APIRouter(prefix="/v1/care", tags=["care team"])

Status = Literal["open", "claimed", "contacted", "resolved"]
Severity = Literal["info", "low", "high", "critical"]


class AlertSummary(BaseModel):
    id: UUID
    person: str = Field(description="The person's id as the insurer knows it.")
    kind: Literal["health", "data_gap"]
    feature: str
    metric: str
    tier: Literal["watch", "alert"]
    severity: Severity
    urgent: bool = Field(description="The person asked for help or a call.")
    status: Status
    summary: str = Field(description="Why, in words: the detector's reason (English; the fallback).")
    reason_code: str = Field("feature_change", description="What kind of reason `details` holds: "
                             "combined_evidence, feature_change, no_data or nights_missing.")
    details: dict = Field(default_factory=dict, description="The reason as data, for rendering in the reader's "
                          "language: `signals` (signal, metric, value, baseline, change, unit, days, direction), "
                          "and for combined evidence its `score` and `threshold`.")
    episode_start: datetime
    episode_end: datetime
    opened_at: datetime
    updated_at: datetime
    assignee: str | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    resolution_note: str | None
    next_escalation_at: datetime | None
    escalations_done: list[str]


class AlertPage(BaseModel):
    alerts: list[AlertSummary]
    next_page: str | None = Field(None, description="Pass as `page` for the next page.")


class Evidence(BaseModel):
    id: int
    kind: str
    feature: str
    metric: str
    tier: str
    start_time: datetime
    end_time: datetime
    value: float | None
    baseline: float | None
    reason: str
    created_at: datetime
    withdrawn: bool = Field(False, description="The records behind this event were deleted on the person's phone "
                                               "and none of its readings is left.")


class TimelineEntry(BaseModel):
    at: datetime
    actor_kind: str
    actor_id: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict


class NotificationView(BaseModel):
    id: UUID
    recipient_kind: str
    recipient: str | None
    purpose: str
    status: str
    status_detail: str | None
    held_reason: str | None = Field(None, description="Why a held message waits: quiet_hours or weekly_cap.")
    not_before: datetime
    attempts: int
    created_at: datetime
    updated_at: datetime


class AlertDetail(AlertSummary):
    evidence: list[Evidence]
    timeline: list[TimelineEntry]
    notifications: list[NotificationView]
    policy: dict = Field(description="The escalation policy copied into the alert when it opened.")


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="Free text, kept in the timeline.")


class ResolveIn(ActionIn):
    reason: Literal["needed_help", "member_fine", "false_alarm", "no_response", "consent_withdrawn"]


class ReassignIn(ActionIn):
    assignee: str = Field(min_length=1, max_length=200, description="Staff id (token subject) to hand it to.")


class SeriesPoint(BaseModel):
    time: datetime
    avg: float
    min: float
    max: float
    count: int


class Series(BaseModel):
    person: str
    metric: str
    bucket: str
    points: list[SeriesPoint]


class EscalationStepIn(EscalationStep):
    model_config = ConfigDict(extra="forbid")


class EscalationPolicyIn(EscalationPolicy):
    """The policy as a tenant admin sends it: a field the policy does not have is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
    steps: list[EscalationStepIn] = Field(default_factory=list, max_length=20)


class OnDutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_duty: bool


def _actor(who: Principal) -> service.Actor:
    return service.Actor("staff", who.claims.subject, who.staff.id, who.staff.role)


def _encode_page(row: dict) -> str:
    key = [int(row["urgent"]), row["severity_rank"], row["opened_at"].isoformat(), str(row["id"])]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_page(token: str) -> tuple:
    try:
        urgent, rank, opened, alert_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(urgent), int(rank), datetime.fromisoformat(opened), UUID(alert_id)
    except (ValueError, TypeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="invalid page token") from None


@router.get("/alerts", summary="The alert queue", response_model=AlertPage,
            description="The insurer's alerts, urgent first, then by severity, then oldest first. Defaults to "
                        "health alerts that are not resolved.")
async def list_alerts(
    status_: list[Status] = Query(["open", "claimed", "contacted"], alias="status"),
    severity: list[Severity] | None = Query(None),
    assignee: str | None = Query(None, description="Staff id; `me` for yourself."),
    kind: list[Literal["health", "data_gap"]] = Query(["health"]),
    limit: int = Query(50, ge=1, le=200),
    page: str | None = Query(None, description="`next_page` of the previous answer."),
    who: Principal = Depends(staff), svc: Services = Depends(services),
) -> AlertPage:
    if assignee == "me":
        assignee = who.claims.subject
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        rows = await repo.queue(conn, statuses=list(status_), severities=list(severity) if severity else None,
                                assignee=assignee, kinds=list(kind), after=_decode_page(page) if page else None,
                                limit=limit)
    return AlertPage(alerts=[AlertSummary(**r) for r in rows],
                     next_page=_encode_page(rows[-1]) if len(rows) == limit else None)


@router.get("/alerts/{alert_id}", summary="An alert with its evidence and timeline", response_model=AlertDetail,
            responses={404: {"description": "No such alert at your insurer"}})
async def get_alert(alert_id: UUID, who: Principal = Depends(staff), svc: Services = Depends(services)) -> AlertDetail:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        alert = await repo.alert_view(conn, alert_id)
        if alert is None:
            raise NotFound("no such alert")
        evidence = await repo.evidence(conn, alert_id)
        timeline = await repo.timeline(conn, alert_id)
        notes = await repo.notifications_for(conn, alert_id)
        await repo.audit(conn, tenant_id=who.tenant_id, actor_kind="staff", actor_id=who.claims.subject,
                         action="alert.evidence_viewed", person_id=alert["person_id"],
                         detail={"alert_id": str(alert_id)})
    return AlertDetail(**alert, evidence=evidence, timeline=timeline, notifications=notes)


async def _act(alert_id: UUID, action: str, who: Principal, svc: Services, **kwargs) -> AlertDetail:
    try:
        async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
            await service.act(conn, alert_id=alert_id, actor=_actor(who), action=action, **kwargs)
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    return await get_alert(alert_id, who, svc)


_ACTION_RESPONSES = {404: {"description": "No such alert"}, 409: {"description": "Not possible in its state"},
                     403: {"description": "Your role may not do this"}}


@router.post("/alerts/{alert_id}/claim", summary="Claim an alert", response_model=AlertDetail,
             responses=_ACTION_RESPONSES)
async def claim(alert_id: UUID, body: ActionIn | None = Body(None), who: Principal = Depends(staff),
                svc: Services = Depends(services)) -> AlertDetail:
    return await _act(alert_id, "claim", who, svc, note=body.note if body else None)


@router.post("/alerts/{alert_id}/contact", summary="Record that the person was contacted",
             response_model=AlertDetail, responses=_ACTION_RESPONSES)
async def contact(alert_id: UUID, body: ActionIn | None = Body(None), who: Principal = Depends(staff),
                  svc: Services = Depends(services)) -> AlertDetail:
    return await _act(alert_id, "contact", who, svc, note=body.note if body else None)


@router.post("/alerts/{alert_id}/resolve", summary="Resolve an alert with a reason", response_model=AlertDetail,
             responses=_ACTION_RESPONSES,
             description="`false_alarm` makes the person's detector less sensitive for that feature for two weeks; "
                         "`needed_help` is kept as a label for evaluation.")
async def resolve(alert_id: UUID, body: ResolveIn, who: Principal = Depends(staff),
                  svc: Services = Depends(services)) -> AlertDetail:
    return await _act(alert_id, "resolve", who, svc, reason=body.reason, note=body.note)


@router.post("/alerts/{alert_id}/reassign", summary="Hand an alert to another staff member (supervisors)",
             response_model=AlertDetail, responses=_ACTION_RESPONSES)
async def reassign(alert_id: UUID, body: ReassignIn, who: Principal = Depends(staff),
                   svc: Services = Depends(services)) -> AlertDetail:
    return await _act(alert_id, "reassign", who, svc, assignee=body.assignee, note=body.note)


@router.post("/alerts/{alert_id}/reopen", summary="Reopen a resolved alert", response_model=AlertDetail,
             responses=_ACTION_RESPONSES)
async def reopen(alert_id: UUID, body: ActionIn | None = Body(None), who: Principal = Depends(staff),
                 svc: Services = Depends(services)) -> AlertDetail:
    return await _act(alert_id, "reopen", who, svc, note=body.note if body else None)


_BUCKETS = {"1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1h": "1 hour", "6h": "6 hours", "1d": "1 day"}


@router.get("/people/{person}/readings", summary="A person's readings as a time-bucketed series",
            response_model=Series, responses={404: {"description": "No such person at your insurer"},
                                              403: {"description": "The person does not share this data type "
                                                                   "(code `no_consent`)"}},
            description="For charts: average, minimum and maximum per bucket. `person` is the person's id as the "
                        "insurer knows it. Only while the person's monitoring consent for `metric` is in force "
                        "(403 `no_consent` otherwise). Every call is recorded in the audit log.")
async def person_readings(
    person: str = Path(max_length=200),
    metric: Literal[DATA_TYPES] = Query(...),  # type: ignore[valid-type]
    from_: datetime | None = Query(None, alias="from"),
    to: datetime | None = Query(None),
    bucket: Literal["1m", "5m", "15m", "1h", "6h", "1d"] = Query("1h"),
    why: str | None = Query(None, max_length=200, description="Purpose of the look, kept in the audit log."),
    who: Principal = Depends(staff), svc: Services = Depends(services),
) -> Series:
    to = to or datetime.now(timezone.utc)
    from_ = from_ or to - timedelta(days=14)
    if to <= from_ or to - from_ > timedelta(days=400):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="`from` must be before `to`, at most 400 days")
    if (to - from_) / timedelta(minutes=1) / {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "6h": 360, "1d": 1440}[bucket] > 20_000:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="too many buckets: widen `bucket`")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        cur = await conn.execute("SELECT id FROM people WHERE external_id = %s", (person,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("no such person")
        person_id = row[0]
        # Not shown without the person's monitoring consent in force: a withdrawal hides what was stored at once.
        if await repo.consent_event_for(conn, person_id, metric, "monitoring") is None:
            raise NoConsent("the member does not share this data type (no monitoring consent): nothing is shown")
        if metric == "steps":  # one source per person and hour: two apps' steps are never added up
            cur = await conn.execute(
                f"""SELECT time_bucket(%s::interval, time) AS t, avg(value), min(value), max(value), count(*)
                      FROM {records_repo.STEPS_MERGED} GROUP BY t ORDER BY t""",
                (_BUCKETS[bucket], person_id, from_, to))
        else:
            cur = await conn.execute(
                """SELECT time_bucket(%s::interval, time) AS t, avg(value), min(value), max(value), count(*)
                     FROM readings WHERE person_id = %s AND metric = %s AND time >= %s AND time < %s
                    GROUP BY t ORDER BY t""",
                (_BUCKETS[bucket], person_id, metric, from_, to),
            )
        points = [SeriesPoint(time=t, avg=a, min=lo, max=hi, count=n) for t, a, lo, hi, n in await cur.fetchall()]
        await repo.audit(conn, tenant_id=who.tenant_id, actor_kind="staff", actor_id=who.claims.subject,
                         action="readings.viewed", person_id=person_id,
                         detail={"metric": metric, "from": from_.isoformat(), "to": to.isoformat(), "why": why})
    return Series(person=person, metric=metric, bucket=bucket, points=points)


@router.get("/escalation-policy", summary="The insurer's escalation policy", response_model=EscalationPolicy)
async def get_policy(who: Principal = Depends(staff), svc: Services = Depends(services)) -> EscalationPolicy:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        stored = await repo.tenant_policy(conn)
    return EscalationPolicy.model_validate(stored) if stored else DEFAULT_POLICY


@router.put("/escalation-policy", summary="Replace the escalation policy (tenant admins)",
            response_model=EscalationPolicy,
            description="Applies to alerts opened from now on; alerts in flight keep the policy they opened with.")
async def put_policy(body: EscalationPolicyIn, who: Principal = Depends(staff),
                     svc: Services = Depends(services)) -> EscalationPolicy:
    policy = EscalationPolicy.model_validate(body.model_dump())
    if who.staff.role != "tenant_admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only a tenant admin can change the policy")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await repo.save_policy(conn, who.tenant_id, policy.model_dump(), who.claims.subject)
    return policy


@router.put("/me/on-duty", summary="Go on or off duty (on-duty staff get critical escalations)")
async def on_duty(body: OnDutyIn, who: Principal = Depends(staff), svc: Services = Depends(services)) -> OnDutyIn:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await conn.execute("UPDATE staff SET on_duty = %s WHERE id = %s", (body.on_duty, who.staff.id))
    return body
