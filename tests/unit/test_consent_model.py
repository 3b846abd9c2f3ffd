"""The consent centre's pure parts: catalogue texts, receipts, FHIR shapes, profile checks, the erasure registry."""
from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from consent import fhir, profile
from consent.catalog import DATA_TYPES, LANGUAGES, NEEDS, PURPOSES, describe
from consent.erasure import PERSONAL_DATA
from consent.people import PersonFacts
from consent.receipts import receipt_for
from consent.repository import ConsentEvent, CurrentConsent
from consent.service import ConsentChange, is_minor

PERSON = uuid.UUID("7d4a3f0e-0000-4000-8000-000000000001")
AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def event(**changes) -> ConsentEvent:
    base = ConsentEvent(id=42, person_id=PERSON, data_type="heart_rate", purpose="monitoring", action="grant",
                        notice_version="2026-03", app="ios/4.2", actor="self", valid_until=None, created_at=AT,
                        tenant_id=uuid.UUID(int=7))
    return replace(base, **changes)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_data_type_and_purpose_is_described_in_every_language(language):
    texts = {describe(d, p, language) for d in DATA_TYPES for p in PURPOSES}
    assert len(texts) == len(DATA_TYPES) * len(PURPOSES)
    assert all("{" not in t for t in texts)


def test_an_unknown_language_falls_back_to_english():
    assert describe("steps", "research", "fr") == describe("steps", "research", "en")


def test_only_monitoring_stands_on_its_own():
    assert NEEDS == {"monitoring": (), "outreach": ("monitoring",), "research": ("monitoring",)}


def test_a_receipt_is_stable_and_changes_with_any_field():
    first = receipt_for(event())
    assert receipt_for(event()).receipt_id == first.receipt_id
    assert re.fullmatch(r"cr-42-[0-9a-f]{24}", first.receipt_id)
    # The same instant written in another offset is the same event.
    assert receipt_for(event(created_at=AT.astimezone(timezone.utc))).receipt_id == first.receipt_id
    for change in ({"notice_version": "2026-04"}, {"action": "withdraw"}, {"purpose": "research"},
                   {"valid_until": AT + timedelta(days=1)}, {"actor": "guardian"}):
        assert receipt_for(event(**change)).fingerprint != first.fingerprint


def test_the_notify_payload_round_trips():
    change = ConsentChange.parse(f"{uuid.UUID(int=7)}|{PERSON}|steps|outreach|0")
    assert (change.person_id, change.data_type, change.purpose, change.granted) == (
        str(PERSON), "steps", "outreach", False)


def current(granted: bool, recorded: bool, valid_until=None) -> CurrentConsent:
    return CurrentConsent(data_type="spo2", purpose="research", granted=granted, recorded_granted=recorded,
                          valid_until=valid_until, updated_at=AT, event_id=9, notice_version="v1", app=None,
                          actor="self", actor_person_id=None)


@pytest.mark.parametrize(("granted", "recorded", "status", "kind", "rule"), [
    (True, True, "active", "permit", "OPTIN"),
    (False, False, "inactive", "deny", "OPTOUT"),
    (False, True, "inactive", "permit", "OPTIN"),  # past its valid_until
])
def test_consent_resources_say_whether_they_are_in_force(granted, recorded, status, kind, rule):
    resource = fhir.consent(current(granted, recorded, AT + timedelta(days=1)), person_id=PERSON)
    assert (resource["status"], resource["provision"]["type"]) == (status, kind)
    assert resource["policyRule"]["coding"][0]["code"] == rule
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["patient"] == {"reference": f"urn:uuid:{PERSON}"}
    assert [c["code"] for c in resource["provision"]["purpose"]] == ["research", "HRESCH"]
    assert resource["provision"]["class"][0]["code"] == "spo2"
    assert resource["policy"] == [{"uri": "urn:health-beidou:notice:v1"}]
    assert ("end" in resource["provision"]["period"]) is recorded


def test_every_data_type_has_a_loinc_code_and_a_ucum_unit():
    assert set(fhir.OBSERVATION_CODES) == set(DATA_TYPES)


def test_a_blood_pressure_reading_is_a_panel_with_systolic_and_diastolic_components():
    obs = fhir.observation(PERSON, time=AT, metric="blood_pressure", value=121, value2=79, details=None,
                           source="cuff", utc_offset_min=480)
    assert obs["code"]["coding"][0]["code"] == "85354-9" and "valueQuantity" not in obs
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in obs["component"]] == [
        ("8480-6", 121), ("8462-4", 79)]
    assert obs["effectiveDateTime"] == "2026-11-25T08:00:00+08:00"
    again = fhir.observation(PERSON, time=AT.astimezone(timezone.utc), metric="blood_pressure", value=121,
                             value2=79, details=None, source="cuff", utc_offset_min=480)
    assert again["id"] == obs["id"]  # derived from the natural key


def test_a_sleep_session_is_a_period():
    end = (AT + timedelta(hours=7)).astimezone(timezone.utc).isoformat()
    obs = fhir.observation(PERSON, time=AT, metric="sleep", value=400, value2=None,
                           details={"end": end, "stages": {"deep": 80}}, source="watch", utc_offset_min=480)
    assert obs["effectivePeriod"] == {"start": AT.isoformat(), "end": end}
    assert obs["valueQuantity"] == {"value": 400, "unit": "min", "system": fhir.UCUM, "code": "min"}


@pytest.mark.parametrize("name", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_iana_time_zones_are_accepted(name):
    assert profile.check_time_zone(name) == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "+08:00", "../../etc/passwd"])
def test_anything_else_is_not_a_time_zone(name):
    with pytest.raises(profile.InvalidProfile):
        profile.check_time_zone(name)


def test_birth_dates_must_be_plausible():
    today = date(2026, 11, 25)
    assert profile.check_birth_date(date(2014, 1, 1), today=today) == date(2014, 1, 1)
    for bad in (date(2026, 11, 26), date(1899, 12, 31)):
        with pytest.raises(profile.InvalidProfile):
            profile.check_birth_date(bad, today=today)


@pytest.mark.parametrize(("age", "minor"), [(None, False), (0, True), (13, True), (14, False), (40, False)])
def test_who_counts_as_a_minor(age, minor):
    person = PersonFacts(id=PERSON, tenant_id=uuid.UUID(int=7), external_id="x", time_zone="UTC", language="en",
                         birth_date=None, erased_at=None, created_at=AT, age=age)
    assert is_minor(person) is minor


def test_the_erasure_registry_keeps_only_the_consent_record_and_names_each_export_once():
    assert {t.table for t in PERSONAL_DATA if not t.erase} == {"consent_events", "consent_state"}
    names = [t.name for t in PERSONAL_DATA]
    assert len(names) == len(set(names))
    assert {"readings", "sources", "guardianships_as_guardian", "guardianships_as_minor"} <= set(names)
