"""FcmProvider over firebase-admin's real HTTP path, against the FCM emulator on loopback."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import firebase_admin
import google.auth.credentials
import google.auth.exceptions
import pytest
from firebase_admin import credentials

from alerts.push.emulator import FcmEmulator
from alerts.push.fcm import FcmProvider
from alerts.push.provider import PushMessage

CLIENT_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def emulator() -> Iterator[FcmEmulator]:
    with FcmEmulator("127.0.0.1", 0) as fcm:
        yield fcm


@pytest.fixture()
def fcm(emulator: FcmEmulator) -> Iterator[FcmEmulator]:
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture()
def provider(fcm: FcmEmulator) -> Iterator[FcmProvider]:
    with FcmProvider.from_settings("beidou-test", None, fcm.url, timeout=CLIENT_TIMEOUT) as p:
        yield p


def alert(token: str, **overrides) -> PushMessage:
    fields = dict(token=token, title="Check in", body="Please open the app", data={"alert_id": "a1"},
                  collapse_key="alert-a1", priority="high", ttl_seconds=600)
    return PushMessage(**{**fields, **overrides})


def test_success_returns_the_message_id_and_fcm_got_exactly_our_message(provider, fcm):
    before = int(time.time())
    result = provider.send(alert("tok-ok"))
    after = int(time.time())

    assert result.ok and result.error_code is None
    (record,) = fcm.messages(token="tok-ok")
    assert result.provider_message_id == record["name"]
    assert record["name"].startswith("projects/beidou-test/messages/")
    assert record["outcome"] == "delivered" and record["validate_only"] is False
    message = record["message"]
    expiration = int(message["apns"]["headers"].pop("apns-expiration"))
    assert before + 600 <= expiration <= after + 600
    assert message == {
        "token": "tok-ok",
        "notification": {"title": "Check in", "body": "Please open the app"},
        "data": {"alert_id": "a1"},
        "android": {"collapse_key": "alert-a1", "priority": "high", "ttl": "600s"},
        "apns": {"headers": {"apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": "alert-a1"}},
        "webpush": {"headers": {"Urgency": "high", "TTL": "600", "Topic": "alert-a1"}},
    }


def test_installation_ids_travel_as_fid(provider, fcm):
    assert provider.send(alert("fid-1", token_kind="installation")).ok
    (record,) = fcm.messages(token="fid-1")
    assert (record["fid"], record["token"]) == ("fid-1", None)


@pytest.mark.parametrize("behaviour, code, retryable, drop_token", [
    ("unregistered", "UNREGISTERED", False, True),
    ("invalid_argument", "INVALID_ARGUMENT", False, False),
    ("sender_id_mismatch", "SENDER_ID_MISMATCH", False, False),
    ("third_party_auth_error", "THIRD_PARTY_AUTH_ERROR", False, False),
    ("unavailable", "UNAVAILABLE", True, False),
    ("internal", "INTERNAL", True, False),
    ("quota_exceeded", "QUOTA_EXCEEDED", True, False),
])
def test_each_fcm_error_maps_to_what_the_caller_must_do(provider, fcm, behaviour, code, retryable, drop_token):
    fcm.set_behaviour("tok-err", behaviour)
    result = provider.send(alert("tok-err"))
    assert not result.ok
    assert (result.error_code, result.retryable, result.drop_token) == (code, retryable, drop_token)
    assert result.detail


def test_quota_exceeded_carries_retry_after(provider, fcm):
    fcm.set_behaviour("tok-quota", "quota_exceeded", retry_after=7)
    result = provider.send(alert("tok-quota"))
    assert (result.error_code, result.retryable, result.retry_after) == ("QUOTA_EXCEEDED", True, 7.0)


def test_unavailable_with_retry_after_carries_it(provider, fcm):
    fcm.set_behaviour("tok-503", "unavailable", retry_after=3)
    assert provider.send(alert("tok-503")).retry_after == 3.0


def test_unavailable_twice_then_success(provider, fcm):
    fcm.set_behaviour("tok-flaky", "unavailable", times=2)
    results = [provider.send(alert("tok-flaky")) for _ in range(3)]
    assert [(r.ok, r.error_code, r.retryable) for r in results] == [
        (False, "UNAVAILABLE", True), (False, "UNAVAILABLE", True), (True, None, False)]
    # Each of our sends is one request: firebase-admin's own retries are off, so the backoff is ours.
    assert [m["outcome"] for m in fcm.messages(token="tok-flaky")] == ["UNAVAILABLE", "UNAVAILABLE", "delivered"]


@pytest.mark.parametrize("behaviour", ["internal", "unavailable"])
def test_firebase_admin_does_not_retry_behind_our_back(provider, fcm, behaviour):
    # firebase-admin's default would re-send a 500/503 at once and report the success of the second try.
    fcm.set_behaviour("tok-once", behaviour, times=1)
    assert not provider.send(alert("tok-once")).ok
    assert len(fcm.messages(token="tok-once")) == 1


def test_timeout_is_retryable_and_the_post_is_not_resent(provider, fcm):
    fcm.set_behaviour("tok-slow", "timeout", times=1)
    started = time.monotonic()
    result = provider.send(alert("tok-slow"))
    elapsed = time.monotonic() - started
    assert (result.ok, result.error_code, result.retryable, result.drop_token) == (
        False, "DEADLINE_EXCEEDED", True, False)
    assert CLIENT_TIMEOUT <= elapsed < CLIENT_TIMEOUT * 3
    assert len(fcm.messages(token="tok-slow")) == 1
    assert provider.send(alert("tok-slow")).ok   # the pool recovers from the abandoned connection


def test_nothing_listening_is_retryable(fcm):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with FcmProvider.from_settings("beidou-test", None, f"http://127.0.0.1:{port}", timeout=CLIENT_TIMEOUT) as p:
        result = p.send(alert("tok-x"))
    assert (result.error_code, result.retryable, result.retry_after) == ("UNAVAILABLE", True, None)


def test_providers_coexist_each_with_its_own_app(fcm):
    with FcmProvider.from_settings("project-a", None, fcm.url, timeout=CLIENT_TIMEOUT) as a:
        b = FcmProvider.from_settings("project-b", None, fcm.url, timeout=CLIENT_TIMEOUT)
        assert a.app.name != b.app.name
        assert a.send(alert("tok-a")).ok
    assert b.send(alert("tok-b")).ok   # closing one does not disturb the other
    b.close()
    assert [(m["project"], m["token"]) for m in fcm.messages()] == [("project-a", "tok-a"), ("project-b", "tok-b")]


def test_silent_data_only_push(provider, fcm):
    assert provider.send(PushMessage(token="tok-silent", data={"sync": "1"})).ok
    message = fcm.messages(token="tok-silent")[0]["message"]
    assert "notification" not in message
    assert message["apns"]["payload"] == {"aps": {"content-available": 1}}
    assert message["apns"]["headers"]["apns-push-type"] == "background"


class _UnreachableTokenEndpoint(google.auth.credentials.Credentials):
    """A service account whose access token cannot be fetched (Google's token endpoint is unreachable)."""

    def refresh(self, request: object) -> None:
        raise google.auth.exceptions.TransportError("oauth2.googleapis.com unreachable")


class _UnreachableCredential(credentials.Base):
    def get_credential(self) -> google.auth.credentials.Credentials:
        return _UnreachableTokenEndpoint()


def test_an_access_token_that_cannot_be_fetched_is_retryable(fcm):
    app = firebase_admin.initialize_app(_UnreachableCredential(), {"projectId": "beidou-test"},
                                        name=f"no-token-{time.monotonic_ns()}")
    with FcmProvider(app, endpoint=fcm.url) as provider:
        result = provider.send(alert("tok-auth"))
    assert (result.error_code, result.retryable) == ("AUTH_UNAVAILABLE", True)
    assert fcm.messages() == []


def test_a_closed_provider_refuses_to_send(fcm):
    provider = FcmProvider.from_settings("beidou-test", None, fcm.url, timeout=CLIENT_TIMEOUT)
    provider.close()
    provider.close()   # closing twice is harmless
    with pytest.raises(RuntimeError):
        provider.send(alert("tok-closed"))
