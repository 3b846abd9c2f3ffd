"""FHIR R4 in: vital-sign Observations (alone or in a ``batch`` Bundle) and Open mHealth data points they carry.

Each resource is validated by the FHIR model library (``fhir.resources``, its R4B models: R4B only added
resources, Observation and Bundle are R4's) before anything here reads it. ``Observation.identifier`` is the
identity: a resend is ``unchanged``; ``meta.lastUpdated`` / a numeric ``meta.versionId`` order versions.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from fhir.resources.R4B.attachment import Attachment
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from consent.fhir import DATA_TYPE_SYSTEM, DIASTOLIC, LOINC, SYSTOLIC
from streaming.metrics import METRICS
from streaming.records import Invalid, Operation, Sample, Upsert, as_utc, metric_or_invalid
from streaming.validation import Rejected

PLATFORM = "fhir"

LOINC_TYPES = {
    "8867-4": "heart_rate", "40443-4": "resting_heart_rate", "55423-8": "steps", "41950-7": "steps",
    "2708-6": "spo2", "59408-5": "spo2", "85354-9": "blood_pressure", "2339-0": "glucose", "15074-8": "glucose",
    "8310-5": "body_temperature", "9279-1": "respiratory_rate", "93832-4": "sleep", "80404-7": "hrv_sdnn",
}
# UCUM codes -> the unit spellings streaming.metrics accepts
_UCUM = {"/min": "/min", "{beats}/min": "bpm", "{breaths}/min": "/min", "%": "%", "mm[Hg]": "mmHg",
         "mg/dL": "mg/dL", "mmol/L": "mmol/L", "Cel": "°C", "[degF]": "°F", "h": "h", "min": "min", "ms": "ms",
         "{steps}": "count", "{count}": "count", "1": "count", "kPa": "kPa"}
_HEART = {"heart_rate", "resting_heart_rate"}
# Open mHealth schema name -> (data type, body property)
_OMH = {"heart-rate": ("heart_rate", "heart_rate"), "step-count": ("steps", "step_count"),
        "oxygen-saturation": ("spo2", "oxygen_saturation"), "blood-glucose": ("glucose", "blood_glucose"),
        "body-temperature": ("body_temperature", "body_temperature"),
        "respiratory-rate": ("respiratory_rate", "respiratory_rate"), "sleep-duration": ("sleep", "sleep_duration"),
        "blood-pressure": ("blood_pressure", "systolic_blood_pressure")}
_OMH_UNITS = {"beats/min": "bpm", "steps": "count", "%": "%", "mg/dL": "mg/dL", "mmol/L": "mmol/L", "C": "°C",
              "F": "°F", "breaths/min": "/min", "h": "h", "min": "min", "mmHg": "mmHg", "kPa": "kPa"}


def observation(resource: Any) -> Operation:
    """One Observation resource → an upsert of its record, or :class:`Invalid`."""
    try:
        return _observation(resource)
    except Rejected as exc:
        return Invalid(exc.reason, exc.detail)


def batch(bundle: Any) -> list[Operation]:
    """The entries of a ``batch`` Bundle, in order (raises ``ValueError`` for a body that is not one)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ValueError("the body must be a FHIR Bundle")
    if bundle.get("type") != "batch":
        raise ValueError("only Bundle.type `batch` is accepted (each entry is stored or refused on its own)")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ValueError("Bundle.entry must be a list")
    ops: list[Operation] = []
    for entry in entries:
        request = entry.get("request") if isinstance(entry, dict) else None
        if isinstance(request, dict) and request.get("method", "POST") != "POST":
            ops.append(Invalid("invalid", "only POST entries are accepted"))
        elif not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            ops.append(Invalid("invalid", "an entry needs a `resource`"))
        else:
            ops.append(observation(entry["resource"]))
    return ops


def _observation(resource: Any) -> Operation:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        raise Rejected("unsupported_type", "only Observation resources are accepted")
    # valueAttachment (an Open mHealth data point, as JupyterHealth Exchange sends) is R5's value[x]; the rest
    # of the resource is R4 and validated as such.
    attachment = resource.get("valueAttachment")
    try:
        obs = Observation.model_validate({k: v for k, v in resource.items() if k != "valueAttachment"})
        point = None if attachment is None else _omh(Attachment.model_validate(attachment))
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        if not isinstance(exc, ValidationError):
            raise Rejected("invalid", f"not a valid FHIR Observation: {exc}") from None
        raise Rejected("invalid", "not a valid FHIR Observation: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])) from None
    if obs.status not in ("final", "amended", "corrected", "preliminary"):
        raise Rejected("invalid", f"Observation.status {obs.status!r} carries no result to store")
    identifier = next((i for i in obs.identifier or [] if i.value), None)
    if identifier is None:
        raise Rejected("invalid", "Observation.identifier (system and value) is its identity and is required")
    system = identifier.system or "urn:unspecified"
    if len(identifier.value) > 255 or len(system) > 255:
        raise Rejected("invalid", "Observation.identifier is longer than 255 characters")
    metric = point[0] if point else _data_type(obs)
    refused = metric_or_invalid(metric, "this code")
    if refused:
        raise Rejected(refused.reason, refused.detail)
    if point:
        start, end, at = _omh_time(point[1], metric)
        sample = _omh_sample(metric, point[1], start, end, at)
    else:
        start, end, at = _effective(obs, metric)
        sample = _sample(obs, metric, start, end, at)
    version_id = obs.meta.versionId if obs.meta else None
    version_seq = int(version_id) if version_id and re.fullmatch(r"[0-9]{1,18}", version_id) else 0
    version_time = as_utc(obs.meta.lastUpdated, "meta.lastUpdated") if obs.meta and obs.meta.lastUpdated else None
    offset = int(at.utcoffset().total_seconds() // 60)
    return Upsert(PLATFORM, system, identifier.value, "Observation", metric, start, end, [sample], offset,
                  version_time=version_time, version_seq=version_seq)


def _data_type(obs: Observation) -> str:
    if obs.code is None:
        raise Rejected("invalid", "Observation.code is required")
    for coding in obs.code.coding or []:
        if coding.system == DATA_TYPE_SYSTEM and coding.code in METRICS:
            return coding.code
        if coding.system == LOINC and coding.code in LOINC_TYPES:
            return LOINC_TYPES[coding.code]
    codes = ", ".join(f"{c.system}|{c.code}" for c in obs.code.coding or []) or "none"
    raise Rejected("unsupported_type", f"no supported code among: {codes}")


def _effective(obs: Observation, metric: str) -> tuple[datetime, datetime, datetime]:
    if obs.effectiveDateTime is not None:
        at = _aware(obs.effectiveDateTime, "effectiveDateTime")
        return at, at, at
    if obs.effectivePeriod is not None and obs.effectivePeriod.start and obs.effectivePeriod.end:
        start = _aware(obs.effectivePeriod.start, "effectivePeriod.start")
        end = _aware(obs.effectivePeriod.end, "effectivePeriod.end")
        return start, end, end if metric == "steps" else start
    raise Rejected("invalid", "Observation needs effectiveDateTime, or effectivePeriod with start and end")


def _aware(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Rejected("time_without_offset", f"`{what}` needs a time with a UTC offset")
    return value


def _quantity(q: Any, what: str) -> tuple[float, str | None]:
    if q is None or q.value is None:
        raise Rejected("invalid", f"`{what}` needs a value")
    code = q.code or q.unit
    unit = _UCUM.get(code, code) if code else None
    return float(q.value), unit


def _sample(obs: Observation, metric: str, start: datetime, end: datetime, at: datetime) -> Sample:
    if metric == "blood_pressure":
        parts: dict[str, Any] = {}
        for component in obs.component or []:
            for coding in (component.code.coding if component.code else None) or []:
                if coding.system == LOINC and coding.code in (SYSTOLIC[0], DIASTOLIC[0]):
                    parts[coding.code] = component.valueQuantity
        if SYSTOLIC[0] not in parts or DIASTOLIC[0] not in parts:
            raise Rejected("invalid", "a blood pressure panel needs components 8480-6 and 8462-4")
        systolic, unit = _quantity(parts[SYSTOLIC[0]], "component 8480-6")
        diastolic, unit2 = _quantity(parts[DIASTOLIC[0]], "component 8462-4")
        if unit != unit2:
            raise Rejected("invalid", "systolic and diastolic must share one unit")
        return Sample(at, None, unit, systolic=systolic, diastolic=diastolic)
    value, unit = _quantity(obs.valueQuantity, "valueQuantity")
    if metric in _HEART and unit == "/min":
        unit = "bpm"
    if metric == "sleep":
        if end <= start:
            raise Rejected("invalid", "a sleep Observation needs effectivePeriod")
        return Sample(start, value, unit, end=end)
    return Sample(at, value, unit)


def _omh(attachment: Attachment) -> tuple[str, dict]:
    """An Open mHealth data point carried as JSON in ``valueAttachment.data`` → (data type, its body)."""
    if not (attachment.contentType or "").startswith("application/json") or not attachment.data:
        raise Rejected("invalid", "valueAttachment must hold an Open mHealth data point as application/json data")
    try:
        # The model has already decoded the base64 (and refused data that is not base64).
        data = attachment.data if isinstance(attachment.data, bytes) else base64.b64decode(attachment.data)
        point = json.loads(data)
    except (binascii.Error, ValueError):
        raise Rejected("invalid", "valueAttachment.data is not base64-encoded JSON") from None
    schema = ((point.get("header") or {}).get("schema_id") or {}) if isinstance(point, dict) else {}
    name = schema.get("name") if isinstance(schema, dict) else None
    if name not in _OMH or not isinstance(point.get("body"), dict):
        raise Rejected("unsupported_type", f"Open mHealth schema {name!r} is not supported; "
                                           f"supported: {', '.join(sorted(_OMH))}")
    return _OMH[name][0], point["body"]


def _omh_time(body: dict, metric: str) -> tuple[datetime, datetime, datetime]:
    frame = body.get("effective_time_frame")
    if not isinstance(frame, dict):
        raise Rejected("invalid", "an Open mHealth body needs effective_time_frame")
    if isinstance(frame.get("date_time"), str):
        at = _parse(frame["date_time"], "effective_time_frame.date_time")
        return at, at, at
    interval = frame.get("time_interval")
    if isinstance(interval, dict) and isinstance(interval.get("start_date_time"), str) \
            and isinstance(interval.get("end_date_time"), str):
        start = _parse(interval["start_date_time"], "time_interval.start_date_time")
        end = _parse(interval["end_date_time"], "time_interval.end_date_time")
        return start, end, end if metric == "steps" else start
    raise Rejected("invalid", "effective_time_frame needs date_time or time_interval with start and end")


def _parse(text: str, what: str) -> datetime:
    try:
        return _aware(datetime.fromisoformat(text.replace("Z", "+00:00")), what)
    except ValueError:
        raise Rejected("invalid", f"`{what}` is not an RFC 3339 time") from None


def _omh_value(body: dict, key: str) -> tuple[float, str | None]:
    item = body.get(key)
    if isinstance(item, int | float) and not isinstance(item, bool):
        return float(item), None
    if not isinstance(item, dict) or not isinstance(item.get("value"), int | float):
        raise Rejected("invalid", f"Open mHealth `{key}` needs a value")
    unit = item.get("unit")
    return float(item["value"]), _OMH_UNITS.get(unit, unit) if isinstance(unit, str) else None


def _omh_sample(metric: str, body: dict, start: datetime, end: datetime, at: datetime) -> Sample:
    if metric == "blood_pressure":
        systolic, unit = _omh_value(body, "systolic_blood_pressure")
        diastolic, _ = _omh_value(body, "diastolic_blood_pressure")
        return Sample(at, None, unit, systolic=systolic, diastolic=diastolic)
    key = next(k for name, (m, k) in _OMH.items() if m == metric)
    value, unit = _omh_value(body, key)
    if metric == "sleep":
        return Sample(start, value, unit, end=end if end > start else None)
    return Sample(at, value, unit if metric != "steps" else "count")
