"""The emulator refuses what FCM refuses, in FCM's words and shape (no sockets: EmulatorState directly)."""
from __future__ import annotations

import json

import pytest

from alerts.push.emulator import EmulatorState
from alerts.push.fcm_schema import BAD_REQUEST_TYPE, FCM_ERROR_TYPE, validate_send_request

AUTH = "Bearer anything"


def send(state: EmulatorState, body: object, *, auth: str | None = AUTH):
    return state.handle_send("demo", auth, json.dumps(body).encode())


def fields(body: object) -> list[str]:
    return [v.field for v in validate_send_request(body)]


def assert_invalid_argument(reply, field: str) -> None:
    assert reply.status == 400
    error = reply.body["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    fcm_error, bad_request = error["details"]
    assert fcm_error == {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}
    assert bad_request["@type"] == BAD_REQUEST_TYPE
    assert field in [v["field"] for v in bad_request["fieldViolations"]]
    assert error["message"] == bad_request["fieldViolations"][0]["description"]


@pytest.mark.parametrize("message, field", [
    ({"notification": {"title": "t"}}, "message"),                                  # no target
    ({"token": "t", "topic": "news"}, "message.topic"),                             # two targets
    ({"token": "t", "condition": "'a' in topics"}, "message.condition"),
    ({"token": "t", "fid": "f"}, "message.fid"),
    ({"token": "t", "data": {"n": 12}}, "message.data[0].value"),                   # non-string data value
    ({"token": "t", "data": {"a": "1", "b": None}}, "message.data[1].value"),
    ({"token": "t", "android": {"ttl": "3.5"}}, "message.android.ttl"),              # bad ttl: no unit
    ({"token": "t", "android": {"ttl": "-1s"}}, "message.android.ttl"),
    ({"token": "t", "android": {"ttl": 60}}, "message.android.ttl"),                 # must be a string
    ({"token": "t", "android": {"ttl": "2419201s"}}, "message.android.ttl"),         # above four weeks
    ({"token": "t", "android": {"priority": "URGENT"}}, "message.android.priority"),
    ({"token": "t", "colour": "red"}, "message"),                                    # unknown field
    ({"token": 42}, "message.token"),
    ({"token": "t", "notification": {"title": 1}}, "message.notification.title"),
    ({"token": "t", "apns": {"payload": "x"}}, "message.apns.payload"),
    ({"token": "t", "fcm_options": {"analytics_label": "has space"}}, "message.fcm_options.analytics_label"),
    ({"token": "t", "data": {"google.sent_time": "1"}}, "message.data"),             # reserved key
    ({"token": "t", "data": {"from": "me"}}, "message.data"),
    ({"token": "t", "data": {"k": "x" * 4096}}, "message"),                          # too big
    ({"topic": "a/b"}, "message.topic"),
])
def test_bad_messages_are_invalid_argument(message, field):
    assert field in fields({"message": message})
    assert_invalid_argument(send(EmulatorState(), {"message": message}), field)


def test_every_bad_field_is_reported_not_only_the_first():
    assert fields({"message": {"token": "t", "data": {"a": 1, "b": 2}}}) == [
        "message.data[0].value", "message.data[1].value"]


def test_body_must_hold_a_message():
    assert fields({}) == ["message"]
    assert fields([]) == [""]
    assert fields({"validate_only": "yes", "message": {"token": "t"}}) == ["validate_only"]
    reply = EmulatorState().handle_send("demo", AUTH, b"{not json")
    assert reply.status == 400 and reply.body["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("message", [
    {"token": "t"},
    {"fid": "installation-id"},
    {"topic": "news"},
    {"condition": "'news' in topics && 'health' in topics"},
    {"token": "t", "android": {"ttl": "3.5s", "priority": "high", "collapse_key": "c"}},  # firebase-admin's case
    {"token": "t", "android": {"ttl": "0s", "priority": "NORMAL"}},
    {"token": "t", "android": {"collapseKey": "c", "notification": {"notificationCount": 3}}},  # lowerCamelCase
    {"token": "t", "android": {"notification": {"color": "#ff0000", "vibrate_timings": ["0.5s", "1s"],
                                                "event_time": "2024-01-01T00:00:00.000000Z"}}},
    {"token": "t", "data": {"collapse_key": "allowed; FCM overrides it"}},
    {"token": "t", "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}}},
    {"token": "t", "webpush": {"headers": {"TTL": "60"}, "notification": {"title": "x", "actions": []}}},
    {"token": "t", "fcm_options": {"analytics_label": "alerts.v1"}},
])
def test_good_messages_pass(message):
    assert validate_send_request({"message": message}) == []
    reply = send(EmulatorState(), {"message": message})
    assert reply.status == 200 and reply.body["name"].startswith("projects/demo/messages/")


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer   ", "Basic abc"])
def test_a_bearer_token_is_required(auth):
    reply = send(EmulatorState(), {"message": {"token": "t"}}, auth=auth)
    assert reply.status == 401
    assert reply.body["error"]["status"] == "UNAUTHENTICATED"


def test_validate_only_checks_without_delivering():
    state = EmulatorState()
    reply = send(state, {"validate_only": True, "message": {"token": "t"}})
    assert reply.body == {"name": "projects/demo/messages/fake_message_id"}
    assert [m["outcome"] for m in state.messages()] == ["validated"]


@pytest.mark.parametrize("behaviour, status, rpc_status, error_code", [
    ("unregistered", 404, "NOT_FOUND", "UNREGISTERED"),
    ("invalid_argument", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
    ("quota_exceeded", 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    ("unavailable", 503, "UNAVAILABLE", "UNAVAILABLE"),
    ("internal", 500, "INTERNAL", "INTERNAL"),
    ("sender_id_mismatch", 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    ("third_party_auth_error", 401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
])
def test_scripted_errors_use_fcms_shape(behaviour, status, rpc_status, error_code):
    state = EmulatorState()
    state.set_behaviour("t", behaviour)
    reply = send(state, {"message": {"token": "t"}})
    assert reply.status == status
    error = reply.body["error"]
    assert (error["code"], error["status"]) == (status, rpc_status)
    assert error["details"] == [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}]
    assert state.messages("t")[0]["outcome"] == error_code


def test_quota_exceeded_always_says_when_to_come_back():
    state = EmulatorState()
    state.set_behaviour("a", "quota_exceeded")
    state.set_behaviour("b", "quota_exceeded", retry_after=7)
    state.set_behaviour("c", "unavailable", retry_after=2.5)
    state.set_behaviour("d", "unavailable")
    headers = {t: send(state, {"message": {"token": t}}).headers for t in "abcd"}
    assert headers == {"a": {"Retry-After": "60"}, "b": {"Retry-After": "7"}, "c": {"Retry-After": "2.5"}, "d": {}}


def test_times_limits_a_behaviour_then_the_token_succeeds():
    state = EmulatorState()
    state.set_behaviour("t", "unavailable", times=2)
    statuses = [send(state, {"message": {"token": "t"}}).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [m["outcome"] for m in state.messages("t")] == ["UNAVAILABLE", "UNAVAILABLE", "delivered"]
    assert state.behaviours() == {}


def test_behaviours_are_per_token_or_installation_id():
    state = EmulatorState()
    state.set_behaviour("dead", "unregistered")
    state.set_behaviour("dead-fid", "unregistered")
    assert send(state, {"message": {"token": "alive"}}).status == 200
    assert send(state, {"message": {"token": "dead"}}).status == 404
    assert send(state, {"message": {"fid": "dead-fid"}}).status == 404
    assert [m["fid"] for m in state.messages("dead-fid")] == ["dead-fid"]


def test_timeout_holds_then_accepts():
    state = EmulatorState(hold_seconds=12)
    state.set_behaviour("slow", "timeout", times=1)
    reply = send(state, {"message": {"token": "slow"}})
    assert (reply.status, reply.hold_seconds) == (200, 12)
    assert state.messages("slow")[0]["outcome"] == "timeout"
    assert send(state, {"message": {"token": "slow"}}).hold_seconds == 0


@pytest.mark.parametrize("kwargs", [
    {"behaviour": "explode"}, {"behaviour": "unavailable", "times": 0}, {"behaviour": "unavailable", "times": "2"},
    {"behaviour": "quota_exceeded", "retry_after": -1},
])
def test_nonsense_behaviours_are_refused(kwargs):
    with pytest.raises(ValueError):
        EmulatorState().set_behaviour("t", **kwargs)


def test_the_record_keeps_the_exact_message_and_can_be_cleared():
    state = EmulatorState()
    message = {"token": "t", "data": {"alert_id": "a1"}, "android": {"collapse_key": "alert-a1"}}
    send(state, {"message": message})
    (record,) = state.messages()
    assert record["message"] == message and record["project"] == "demo" and record["token"] == "t"
    record["message"]["data"]["alert_id"] = "changed"   # a copy: the emulator's record is unaffected
    assert state.messages()[0]["message"] == message
    assert state.clear_messages() == 1 and state.messages() == []
