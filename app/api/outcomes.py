"""The insurer's outcomes: ``GET /v1/care/outcomes`` (JSON, or CSV) for care supervisors and tenant admins."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alerts import outcomes
from alerts import outcomes_repository
from app.api.deps import Principal, Services, services, staff
from app.core.errors import Forbidden, Invalid

router = APIRouter(prefix="/v1/care", tags=["care team"])

MAX_DAYS = 400
CSV_COLUMNS = ("bucket", "feature", "severity", *outcomes.COUNTS)


class Times(BaseModel):
    median_s: float | None
    p90_s: float | None


class Funnel(BaseModel):
    opened: int
    claimed: int
    contacted: int = Field(description="A contact recorded by the care team, or a check-in push sent.")
    answered: int = Field(description="The member answered a check-in.")
    answered_fine: int
    answered_help: int
    answered_call: int
    resolved: int
    shares: dict[str, float | None] = Field(description="Each step as a share of the alerts opened.")
    reach_rate: float | None = Field(description="Alerts where the person was reached and answered / opened.")


class People(BaseModel):
    monitored: int = Field(description="People with monitoring consent for at least one data type, at the end.")
    active: int = Field(description="People whose devices sent data in the last three days (as of the end, or now).")
    consent_grants: int
    consent_withdrawals: int


class Resolution(BaseModel):
    feature: str
    needed_help: int
    false_alarm: int
    member_fine: int
    no_response: int
    consent_withdrawn: int
    precision: float | None = Field(description="needed_help / (needed_help + false_alarm): the detector's "
                                    "real-world precision, as the care team judged it.")


class Pushes(BaseModel):
    provider: str = Field(description="fcm, gateway, webhook (events to the insurer's systems), or none.")
    recipient: Literal["person", "staff", "webhook"]
    queued: int
    sent: int
    delivered: int
    opened: int
    answered: int
    dead_letters: int


class Agent(BaseModel):
    agent: str
    role: str
    assigned: int = Field(description="Alerts opened in the range that this staff member holds.")
    contacted: int = Field(description="Of those, alerts where the person was contacted.")
    resolved: int
    unresolved: int


class Report(BaseModel):
    from_: date = Field(alias="from")
    to: date
    bucket: Literal["day", "week", "month"]
    time_zone: str
    people: People
    funnel: Funnel
    times: dict[str, Times] = Field(description="From opening to: claim, first contact, the member's answer.")
    times_by_feature: list[dict] = Field(description="The same times per feature and severity, over the whole range: "
                                         "`claim_p50_s`, `claim_p90_s`, `first_contact_…`, `answer_…`.")
    escalations: int
    deadline_breaches: int = Field(description="Alerts for which an escalation step fired (a policy deadline passed).")
    resolutions: list[Resolution]
    pushes: list[Pushes]
    agents: list[Agent]
    series: list[dict] = Field(description="Per bucket (every bucket, zeros included): the funnel counts, monitored "
                               "people and consent changes.")
    rows: list[dict] = Field(description="Counts per bucket, feature and severity (the CSV's rows).")


@router.get("/outcomes", summary="Outcomes of proactive care (supervisors and tenant admins)",
            response_model=Report, response_model_by_alias=True,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "JSON, or CSV (one row per bucket, feature and severity) with "
                                            "`Accept: text/csv` or `format=csv`."},
                       422: {"description": "Dates out of order or a range longer than 400 days"}},
            description="Alerts opened in the insurer's local days [`from`, `to`) and what became of them, with "
                        "consent, push and workload figures. Dates are in the insurer's time zone; `to` is "
                        "exclusive. Defaults: the last 30 days, by week.")
async def get_outcomes(
    request: Request,
    from_: date | None = Query(None, alias="from", description="First local day (YYYY-MM-DD)."),
    to: date | None = Query(None, description="Day after the last local day (YYYY-MM-DD)."),
    bucket: Literal["day", "week", "month"] = Query("week"),
    format: Literal["json", "csv"] | None = Query(None, description="`csv`, or ask with `Accept: text/csv`."),
    who: Principal = Depends(staff), svc: Services = Depends(services),
):
    if who.staff.role not in ("care_supervisor", "tenant_admin"):
        raise Forbidden("outcomes are for care supervisors and tenant admins")
    async with svc.db.transaction(tenant_id=who.tenant_id) as conn:
        tz = outcomes.zone(await outcomes_repository.tenant_time_zone(conn))
        today = datetime.now(timezone.utc).astimezone(tz).date()
        to = to or today + timedelta(days=1)
        from_ = from_ or to - timedelta(days=30)
        if not (date(2000, 1, 1) <= from_ and to <= date(2200, 1, 1)):
            raise Invalid("dates must lie between 2000-01-01 and 2200-01-01", code="invalid_range")
        if from_ >= to:
            raise Invalid("`from` must be before `to`", code="invalid_range")
        if (to - from_).days > MAX_DAYS:
            raise Invalid(f"at most {MAX_DAYS} days at once", code="range_too_long")
        report = await outcomes.report(conn, tenant_id=who.tenant_id, first_day=from_, end_day=to, bucket=bucket,
                                         db=svc.db)
    if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
        return _csv(report)
    return Report.model_validate(report)


def _csv(report: dict) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["rows"]:
        writer.writerow(row)
    name = f"outcomes-{report['from']}-{report['to']}-{report['bucket']}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
