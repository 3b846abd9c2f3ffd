"""The emulator over real HTTP: FCM's endpoint for raw clients, and the control API tests and demos script."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from alerts.push.emulator import FcmEmulator
from alerts.push.fcm_schema import FCM_ERROR_TYPE


@pytest.fixture()
def fcm() -> Iterator[FcmEmulator]:
    with FcmEmulator() as emulator:
        yield emulator


def call(method: str, url: str, body: object | None = None, *, auth: str | None = "Bearer t"):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def send_url(fcm: FcmEmulator, project: str = "demo") -> str:
    return f"{fcm.url}/v1/projects/{project}/messages:send"


def test_a_raw_client_gets_fcms_answers(fcm):
    status, headers, body = call("POST", send_url(fcm), {"message": {"token": "t", "data": {"n": 1}}})
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["details"][0] == {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}

    assert call("POST", send_url(fcm), {"message": {"token": "t"}}, auth=None)[0] == 401
    status, _, body = call("POST", send_url(fcm), {"message": {"token": "t"}})
    assert status == 200 and body["name"].startswith("projects/demo/messages/")


def test_the_control_api_scripts_a_token(fcm):
    status, _, body = call("PUT", f"{fcm.url}/emulator/tokens/tok%3A1",
                           {"behaviour": "quota_exceeded", "times": 1, "retry_after": 7})
    assert status == 200 and body["token"] == "tok:1" and body["times"] == 1
    assert call("GET", f"{fcm.url}/emulator/tokens")[2]["tokens"]["tok:1"]["behaviour"] == "quota_exceeded"

    status, headers, body = call("POST", send_url(fcm), {"message": {"token": "tok:1"}})
    assert (status, headers["Retry-After"], body["error"]["details"][0]["errorCode"]) == (429, "7", "QUOTA_EXCEEDED")
    assert call("POST", send_url(fcm), {"message": {"token": "tok:1"}})[0] == 200

    _, _, body = call("GET", f"{fcm.url}/emulator/messages?token=tok%3A1")
    assert [m["outcome"] for m in body["messages"]] == ["QUOTA_EXCEEDED", "delivered"]
    assert call("DELETE", f"{fcm.url}/emulator/messages")[2] == {"deleted": 2}
    assert call("GET", f"{fcm.url}/emulator/messages")[2] == {"messages": []}


def test_the_control_api_resets_tokens(fcm):
    call("PUT", f"{fcm.url}/emulator/tokens/a", {"behaviour": "unregistered"})
    call("PUT", f"{fcm.url}/emulator/tokens/b", {"behaviour": "unregistered"})
    call("DELETE", f"{fcm.url}/emulator/tokens/a")
    assert list(call("GET", f"{fcm.url}/emulator/tokens")[2]["tokens"]) == ["b"]
    call("DELETE", f"{fcm.url}/emulator/tokens")
    assert call("GET", f"{fcm.url}/emulator/tokens")[2]["tokens"] == {}


@pytest.mark.parametrize("spec", [{"behaviour": "explode"}, {"behaviour": "unavailable", "times": -1}, ["x"]])
def test_the_control_api_refuses_nonsense(fcm, spec):
    status, _, body = call("PUT", f"{fcm.url}/emulator/tokens/t", spec)
    assert status == 400 and body["error"]


def test_unknown_routes_are_404(fcm):
    assert call("GET", f"{fcm.url}/v1/projects/demo/messages:send")[0] == 404
    assert call("POST", f"{fcm.url}/v1/projects/demo/messages:batchSend", {})[0] == 404


def test_stopping_releases_a_held_request_at_once():
    fcm = FcmEmulator(hold_seconds=60).start()
    fcm.set_behaviour("slow", "timeout")
    answers: list[int] = []

    def send_slowly() -> None:
        answers.append(call("POST", send_url(fcm), {"message": {"token": "slow"}})[0])

    worker = threading.Thread(target=send_slowly)
    worker.start()
    while not fcm.messages("slow"):
        time.sleep(0.01)
    started = time.monotonic()
    fcm.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 2 and answers == [200]
