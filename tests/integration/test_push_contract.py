"""What every push provider must do, checked against each one in the provider registry through its local
stand-in: the same neutral outcome (delivered, dead token, rejected message, service down, timeout) must come
back as the same caller-facing meaning, whatever the provider's own vocabulary."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from alerts.push import registry
from alerts.signing import new_secret
from alerts.push.emulator import FcmEmulator
from alerts.push.provider import PushMessage, PushProvider
from app.core.settings import Settings
from tests.receiver import Answer, Receiver

TIMEOUT_S = 0.5
# Neutral outcome -> (ok, retryable, drop_token): what the sender does next depends on exactly these.
CONTRACT = {
    "delivered": (True, False, False),
    "dead_token": (False, False, True),
    "rejected": (False, False, False),
    "unavailable": (False, True, False),
    "timeout": (False, True, False),
}


@contextmanager
def _fcm() -> Iterator[tuple[PushProvider, Callable[[str, str], None]]]:
    behaviour = {"dead_token": "unregistered", "rejected": "invalid_argument", "unavailable": "unavailable",
                 "timeout": "timeout"}
    with FcmEmulator("127.0.0.1", 0, hold_seconds=TIMEOUT_S * 4) as emulator:
        settings = Settings(fcm_endpoint=emulator.url, fcm_project_id="beidou-contract", push_timeout_s=TIMEOUT_S)
        provider = registry.PROVIDERS["fcm"](settings)

        def script(token: str, outcome: str) -> None:
            if outcome != "delivered":
                emulator.set_behaviour(token, behaviour[outcome], times=1)
        try:
            yield provider, script
        finally:
            provider.close()


@contextmanager
def _gateway() -> Iterator[tuple[PushProvider, Callable[[str, str], None]]]:
    answers = {"delivered": Answer(200, {"id": "gw-1"}), "dead_token": Answer(410, {"error": "invalid_token"}),
               "rejected": Answer(400, {"detail": "payload refused"}), "unavailable": Answer(503),
               "timeout": Answer(200, delay_s=TIMEOUT_S * 4)}
    with Receiver([new_secret()]) as gateway:
        settings = Settings(push_gateway_url=gateway.url, push_gateway_secret=gateway.secrets[0],
                            push_timeout_s=TIMEOUT_S)
        provider = registry.PROVIDERS["gateway"](settings)

        def script(token: str, outcome: str) -> None:
            gateway.script(answers[outcome])
        try:
            yield provider, script
        finally:
            provider.close()
        assert all(r.verified_with for r in gateway.received)  # every request carried a valid signature


# Provider name -> its local stand-in: yields the provider built by the registry and a way to script an outcome.
HARNESSES = {"fcm": _fcm, "gateway": _gateway}


def test_every_registered_provider_is_checked_by_the_contract():
    assert set(HARNESSES) == set(registry.PROVIDERS)


def test_nothing_configured_builds_no_provider():
    assert registry.configured(Settings(fcm_endpoint=None, fcm_credentials_file=None, push_gateway_url=None,
                                        push_gateway_secret=None)) == {}


@pytest.mark.parametrize("name", sorted(registry.PROVIDERS))
def test_every_outcome_means_the_same_whatever_the_provider(name):
    answers = {}
    with HARNESSES[name]() as (provider, script):
        assert isinstance(provider, PushProvider) and provider.name == name
        for outcome in CONTRACT:
            token = f"contract-{outcome}"
            script(token, outcome)
            result = provider.send(PushMessage(token=token, title="Check in", body="Please open the app",
                                               data={"alert_id": "a1"}, priority="high", ttl_seconds=600))
            answers[outcome] = (result.ok, result.retryable, result.drop_token)
            assert result.ok == (result.provider_message_id is not None), outcome
            assert result.ok or (result.error_code and result.detail), outcome
    assert answers == CONTRACT
