"""FHIR R4 in: Observations from partners (hospitals, other platforms), alone or in a ``batch`` Bundle."""
from __future__ import annotations

import msgspec
from fastapi import APIRouter, Depends, Request, Response

from app.api.deps import Principal, Services, policyholder, services
from app.api.readings import read_body
from app.api.schemas import Problem
from app.core.errors import Invalid, TooLarge
from streaming import records
from streaming.records import fhir

router = APIRouter(tags=["fhir"])

_encoder = msgspec.json.Encoder()
FHIR_JSON = "application/fhir+json"

# A result -> the HTTP status FHIR expects in a batch-response entry (and of the single-resource answer)
_HTTP = {"inserted": "201 Created", "replaced": "200 OK", "unchanged": "200 OK", "stale": "409 Conflict"}
_ISSUE = {"no_consent": "forbidden", "unsupported_type": "not-supported"}


def _entry(result: dict) -> dict:
    status = result["status"]
    if status == "rejected":
        http = "403 Forbidden" if result["reason"] == "no_consent" else "422 Unprocessable Entity"
        issue = {"severity": "error", "code": _ISSUE.get(result["reason"], "invalid"),
                 "details": {"text": result["reason"]}, "diagnostics": result["detail"]}
    else:
        http = _HTTP[status]
        text = {"stale": "a newer version of this Observation is stored; nothing changed",
                "unchanged": "this Observation is already stored; nothing changed"}.get(status, status)
        issue = {"severity": "warning" if status == "stale" else "information",
                 "code": "conflict" if status == "stale" else "informational",
                 "details": {"text": status}, "diagnostics": text}
    return {"status": http, "outcome": {"resourceType": "OperationOutcome", "issue": [issue]}}


async def _decode(request: Request, svc: Services) -> object:
    body = await read_body(request, svc.settings.max_body_bytes)
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise Invalid(f"malformed JSON: {exc}") from None


_ANSWERS = {413: {"model": Problem}, 422: {"model": Problem}, 503: {"model": Problem}}
_CODES = ("LOINC heart rate 8867-4, resting heart rate 40443-4, steps 55423-8 / 41950-7, SpO2 2708-6 / 59408-5, "
          "blood pressure panel 85354-9 with components 8480-6 / 8462-4, glucose 2339-0 / 15074-8, temperature "
          "8310-5, respiratory rate 9279-1, sleep duration 93832-4; RMSSD as code `hrv_rmssd` of "
          f"`{fhir.DATA_TYPE_SYSTEM}`; or an Open mHealth data point in `valueAttachment` (application/json).")


@router.post("/fhir/r4/Observation", summary="Store one FHIR R4 Observation", responses={
    200: {"description": "Already stored (resend) or replaced by a newer version: OperationOutcome."},
    201: {"description": "Stored: OperationOutcome."},
    403: {"description": "No monitoring consent for this data type: OperationOutcome."},
    409: {"description": "An older version than the one stored: nothing changed (OperationOutcome)."},
    **_ANSWERS},
    description="`Observation.identifier` is the identity: sending it again changes nothing; a newer "
                "`meta.lastUpdated` (or numeric `meta.versionId`) replaces it. Validated by a FHIR model library; "
                "an Observation it cannot store is answered 422 with an OperationOutcome. Codes: " + _CODES,
    openapi_extra={"requestBody": {"required": True, "content": {FHIR_JSON: {"schema": {"type": "object"}},
                                                                 "application/json": {"schema": {"type": "object"}}}}})
async def post_observation(request: Request, who: Principal = Depends(policyholder),
                           svc: Services = Depends(services)) -> Response:
    op = fhir.observation(await _decode(request, svc))
    result = await records.apply(svc.db, tenant_id=who.tenant_id, person_id=who.person_id, operations=[op],
                                 limits=svc.limits)
    entry = _entry(result.results[0])
    return Response(_encoder.encode(entry["outcome"]), status_code=int(entry["status"][:3]), media_type=FHIR_JSON)


@router.post("/fhir/r4", summary="Store a FHIR R4 batch Bundle of Observations", responses=_ANSWERS,
             description="A Bundle of type `batch` whose entries POST Observations; answered with a "
                         "`batch-response` Bundle holding a status and an OperationOutcome per entry, in order "
                         "(201 stored, 200 already stored or replaced, 409 older version, 403 no consent, 422 "
                         "refused). Nothing of a refused entry is stored. Codes: " + _CODES,
             openapi_extra={"requestBody": {"required": True, "content": {
                 FHIR_JSON: {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}}}})
async def post_bundle(request: Request, who: Principal = Depends(policyholder),
                      svc: Services = Depends(services)) -> Response:
    try:
        operations = fhir.batch(await _decode(request, svc))
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if len(operations) > svc.settings.max_batch_readings:
        raise TooLarge(f"at most {svc.settings.max_batch_readings} entries per Bundle")
    result = await records.apply(svc.db, tenant_id=who.tenant_id, person_id=who.person_id, operations=operations,
                                 limits=svc.limits)
    bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [_entry(r) for r in result.results]}
    return Response(_encoder.encode(bundle), media_type=FHIR_JSON)
