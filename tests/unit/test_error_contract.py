"""One error contract: every refusal carries a status and a stable code, rendered the same over HTTP and WebSocket."""
from __future__ import annotations

import json

import pytest
from starlette.exceptions import HTTPException

from app.api import problems
from app.core import channels
from app.core.errors import BeidouError, DatabaseUnavailable, Forbidden, Invalid, NotFound, TooLarge, Unauthorized
from consent import erasure, guardians, profile, service


@pytest.mark.parametrize("error, status, code", [
    (service.UnknownConsentTarget("unknown data type 'mood'"), 404, "unknown_consent_target"),
    (service.InvalidConsent("valid_until is in the past"), 422, "invalid_consent"),
    (profile.InvalidProfile("birth_date is in the future"), 422, "invalid_profile"),
    (guardians.InvalidGuardianship("a person cannot be their own guardian"), 422, "invalid_guardianship"),
    (service.GuardianRequired("ask your guardian"), 403, "guardian_required"),
    (service.PersonErased("erased"), 410, "erased"),
    (profile.BirthDateLocked("set by the insurer"), 409, "birth_date_locked"),
    (erasure.ErasureBlocked("a table is missing"), 500, "erasure_blocked"),
    (TooLarge("frame too large", code="frame_too_large"), 413, "frame_too_large"),
])
def test_domain_errors_answer_with_their_status_and_code(error, status, code):
    response = problems.problem_response(error)
    assert (response.status_code, json.loads(response.body)) == (status, {"detail": str(error), "code": code})


def test_consent_errors_are_no_longer_value_errors():
    # A bare `except ValueError` somewhere would otherwise swallow them before the handler sees them.
    for cls in (service.UnknownConsentTarget, service.InvalidConsent, profile.InvalidProfile,
                guardians.InvalidGuardianship):
        assert issubclass(cls, BeidouError) and not issubclass(cls, ValueError)


def test_a_401_says_how_to_authenticate_and_a_503_when_to_retry():
    assert problems.problem_response(Unauthorized("expired")).headers["WWW-Authenticate"] == "Bearer"
    outage = problems.problem_response(DatabaseUnavailable("timeout"))
    assert outage.status_code == 503 and outage.headers["Retry-After"] == "5"
    assert json.loads(outage.body)["code"] == "unavailable"


def test_a_websocket_error_frame_carries_the_same_detail_and_code_as_http():
    outage = DatabaseUnavailable("timeout")
    frame = problems.error_frame(outage, 7)
    assert frame == {"type": "error", "seq": 7, **json.loads(problems.problem_response(outage).body),
                     "retry_after": 5}


@pytest.mark.parametrize("status, code", [(404, "not_found"), (405, "method_not_allowed"), (400, "bad_request"),
                                          (418, "error")])
def test_framework_refusals_get_a_code_from_their_status(status, code):
    response = problems.http_exception_response(HTTPException(status, detail="x"))
    assert (response.status_code, json.loads(response.body)) == (status, {"detail": "x", "code": code})


def test_an_error_class_may_declare_status_and_code_either_way():
    class Keyword(Forbidden, code="keyword"):
        pass

    class Attribute(NotFound):
        code = "attribute"

    assert (Keyword.status, Keyword.code, Attribute.status, Attribute.code) == (403, "keyword", 404, "attribute")
    assert Invalid().detail == "invalid"  # no message: the code in words


def test_every_channel_has_its_own_name_and_round_trips_its_payload():
    assert len({c.name for c in channels.ALL}) == len(channels.ALL)
    import uuid
    t, p = uuid.uuid4(), uuid.uuid4()
    samples = {channels.INGEST: t, channels.ANOMALY: t, channels.OUTBOX: t, channels.FEEDBACK: (t, p),
               channels.CONSENT: channels.ConsentChange(str(t), str(p), "spo2", "monitoring", True),
               channels.ALERTS: channels.AlertChange(str(t), str(p), "opened")}
    assert set(samples) == set(channels.ALL)
    for channel, value in samples.items():
        assert channel.decode(channel.encode(value)) == value


def test_senders_that_still_name_their_channel_themselves_use_the_registered_names():
    from alerts.repository import ALERT_CHANNEL
    from streaming.ingest import INGEST_CHANNEL
    from streaming.repository import ANOMALY_CHANNEL
    assert (INGEST_CHANNEL, ANOMALY_CHANNEL, ALERT_CHANNEL) == (
        channels.INGEST.name, channels.ANOMALY.name, channels.ALERTS.name)
