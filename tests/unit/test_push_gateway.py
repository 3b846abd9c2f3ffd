"""The gateway provider against a local push gateway that answers each case, and the provider contract every
PushProvider keeps (the same checks the FCM provider is held to)."""
from __future__ import annotations

import socket

import pytest

from alerts.push.gateway import GatewayProvider
from alerts.push.provider import PushMessage, PushProvider, SendResult
from alerts.signing import new_secret
from tests.receiver import Answer, Receiver

SECRET = new_secret()


@pytest.fixture
def gateway():
    with Receiver([SECRET]) as receiver:
        yield receiver


@pytest.fixture
def provider(gateway):
    p = GatewayProvider(gateway.url, SECRET, timeout_s=1.0)
    yield p
    p.close()


def message(token: str = "hw-token-1", **kw) -> PushMessage:
    return PushMessage(token=token, title="Checking in", body="Tap to answer.", platform="android",
                       data={"message_id": "m-1", "kind": "check_in"}, collapse_key="alert-1", priority="high",
                       ttl_seconds=3600, **kw)


def test_the_request_is_signed_and_carries_the_message_without_anything_else(gateway, provider):
    gateway.script(Answer(200, {"id": "hms-123"}))
    result = provider.send(message())
    assert result == SendResult.sent("hms-123")
    [request] = gateway.received
    assert request.verified_with == [SECRET]
    assert request.headers["webhook-id"].startswith("push_m-1_")
    body = request.json
    assert body["type"] == "push.send"
    assert body["data"] == {"token": "hw-token-1", "token_kind": "registration", "platform": "android",
                            "title": "Checking in", "body": "Tap to answer.",
                            "data": {"message_id": "m-1", "kind": "check_in"}, "collapse_key": "alert-1",
                            "priority": "high", "ttl_seconds": 3600}


def test_a_retry_of_the_same_message_keeps_its_id_so_the_gateway_can_deduplicate(gateway, provider):
    gateway.script(Answer(503), Answer(202))
    assert provider.send(message()).retryable
    assert provider.send(message()).ok
    first, second = gateway.received
    assert first.id == second.id
    provider.send(message(token="another"))
    assert gateway.received[2].id != first.id


@pytest.mark.parametrize("answer, code, retryable, drop, retry_after", [
    (Answer(200), None, False, False, None),
    (Answer(410), "INVALID_TOKEN", False, True, None),
    (Answer(400, {"error": "invalid_token"}), "INVALID_TOKEN", False, True, None),
    (Answer(404, {"error": "invalid_token", "detail": "unknown to Huawei"}), "INVALID_TOKEN", False, True, None),
    (Answer(429, headers={"Retry-After": "7"}), "HTTP_429", True, False, 7.0),
    (Answer(503, headers={"Retry-After": "30"}), "HTTP_503", True, False, 30.0),
    (Answer(500), "HTTP_500", True, False, None),
    (Answer(400, {"error": "bad_request"}), "HTTP_400", False, False, None),
    (Answer(401), "HTTP_401", False, False, None),
    (Answer(403), "HTTP_403", False, False, None),
])
def test_each_answer_of_the_gateway_maps_to_a_delivery_state(gateway, provider, answer, code, retryable, drop,
                                                              retry_after):
    gateway.script(answer)
    result = provider.send(message())
    assert result.ok is (code is None)
    assert (result.error_code, result.retryable, result.drop_token, result.retry_after) == (
        code, retryable, drop, retry_after)


def test_a_gateway_that_does_not_answer_in_time_is_retried(gateway, provider):
    gateway.script(Answer(200, delay_s=2.5))
    result = provider.send(message())
    assert (result.ok, result.error_code, result.retryable) == (False, "TIMEOUT", True)


def test_a_gateway_that_is_down_is_retried():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = GatewayProvider(f"http://127.0.0.1:{port}/push", SECRET, timeout_s=1.0)
    result = provider.send(message())
    assert (result.ok, result.error_code, result.retryable, result.drop_token) == (False, "UNREACHABLE", True, False)


@pytest.mark.parametrize("url", ["http://gateway.example.com/push", "ftp://127.0.0.1/x", "/relative",
                                 "https://user:pw@gateway.example.com/"])
def test_only_https_or_loopback_http_is_accepted(url):
    with pytest.raises(Exception) as refused:
        GatewayProvider(url, SECRET)
    assert "URL" in str(refused.value) or "https" in str(refused.value)


def test_a_secret_that_is_not_a_standard_webhooks_secret_is_refused():
    with pytest.raises(ValueError):
        GatewayProvider("https://gateway.example.com/push", "not base64 !!")


# --- the provider contract (as for every PushProvider) -------------------------------------------------------

def test_contract_it_is_a_push_provider_named_as_devices_register(provider):
    assert isinstance(provider, PushProvider)
    assert provider.name == "gateway"


def test_contract_every_outcome_is_a_result_never_an_exception(gateway, provider):
    gateway.script(Answer(200), Answer(410), Answer(500), Answer(418), Answer(200, delay_s=2.5))
    for _ in range(5):
        result = provider.send(message())
        assert isinstance(result, SendResult)
        assert not (result.drop_token and result.retryable)
        assert result.ok == (result.error_code is None)


def test_contract_a_data_only_message_is_sent_without_title_or_body(gateway, provider):
    provider.send(PushMessage(token="t", data={"message_id": "m-2"}))
    data = gateway.received[0].json["data"]
    assert (data["title"], data["body"], data["data"]) == (None, None, {"message_id": "m-2"})


def test_contract_logs_never_carry_the_token(gateway, provider, caplog):
    gateway.script(Answer(410))
    with caplog.at_level("DEBUG"):
        provider.send(message(token="secret-token-value"))
    assert "secret-token-value" not in caplog.text
