"""The care team's API: the alert queue, an alert's evidence and timeline, actions, a person's readings, the audit
view of staff looks.

Every route needs a staff token. Row-level security scopes every query to the staff member's insurer, so
another insurer's ids simply do not exist here (404). Each look at a person's health data is written to
the audit log in the same transaction that reads it, with the reason for it (an alert, or an explicit
break-the-glass reason); the person sees these looks in ``GET /v1/me/access-log``. Without monitoring consent
in force for the data type, staff see that an alert existed and why it closed, never values.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts import repository as repo
from alerts import service
from alerts.policy import DEFAULT_POLICY, EscalationPolicy, EscalationStep
from app.api.deps import Principal, Services, aware, services, staff
from app.core.errors import Forbidden, Invalid, NotFound
from consent import repository as consent_repo
from consent.catalog import DATA_TYPES, MONITORING

HIDDEN_SUMMARY = "Data hidden: the person's monitoring consent for this data type is not in force."
# What of an alert's timeline staff still see when its data is hidden: who did what when, and why it closed.
_HIDDEN_DETAIL_KEYS = {"resolve": {"reason"}, "reassign": {"assignee"}, "person_replied": {"answer"},
                       "person_replied_again": {"answer"}, "escalated": {"step", "notify", "recipients"}}


class NeedToKnow(Forbidden):
    """The look needs a reason: an alert in the caller's queue, or an explicit break-the-glass ``reason``."""

    code = "need_to_know"


class InvalidPage(Invalid):
    code = "invalid_page"


class NotSupervisor(Forbidden):
    code = "supervisors_only"

router = APIRouter(prefix="/v1/care", tags=["care team"])

Status = Literal["open", "claimed", "contacted", "resolved"]
Severity = Literal["info", "low", "high", "critical"]


class AlertSummary(BaseModel):
    id: UUID
    person: str = Field(description="The person's id as the insurer knows it.")
    kind: Literal["health", "data_gap", "help_request"] = Field(
        description="`help_request`: the person asked for help; it carries no health data.")
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
    data_hidden: bool = Field(False, description="The person's monitoring consent for this data type is not in "
                              "force: the alert's summary, evidence and readings are withheld; the timeline still "
                              "shows what happened and why it closed.")


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
    data_hidden: bool = Field(False, description="Monitoring consent for this data type is not in force: no points.")
    consent: Literal["in_force", "withdrawn", "expired", "never", "needs_monitoring", "erased"] = Field(
        "in_force", description="Why the data is shown or hidden.")


class AuditItem(BaseModel):
    id: int
    at: datetime
    staff: str
    role: str | None
    person: str | None
    what: str
    why: str
    reason: str | None = Field(None, description="The explicit reason given for a break-the-glass look.")
    break_glass: bool


class AuditPage(BaseModel):
    items: list[AuditItem]
    next: str | None = Field(None, description="Pass as `before` for the next (older) page.")


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
    """The sort key a page token carries; anything that is not one we made is a 422, never a 500."""
    try:
        urgent, rank, opened, alert_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = int(urgent), int(rank), datetime.fromisoformat(opened), UUID(alert_id)
    except (ValueError, TypeError, OverflowError, AttributeError):
        raise InvalidPage("invalid page token: pass `next_page` of the previous answer") from None
    if key[0] not in (0, 1) or not 0 <= key[1] <= 10 or key[2].tzinfo is None:
        raise InvalidPage("invalid page token: pass `next_page` of the previous answer")
    return key


@router.get("/alerts", summary="The alert queue", response_model=AlertPage,
            description="The insurer's alerts, urgent first, then by severity, then oldest first. Defaults to "
                        "health alerts and requests for help that are not resolved. Alerts whose monitoring consent "
                        "is not in force are not listed.", responses={422: {"description": "Invalid page token "
                                                                            "(code `invalid_page`)"}})
async def list_alerts(
    status_: list[Status] = Query(["open", "claimed", "contacted"], alias="status"),
    severity: list[Severity] | None = Query(None),
    assignee: str | None = Query(None, description="Staff id; `me` for yourself."),
    kind: list[Literal["health", "data_gap", "help_request"]] = Query(["health", "help_request"]),
    limit: int = Query(50, ge=1, le=200),
    page: str | None = Query(None, description="`next_page` of the previous answer."),
    who: Principal = Depends(staff), svc: Services = Depends(services),
) -> AlertPage:
    if assignee == "me":
        assignee = who.claims.subject
    async with svc.reads.transaction(tenant_id=who.tenant_id) as conn:
        rows = await repo.queue(conn, statuses=list(status_), severities=list(severity) if severity else None,
                                assignee=assignee, kinds=list(kind), after=_decode_page(page) if page else None,
                                limit=limit)
    return AlertPage(alerts=[AlertSummary(**r) for r in rows],
                     next_page=_encode_page(rows[-1]) if len(rows) == limit else None)


def _redacted(entry: dict) -> dict:
    keep = _HIDDEN_DETAIL_KEYS.get(entry["action"], set())
    return {**entry, "detail": {k: v for k, v in entry["detail"].items() if k in keep}}


@router.get("/alerts/{alert_id}", summary="An alert with its evidence and timeline", response_model=AlertDetail,
            responses={404: {"description": "No such alert at your insurer"}},
            description="Without the person's monitoring consent in force for the alert's data type, "
                        "`data_hidden` is true: the timeline says what happened and why it closed, but the summary, "
                        "evidence and values are withheld (and no look is recorded, as nothing was shown).")
async def get_alert(alert_id: UUID, who: Principal = Depends(staff), svc: Services = Depends(services)) -> AlertDetail:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        alert = await repo.alert_view(conn, alert_id)
        if alert is None:
            raise NotFound("no such alert")
        timeline = await repo.timeline(conn, alert_id)
        notes = await repo.notifications_for(conn, alert_id)
        if alert["data_hidden"]:
            return AlertDetail(**{**alert, "summary": HIDDEN_SUMMARY}, evidence=[],
                               timeline=[_redacted(t) for t in timeline], notifications=notes)
        evidence = await repo.evidence(conn, alert_id)
        await repo.audit(conn, tenant_id=who.tenant_id, actor_kind="staff", actor_id=who.claims.subject,
                         action="alert.evidence_viewed", person_id=alert["person_id"],
                         detail={"alert_id": str(alert_id), "role": who.staff.role, "what": "alert",
                                 "why": f"alert {alert_id}", "break_glass": False})
    return AlertDetail(**alert, evidence=evidence, timeline=timeline, notifications=notes)


async def _act(alert_id: UUID, action: str, who: Principal, svc: Services, **kwargs) -> AlertDetail:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await service.act(conn, alert_id=alert_id, actor=_actor(who), action=action, **kwargs)
    return await get_alert(alert_id, who, svc)


_ACTION_RESPONSES = {404: {"description": "No such alert"},
                     409: {"description": "Not possible in its state; `consent_not_in_force` when reopening an alert "
                                          "whose monitoring consent is not in force"},
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


_BUCKET_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "6h": 360, "1d": 1440}


async def _why_look(conn, who: Principal, person_id: UUID, reason: str | None, window: timedelta
                    ) -> tuple[str, bool]:
    """Need-to-know: why this staff member may look at the person's health data, and whether it is break-the-glass.

    A care agent needs an alert of the person in their queue (open and theirs or unassigned, or resolved within
    the window); a supervisor any such alert or none; a tenant admin sees no health values by default. Anything
    else needs an explicit ``reason``: recorded, and flagged to supervisors on the audit view."""
    role = who.staff.role
    if role != "tenant_admin":
        alert_id = await repo.alert_giving_reason(conn, person_id=person_id, resolved_within=window,
                                                  staff_id=None if role == "care_supervisor" else who.staff.id)
        if alert_id is not None:
            return f"alert {alert_id}", False
        if role == "care_supervisor":
            return reason or "supervision", False
    if reason:
        return reason, True
    raise NeedToKnow("no alert of this person is in your queue: give a `reason` to look anyway (break the glass; "
                     "it is recorded and shown to supervisors and to the person)")


@router.get("/people/{person}/readings", summary="A person's readings as a time-bucketed series",
            response_model=Series, responses={404: {"description": "No such person at your insurer"},
                                              403: {"description": "No need to know (code `need_to_know`): give a "
                                                                   "break-the-glass `reason`"},
                                              422: {"description": "Invalid range or a time without a UTC offset"}},
            description="For charts: average, minimum and maximum per bucket. `person` is the person's id as the "
                        "insurer knows it. Need-to-know: a care agent may look at a person with an alert in their "
                        "queue (open, or resolved within BEIDOU_NEED_TO_KNOW_DAYS), a supervisor at anyone, a tenant "
                        "admin at no one; otherwise pass `reason` (break the glass: recorded and flagged to "
                        "supervisors). Without monitoring consent in force for the data type the answer has no "
                        "points and `data_hidden` true. Every look is recorded in the audit log, and the person "
                        "sees it in their access log.")
async def person_readings(
    person: str = Path(max_length=200),
    metric: Literal[DATA_TYPES] = Query(...),  # type: ignore[valid-type]
    from_: datetime | None = Query(None, alias="from"),
    to: datetime | None = Query(None),
    bucket: Literal["1m", "5m", "15m", "1h", "6h", "1d"] = Query("1h"),
    reason: str | None = Query(None, min_length=3, max_length=500,
                               description="Break the glass: why you must look without an alert in your queue."),
    why: str | None = Query(None, max_length=200, description="A note on the look, kept in the audit log."),
    who: Principal = Depends(staff), svc: Services = Depends(services),
) -> Series:
    to = aware(to, "to") or datetime.now(timezone.utc)
    from_ = aware(from_, "from") or to - timedelta(days=14)
    if to <= from_ or to - from_ > timedelta(days=400):
        raise Invalid("`from` must be before `to`, at most 400 days")
    if (to - from_) / timedelta(minutes=1) / _BUCKET_MINUTES[bucket] > 20_000:
        raise Invalid("too many buckets: widen `bucket`")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        person_id = await repo.person_by_external(conn, person)
        if person_id is None:
            raise NotFound("no such person")
        because, break_glass = await _why_look(conn, who, person_id, reason,
                                               timedelta(days=svc.settings.need_to_know_days))
        standing = await consent_repo.consent_standing(conn, person_id, metric, MONITORING)
        if standing != "in_force":
            return Series(person=person, metric=metric, bucket=bucket, points=[], data_hidden=True, consent=standing)
        await repo.audit(conn, tenant_id=who.tenant_id, actor_kind="staff", actor_id=who.claims.subject,
                         action="readings.viewed", person_id=person_id,
                         detail={"metric": metric, "from": from_.isoformat(), "to": to.isoformat(), "note": why,
                                 "role": who.staff.role, "what": f"readings:{metric}", "why": because,
                                 "reason": reason, "break_glass": break_glass})
    # Need-to-know, consent and the audit entry on the primary (committed above); the series from the replica.
    async with svc.reads.transaction(tenant_id=who.tenant_id) as conn:
        rows = await repo.reading_series(conn, person_id=person_id, metric=metric, bucket=_BUCKETS[bucket],
                                         start=from_, end=to)
    points = [SeriesPoint(time=t, avg=a, min=lo, max=hi, count=n) for t, a, lo, hi, n in rows]
    return Series(person=person, metric=metric, bucket=bucket, points=points)


def _audit_item(row: dict) -> AuditItem:
    d = row["detail"] or {}
    what = d.get("what") or ("alert" if row["action"] == "alert.evidence_viewed" else f"readings:{d.get('metric')}")
    why = d.get("why") or (f"alert {d['alert_id']}" if d.get("alert_id") else d.get("note") or "not recorded")
    return AuditItem(id=row["id"], at=row["at"], staff=row["staff"], role=d.get("role"), person=row.get("person"),
                     what=what, why=why, reason=d.get("reason"), break_glass=bool(d.get("break_glass")))


def _before(token: str | None) -> int | None:
    if token is None:
        return None
    if not token.isdigit() or len(token) > 18:
        raise Invalid("invalid `before`: pass `next` of the previous answer")
    return int(token)


@router.get("/audit", summary="Staff looks at people's data (supervisors)", response_model=AuditPage,
            responses={403: {"description": "Not a supervisor or tenant admin"}, 422: {"description": "Bad cursor"}},
            description="Every recorded look at a person's health data at your insurer, newest first: who, role, "
                        "what, why, and whether it broke the glass. Filter by `person` (external id), `staff`, "
                        "`break_glass`, `from`/`to`; page with `before` = the previous answer's `next`.")
async def audit_log(
    person: str | None = Query(None, max_length=200),
    staff_id: str | None = Query(None, alias="staff", max_length=200),
    break_glass: bool | None = Query(None),
    from_: datetime | None = Query(None, alias="from"),
    to: datetime | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    before: str | None = Query(None, max_length=40),
    who: Principal = Depends(staff), svc: Services = Depends(services),
) -> AuditPage:
    if not service.Actor("staff", "", role=who.staff.role).supervises:
        raise NotSupervisor("the audit view is for supervisors and tenant admins")
    async with svc.reads.transaction(tenant_id=who.tenant_id) as conn:
        rows = await repo.audit_view(conn, person=person, staff=staff_id, break_glass=break_glass,
                                     start=aware(from_, "from"), end=aware(to, "to"), before=_before(before),
                                     limit=limit)
    return AuditPage(items=[_audit_item(r) for r in rows], next=str(rows[-1]["id"]) if len(rows) == limit else None)


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
        raise Forbidden("only a tenant admin can change the policy")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await repo.save_policy(conn, who.tenant_id, policy.model_dump(), who.claims.subject)
    return policy


@router.put("/me/on-duty", summary="Go on or off duty (on-duty staff get critical escalations)")
async def on_duty(body: OnDutyIn, who: Principal = Depends(staff), svc: Services = Depends(services)) -> OnDutyIn:
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        await repo.set_on_duty(conn, who.staff.id, body.on_duty)
    return body
