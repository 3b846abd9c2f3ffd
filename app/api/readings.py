"""HTTP ingest and a policyholder's own readings."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
from fastapi import APIRouter, Depends, Query, Request, Response

from app.api.deps import Principal, Services, aware, policyholder, services
from app.api.schemas import BatchResult, Problem, ReadingPage
from app.core.errors import Invalid, TooLarge
from consent import repository as consent_repo
from streaming import validation
from streaming.receive import receive, summary_json

router = APIRouter(tags=["readings"])


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/v1/readings",
    summary="Send a batch of readings",
    description=(
        "Stores every valid, consented reading of the batch and answers with one result per item, in order, "
        "**after** the commit: an `accepted` item is in the database. Re-sending a batch is safe: items already "
        "stored come back as `duplicate` (natural key: person, metric, source, time). Nothing of a rejected item is "
        "stored. Malformed JSON → 422 with the location of the fault; a body over BEIDOU_MAX_BODY_BYTES or more "
        "than BEIDOU_MAX_BATCH_READINGS items → 413; a new source past 32,767 distinct sources of one person → 422 "
        "`too_many_sources` (nothing stored); database unavailable → 503 with Retry-After (nothing stored)."
    ),
    response_model=BatchResult,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ReadingBatch"}}}}},
    responses={413: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}},
)
async def post_readings(request: Request, who: Principal = Depends(policyholder),
                        svc: Services = Depends(services)) -> Response:
    body = await read_body(request, svc.settings.max_body_bytes)
    try:
        items = validation.decode_batch(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Invalid(str(exc)) from None
    if len(items) > svc.settings.max_batch_readings:
        raise TooLarge(f"at most {svc.settings.max_batch_readings} readings per batch")
    results = await receive(svc.ingest, tenant_id=who.tenant_id, person_id=who.person_id, items=items,
                            limits=svc.limits)
    return Response(summary_json(results), media_type="application/json")


@router.get(
    "/v1/me/readings",
    summary="My stored readings",
    description="The caller's own readings, newest first. Page with `to` = the previous page's `next_before`. "
                "`from` and `to` need a UTC offset (422 otherwise). Older than the hot window "
                "(BEIDOU_HOT_DAYS), a dense signal (heart rate, steps, HRV, SpO2, respiratory rate) is one reading "
                "per minute: that minute's average.",
    response_model=ReadingPage, responses={422: {"model": Problem}},
)
async def my_readings(
    metric: str | None = Query(None, description="Only this data type."),
    from_: datetime | None = Query(None, alias="from", description="Oldest time (inclusive)."),
    to: datetime | None = Query(None, description="Newest time (exclusive)."),
    limit: int = Query(500, ge=1, le=5000),
    who: Principal = Depends(policyholder),
    svc: Services = Depends(services),
) -> ReadingPage:
    to = aware(to, "to") or datetime.now(timezone.utc) + timedelta(days=1)
    from_ = aware(from_, "from") or to - timedelta(days=30)
    if to - from_ > timedelta(days=366):
        raise Invalid("at most 366 days per query")
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        rows = await consent_repo.own_readings(conn, who.person_id, start=from_, end=to, metric=metric, limit=limit)
    readings = [dict(zip(("time", "metric", "value", "value2", "source"), row)) for row in rows]
    return ReadingPage(readings=readings, next_before=rows[-1][0] if len(rows) == limit else None)
