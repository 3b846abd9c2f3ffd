"""What the policyholder's own page (``/me``) reads that other routes do not give: the notices with their
versions, a data type's last days with the personal baseline and the alerts it raised, and the list of
messages from the care team. The SQL lives in :mod:`app.me_page.repository`."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from alerts.messages import text_for
from app.api.deps import Principal, Services, policyholder, services
from app.api.schemas import Problem
from app.core.errors import Invalid, NoConsent
from app.me_page import repository
from consent import notices as consent_notices
from consent import repository as consent_repo
from consent import service as consent_service
from consent.catalog import DATA_TYPES, LANGUAGES, MONITORING

router = APIRouter(tags=["my page"])

Language = Literal[LANGUAGES]  # type: ignore[valid-type]
DataType = Literal[DATA_TYPES]  # type: ignore[valid-type]

_GONE = {410: {"model": Problem, "description": "This person's data was erased (code `erased`)."}}


class NoticeItem(BaseModel):
    data_type: str
    purpose: str
    version: str = Field(description="Changes whenever the notice's words change; send it as `notice_version` "
                                     "when granting.")
    title: str
    text: str = Field(description="What granting means, in plain words.")


class NoticeList(BaseModel):
    language: str
    notices: list[NoticeItem] = Field(description="Every data type × purpose, data types in catalogue order.")


@router.get("/v1/me/notices", summary="The consent notices and their versions", response_model=NoticeList,
            description="What each data type × purpose means, in `language` (default: your profile's), with the "
                        "notice's version. The version is derived from the words themselves in every language.",
            responses=_GONE)
async def my_notices(language: Language | None = Query(None, description="`en` or `zh-CN`."),
                     who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> NoticeList:
    if language is None:
        async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
            language = (await consent_service.subject(conn, person_id=who.person_id)).language
    found = consent_notices.notices(language)
    return NoticeList(language=language if language in LANGUAGES else "en",
                      notices=[NoticeItem(data_type=n.data_type, purpose=n.purpose, version=n.version, title=n.title,
                                         text=n.text) for n in found])


class Point(BaseModel):
    time: datetime
    avg: float
    min: float
    max: float
    count: int


class Finding(BaseModel):
    """Something the detector noticed, with the personal baseline it compared the readings with."""

    id: int
    kind: str
    feature: str
    tier: Literal["watch", "alert"]
    start_time: datetime
    end_time: datetime
    value: float | None
    baseline: float | None = Field(description="Your personal baseline at that time (what is usual for you).")
    reason: str


class MyAlert(BaseModel):
    """An alert raised about this data type: why the insurer asked how you are, and where it stands."""

    id: UUID
    kind: str
    feature: str
    severity: str
    status: Literal["open", "claimed", "contacted", "resolved"]
    urgent: bool = Field(description="You asked for help or a call.")
    reason: str = Field(description="Why, in words (English; the page renders `reason_code` + `details`).")
    reason_code: str = Field(description="The reason as data: `combined_evidence`, `feature_change`, `no_data`, ...")
    details: dict = Field(description="The reason's numbers: each signal with its value, usual value, change, days.")
    episode_start: datetime
    episode_end: datetime
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class MyData(BaseModel):
    data_type: str
    bucket: Literal["1h", "1d"]
    start: datetime
    end: datetime
    points: list[Point] = Field(description="Average, lowest and highest per bucket, oldest first.")
    findings: list[Finding] = Field(description="The detector's findings in the window, each with its baseline.")
    alerts: list[MyAlert] = Field(description="Alerts about this data type open at some point in the window, "
                                              "newest first.")


@router.get("/v1/me/data/{data_type}", summary="My readings of one data type, with my baseline and alerts",
            response_model=MyData,
            description="The last `days` days of one data type per bucket, the detector's findings with the "
                        "personal baseline it used, and the alerts raised (with the reason in words): the same "
                        "evidence the care team sees. 403 `no_consent` unless you share this data type "
                        "(monitoring consent in force).",
            responses={403: {"model": Problem, "description": "No monitoring consent for this data type "
                                                              "(code `no_consent`)."}, **_GONE})
async def my_data(data_type: DataType = Path(description="A data type, e.g. heart_rate."),
                  days: int = Query(30, ge=1, le=90, description="How many days back from now."),
                  bucket: Literal["1h", "1d"] = Query("1h", description="`1h`, or `1d` for daily totals."),
                  who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> MyData:
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=days)
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await consent_service.subject(conn, person_id=who.person_id)
        if not await consent_repo.in_force(conn, who.person_id, data_type, MONITORING):
            raise NoConsent(f"you do not share {data_type} (no monitoring consent): nothing is shown")
        points = await repository.series(conn, person_id=who.person_id, metric=data_type, bucket=bucket,
                                         start=start, end=end)
        findings = await repository.baselines(conn, person_id=who.person_id, metric=data_type, start=start, end=end)
        alerts = await repository.alerts_about(conn, person_id=who.person_id, metric=data_type, since=start)
    return MyData(data_type=data_type, bucket=bucket, start=start, end=end, points=[Point(**p) for p in points],
                  findings=[Finding(**f) for f in findings],
                  alerts=[MyAlert(reason=a.pop("summary"), **a) for a in alerts])


class MessageItem(BaseModel):
    id: UUID
    kind: str = Field(description="check_in or reconnect.")
    title: str
    body: str
    data_type: str | None = Field(description="The data type the message is about.")
    status: str = Field(description="Where the message stands: queued, held, sending, sent, failed, opened, "
                                    "answered.")
    created_at: datetime
    opened_at: datetime | None
    answer: Literal["fine", "help", "call"] | None
    answered_at: datetime | None
    reason: str | None = Field(description="What the care team noticed, in words.")
    reason_code: str | None = Field(None, description="The same reason as data (see `GET /v1/me/data/{data_type}`).")
    details: dict | None = Field(None, description="The reason's numbers.")
    alert_status: Literal["open", "claimed", "contacted", "resolved"] | None = Field(
        description="What happened next: where the alert it was about stands.")
    alert_resolution: str | None
    urgent: bool | None = Field(description="The care team was asked to call you at once.")
    alert_updated_at: datetime | None


class MessageList(BaseModel):
    messages: list[MessageItem] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as `before` for older messages; null at the end.")


def _cursor(row: dict) -> str:
    return base64.urlsafe_b64encode(f"{row['created_at'].isoformat()}|{row['id']}".encode()).decode()


def _parse_cursor(token: str) -> tuple[datetime, UUID]:
    try:
        at, message_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("no offset")
        return parsed, UUID(message_id)
    except (ValueError, UnicodeError, TypeError):
        raise Invalid("`before` is not a cursor this route gave") from None


@router.get("/v1/me/messages", summary="My messages from the care team", response_model=MessageList,
            description="Check-ins and reconnect reminders, newest first, with your answer and what happened "
                        "next (where the alert stands). Listing does not mark them opened; "
                        "`GET /v1/me/messages/{id}` does. Cancelled messages are not listed.",
            responses={422: {"model": Problem}, **_GONE})
async def my_messages(limit: int = Query(20, ge=1, le=100),
                      before: str | None = Query(None, max_length=200, description="`next` of the previous answer."),
                      who: Principal = Depends(policyholder), svc: Services = Depends(services)) -> MessageList:
    after = _parse_cursor(before) if before else None
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await consent_service.subject(conn, person_id=who.person_id)
        rows = await repository.messages(conn, person_id=who.person_id, limit=limit, before=after)
    items = []
    for row in rows:
        title, body = text_for(row["purpose"], row["language"])
        items.append(MessageItem(
            id=row["id"], kind=row["purpose"], title=title, body=body, data_type=row["metric"], status=row["status"],
            created_at=row["created_at"], opened_at=row["opened_at"], answer=row["answer"],
            answered_at=row["answered_at"], reason=row["summary"], reason_code=row["reason_code"],
            details=row["details"], alert_status=row["alert_status"],
            alert_resolution=row["resolution"], urgent=row["urgent"], alert_updated_at=row["alert_updated_at"]))
    return MessageList(messages=items, next=_cursor(rows[-1]) if len(rows) == limit else None)
