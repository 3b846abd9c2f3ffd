"""Sync from a phone's health store: the platforms' own change shapes, one result per item."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.deps import Principal, Services, policyholder, services
from app.api.readings import read_body
from app.api.schemas import Problem
from app.core.errors import Invalid, TooLarge
from streaming import records
from streaming.records import Operation, Upsert, healthconnect, healthkit, huawei
from streaming.records import repository as records_repo

router = APIRouter(tags=["sync"])

_encoder = msgspec.json.Encoder()


class SyncItemResult(BaseModel):
    index: int
    status: str = Field(description="inserted, replaced, unchanged, stale, deleted, not_found or rejected")
    id: str | None = Field(None, description="The record's id on its platform, when the item named one.")
    readings: int | None = Field(None, description="Readings the record holds now (inserted / replaced).")
    records: int | None = Field(None, description="Windows and range deletions: how many records were deleted.")
    reason: str | None = Field(None, description="rejected only: a stable code (invalid, unsupported_type, "
                               "no_consent, implausible_value, unknown_unit, time_in_future, …).")
    detail: str | None = None


class SyncResult(BaseModel):
    results: list[SyncItemResult]
    inserted: int
    replaced: int
    unchanged: int
    stale: int
    deleted: int
    not_found: int
    rejected: int


_ANSWERS = {413: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}}
_COMMON = ("Every item gets its own result, in order, **after** the commit. A record is identified by "
           "(you, platform, source app, record id); a newer version replaces all of its readings at once, an "
           "older one is `stale` and changes nothing, a resend is `unchanged`; a deletion withdraws the readings "
           "(the record is kept as a tombstone). Nothing of a rejected item is stored; unknown record types are "
           "rejected, unknown fields of known types ignored. Each data type needs the person's monitoring "
           "consent. Malformed JSON → 422; more samples than BEIDOU_MAX_BATCH_READINGS → 413.")


async def _sync(request: Request, who: Principal, svc: Services,
                parse: Callable[[object], list[Operation]]) -> Response:
    body = await read_body(request, svc.settings.max_body_bytes)
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise Invalid(f"malformed JSON: {exc}") from None
    try:
        operations = parse(document)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    samples = sum(len(op.samples) for op in operations if isinstance(op, Upsert))
    if samples > svc.settings.max_batch_readings or len(operations) > svc.settings.max_batch_readings:
        raise TooLarge(f"at most {svc.settings.max_batch_readings} samples and items per request")
    result = await records.apply(svc.db, tenant_id=who.tenant_id, person_id=who.person_id, operations=operations,
                                 limits=svc.limits)
    return Response(_encoder.encode(result.summary()), media_type="application/json")


def _sync_route(path: str, name: str, summary: str, platform, description: str) -> None:
    """One sync endpoint: the platform module's ``operations`` parse the body, its ``EXAMPLE`` is the documented one."""

    async def endpoint(request: Request, who: Principal = Depends(policyholder),
                       svc: Services = Depends(services)) -> Response:
        return await _sync(request, who, svc, platform.operations)

    endpoint.__name__ = endpoint.__qualname__ = name
    example = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object"}, "example": platform.EXAMPLE}}}}
    router.post(path, name=name, summary=summary, response_model=SyncResult, responses=_ANSWERS,
                openapi_extra=example, description=description + _COMMON)(endpoint)


_sync_route("/v1/sync/health-connect", "sync_health_connect", "Sync Android Health Connect changes", healthconnect,
            "The body mirrors a Health Connect `getChanges` response: `changes` of "
            "`upsertionChange.record` (Health Connect's property names, `recordType` one of "
            + ", ".join(healthconnect.TYPES) + ") and `deletionChange.recordId`. Optional `windows` "
            "(`recordType`, `dataOrigin`, `startTime`, `endTime`) say the body holds *everything* that "
            "app has for that type between the two times (after an expired changes token): records we "
            "hold there that the body does not send are deleted. A null zone offset is taken from "
            "your time zone. ")
_sync_route("/v1/sync/healthkit", "sync_healthkit", "Sync Apple HealthKit anchored-query results", healthkit,
            "The body mirrors an `HKAnchoredObjectQuery` result: `samples` (HealthKit names: `uuid`, "
            "`sampleType` one of " + ", ".join(healthkit.TYPES) + ", `startDate`, `endDate`, "
            "`quantity`, `unit`, `sourceRevision`, `metadata`) and `deletedObjects` (`uuid`). A "
            "quantity series sample carries its values in `series`. Sleep comes as per-stage "
            "`HKCategoryTypeIdentifierSleepAnalysis` samples: each is a record without readings, and a "
            "source's stages of one night (noon to noon, local time) make ONE sleep session reading "
            "(minutes asleep, minutes per stage; in bed is never counted), re-derived whenever one of them "
            "changes or is deleted. Oxygen saturation is a 0–1 fraction. "
            "Without `metadata.HKTimeZone` the offset is taken from your time zone. Optional `windows` "
            "(`sampleType`, `bundleIdentifier`, `startDate`, `endDate`) replace what we hold there "
            "(after HealthKit purged deletions). ")
_sync_route("/v1/sync/huawei", "sync_huawei", "Sync Huawei Health Kit sample sets", huawei,
            "`sampleSets`: each with `dataCollectorId`, `dataType` (one of "
            + ", ".join(huawei.TYPES) + "), `startTime`/`endTime` in nanoseconds, `timeZone` like "
            "`+0800` and `samplePoints` (`startTime`, `endTime`, `fieldValues`); a `DT_CONTINUOUS_SLEEP` set "
            "is one night of fragments (`sleep_state` 1 light, 2 REM, 3 deep, 4 awake, 5 nap), stored as one "
            "sleep session. A sample set is "
            "identified by its collector, type and time range. `deletions` (`dataCollectorId`, "
            "`dataType`, `startTime`, `endTime`) delete what that collector sent for the type in the "
            "range. ")


class SourcePriority(BaseModel):
    """Sources ranked first to last, as stored in readings' `source` (e.g. `health-connect:com.example.watch`)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(min_length=1, max_length=20)


class SourcePriorities(BaseModel):
    steps: list[str] | None = Field(None, description="Ranked steps sources; none: the one that counted the most "
                                                      "in each hour is read.")


@router.get("/v1/me/source-priority", summary="My ranking of sources that count the same thing",
            response_model=SourcePriorities)
async def get_source_priority(who: Principal = Depends(policyholder),
                              svc: Services = Depends(services)) -> SourcePriorities:
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        return SourcePriorities(**await records_repo.source_priorities(conn, who.person_id))


@router.put("/v1/me/source-priority/{metric}", summary="Rank the sources of a data type", response_model=SourcePriorities,
            description="Several apps counting the same steps are never added up: charts and detection read one "
                        "source per hour — the first of this ranking that has steps in that hour (without a ranking, "
                        "the one that counted the most).")
async def put_source_priority(metric: Literal["steps"], ranking: SourcePriority,
                              who: Principal = Depends(policyholder),
                              svc: Services = Depends(services)) -> SourcePriorities:
    if len(set(ranking.sources)) != len(ranking.sources) or not all(s.isprintable() for s in ranking.sources):
        raise Invalid("`sources` must be distinct printable names")
    async with svc.db.transaction(tenant_id=who.tenant_id, person_id=who.person_id) as conn:
        await records_repo.set_source_priority(conn, who.tenant_id, who.person_id, metric, ranking.sources)
        return SourcePriorities(**await records_repo.source_priorities(conn, who.person_id))
