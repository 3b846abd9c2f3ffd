"""The provider port: message rules, result invariants, the fake, and PushMessage -> FCM mapping."""
from __future__ import annotations

import pytest
import requests
from firebase_admin import exceptions

from alerts.push.fcm import FcmProvider, result_from_error, to_fcm_message
from alerts.push.provider import FakeProvider, PushMessage, PushProvider, SendResult


@pytest.mark.parametrize("kwargs", [
    {"token": ""},
    {"token": "t", "data": {"n": 1}},
    {"token": "t", "data": {1: "x"}},
    {"token": "t", "priority": "urgent"},
    {"token": "t", "ttl_seconds": -1},
    {"token": "t", "ttl_seconds": 28 * 24 * 3600 + 1},
    {"token": "t", "ttl_seconds": 1.5},
    {"token": "t", "collapse_key": "x" * 65},
    {"token": "t", "collapse_key": ""},
    {"token": "t", "platform": "symbian"},
    {"token": "t", "title": 5},
    {"token": "t", "token_kind": "imei"},
])
def test_push_message_refuses_what_no_provider_would_accept(kwargs):
    with pytest.raises(ValueError):
        PushMessage(**kwargs)


def test_push_message_keeps_its_own_copy_of_data():
    data = {"alert_id": "a1"}
    msg = PushMessage(token="t", data=data)
    data["alert_id"] = "changed"
    assert msg.data == {"alert_id": "a1"}


def test_send_result_invariants():
    assert SendResult.sent("id-1").ok
    with pytest.raises(ValueError):
        SendResult(ok=True, error_code="X")
    with pytest.raises(ValueError):
        SendResult.failed("UNREGISTERED", retryable=True, drop_token=True)


def test_providers_satisfy_the_port():
    assert isinstance(FakeProvider(), PushProvider)
    assert isinstance(FcmProvider.__new__(FcmProvider), PushProvider)


def test_fake_provider_records_and_answers_from_its_script():
    fake = FakeProvider([SendResult.failed("UNAVAILABLE", retryable=True)])
    fake.script_for("dead", SendResult.failed("UNREGISTERED", retryable=False, drop_token=True))
    assert fake.send(PushMessage(token="a")).error_code == "UNAVAILABLE"
    assert fake.send(PushMessage(token="dead")).drop_token
    assert fake.send(PushMessage(token="a")) == SendResult.sent("fake-3")
    assert [m.token for m in fake.sent] == ["a", "dead", "a"]


def test_mapping_puts_each_field_where_fcm_expects_it():
    msg = PushMessage(token="tok", title="Check in", body="Please open the app", data={"alert_id": "a1"},
                      collapse_key="alert-a1", priority="high", ttl_seconds=600)
    m = to_fcm_message(msg, now=1_700_000_000)
    assert m.token == "tok"
    assert (m.notification.title, m.notification.body) == ("Check in", "Please open the app")
    assert m.data == {"alert_id": "a1"}
    assert (m.android.collapse_key, m.android.priority, m.android.ttl) == ("alert-a1", "high", 600)
    assert m.apns.headers == {"apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": "alert-a1",
                              "apns-expiration": "1700000600"}
    assert m.apns.payload is None
    assert m.webpush.headers == {"Urgency": "high", "TTL": "600", "Topic": "alert-a1"}


def test_data_only_messages_are_background_pushes_on_ios():
    m = to_fcm_message(PushMessage(token="tok", data={"sync": "1"}, priority="high", ttl_seconds=0))
    assert m.notification is None
    assert m.apns.headers["apns-priority"] == "5"            # APNs refuses 10 for background pushes
    assert m.apns.headers["apns-push-type"] == "background"
    assert m.apns.headers["apns-expiration"] == "0"          # "now or never", as FCM's ttl 0
    assert m.apns.payload.aps.content_available is True


def test_collapse_keys_webpush_cannot_carry_are_left_out_of_its_topic():
    m = to_fcm_message(PushMessage(token="tok", title="x", collapse_key="alert:a1"))
    assert "Topic" not in m.webpush.headers
    assert m.android.collapse_key == m.apns.headers["apns-collapse-id"] == "alert:a1"


def _response(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


def test_unclassified_errors_retry_only_when_the_server_or_network_failed():
    no_response = result_from_error(exceptions.UnknownError("connection dropped mid-response"))
    assert no_response.retryable and no_response.error_code == "UNKNOWN"
    bad_gateway = result_from_error(exceptions.UnknownError("502", http_response=_response(502)))
    assert bad_gateway.retryable
    conflict = result_from_error(exceptions.AbortedError("conflict", http_response=_response(409)))
    assert (conflict.error_code, conflict.retryable, conflict.drop_token) == ("ABORTED", False, False)


def test_installation_ids_are_sent_as_fid_and_registration_tokens_as_token():
    fid = to_fcm_message(PushMessage(token="fid-1", title="x", token_kind="installation"))
    assert (fid.fid, fid.token) == ("fid-1", None)
    tok = to_fcm_message(PushMessage(token="tok-1", title="x"))
    assert (tok.fid, tok.token) == (None, "tok-1")


def test_mapping_a_registration_token_does_not_warn(recwarn):
    to_fcm_message(PushMessage(token="tok-1", title="x"))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
