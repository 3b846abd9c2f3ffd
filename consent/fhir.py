"""FHIR R4 shapes: Consent for consent state, Patient, Device for sources, Observation for readings.

Resources reference each other by ``urn:uuid:`` full URLs, so a Bundle of type ``collection`` is
self-contained. Observation ids are derived from the reading's natural key (person, metric, source,
time): exporting twice gives the same ids.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from uuid import UUID

from app.core.datatypes import DATA_TYPE_SYSTEM, DATA_TYPES, LOINC
from consent import people
from consent.catalog import DATA_TYPE_NAMES, MONITORING, OUTREACH, RESEARCH
from consent.repository import CurrentConsent

UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSE_SYSTEM = "https://health-beidou.org/fhir/CodeSystem/consent-purpose"

# data type -> (code system, code, display, UCUM code, unit shown, observation category), from the registry
OBSERVATION_CODES: dict[str, tuple[str, str, str, str, str, str]] = {
    t.name: (t.fhir.system, t.fhir.code, t.fhir.display, t.fhir.ucum, t.fhir.unit, t.fhir.category)
    for t in DATA_TYPES.values()
}
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")

# Our purposes, and the nearest HL7 purpose of use.
PURPOSE_OF_USE: dict[str, tuple[str, str]] = {
    MONITORING: ("TREAT", "treatment"),
    OUTREACH: ("COC", "coordination of care"),
    RESEARCH: ("HRESCH", "healthcare research"),
}


def _coding(data_type: str) -> dict:
    system, code, display = OBSERVATION_CODES[data_type][:3]
    return {"system": system, "code": code, "display": display}


def ref(resource_id: UUID | str) -> str:
    return f"urn:uuid:{resource_id}"


def _instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat()


def entry(resource: dict) -> dict:
    """A Bundle entry whose fullUrl is the urn:uuid the other resources reference."""
    return {"fullUrl": ref(resource["id"]), "resource": resource}


def consent(current: CurrentConsent, *, person_id: UUID) -> dict:
    """One data type × purpose as an R4 Consent: active and permit while granted, inactive otherwise."""
    code, display = PURPOSE_OF_USE[current.purpose]
    period = {"start": _instant(current.updated_at)}
    if current.recorded_granted and current.valid_until is not None:
        period["end"] = _instant(current.valid_until)
    resource = {
        "resourceType": "Consent",
        "id": str(uuid.uuid5(person_id, f"consent|{current.data_type}|{current.purpose}|{current.event_id}")),
        "identifier": [{"system": "urn:health-beidou:consent-event", "value": str(current.event_id)}],
        "status": "active" if current.granted else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": ref(person_id)},
        "dateTime": _instant(current.updated_at),
        "performer": [{"reference": ref(current.actor_person_id or person_id)}],
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN" if current.recorded_granted else "OPTOUT"}]},
        "provision": {
            "type": "permit" if current.recorded_granted else "deny",
            "period": period,
            "purpose": [{"system": PURPOSE_SYSTEM, "code": current.purpose},
                        {"system": ACT_REASON, "code": code, "display": display}],
            "class": [{"system": DATA_TYPE_SYSTEM, "code": current.data_type,
                       "display": DATA_TYPE_NAMES[current.data_type]["en"]}],
            "code": [{"coding": [_coding(current.data_type)]}],
        },
    }
    if current.notice_version:
        resource["policy"] = [{"uri": f"urn:health-beidou:notice:{current.notice_version}"}]
    return resource


def consent_bundle(currents: list[CurrentConsent], *, person_id: UUID, now: datetime) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "timestamp": _instant(now),
            "entry": [entry(consent(c, person_id=person_id)) for c in currents]}


def patient(person: people.PersonFacts) -> dict:
    resource = {
        "resourceType": "Patient",
        "id": str(person.id),
        "identifier": [{"system": f"urn:health-beidou:tenant:{person.tenant_id}:person", "value": person.external_id}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": person.language}]},
                           "preferred": True}],
    }
    if person.birth_date is not None:
        resource["birthDate"] = person.birth_date.isoformat()
    return resource


def device_id(person_id: UUID, source: str) -> UUID:
    return uuid.uuid5(person_id, f"source|{source}")


def device(person_id: UUID, source: str) -> dict:
    return {"resourceType": "Device", "id": str(device_id(person_id, source)),
            "deviceName": [{"name": source, "type": "user-friendly-name"}], "patient": {"reference": ref(person_id)}}


def _local(time: datetime, offset_min: int) -> str:
    return time.astimezone(timezone(timedelta(minutes=offset_min))).isoformat()


def _quantity(value: float, unit: str, code: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def observation(person_id: UUID, *, time: datetime, metric: str, value: float, value2: float | None,
                details: dict | None, source: str, utc_offset_min: int) -> dict:
    """A stored reading as an R4 Observation with its LOINC code and UCUM unit, at the phone's own offset."""
    _, _, _, ucum, unit, category = OBSERVATION_CODES[metric]
    key = f"{metric}|{source}|{_instant(time)}"
    resource = {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(person_id, key)),
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [_coding(metric)]},
        "subject": {"reference": ref(person_id)},
        "device": {"reference": ref(device_id(person_id, source)), "display": source},
    }
    end = (details or {}).get("end")
    if metric == "sleep" and end:
        resource["effectivePeriod"] = {"start": _local(time, utc_offset_min), "end": end}
    else:
        resource["effectiveDateTime"] = _local(time, utc_offset_min)
    if metric == "blood_pressure":
        resource["component"] = [
            {"code": {"coding": [{"system": LOINC, "code": SYSTOLIC[0], "display": SYSTOLIC[1]}]},
             "valueQuantity": _quantity(value, unit, ucum)},
            {"code": {"coding": [{"system": LOINC, "code": DIASTOLIC[0], "display": DIASTOLIC[1]}]},
             "valueQuantity": _quantity(value2, unit, ucum)},
        ]
    else:
        resource["valueQuantity"] = _quantity(value, unit, ucum)
    return resource
