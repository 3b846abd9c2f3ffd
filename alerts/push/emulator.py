"""A local stand-in for FCM HTTP v1, for tests, the demo and laptops without Google.

It serves ``POST /v1/projects/{project}/messages:send`` the way Google documents it: the request body is
checked against the v1 ``Message`` resource (unknown fields, wrong JSON types, exactly one target, string-only
``data``, Duration-formatted ``ttl``, enum values, FCM's documented limits), and the answers use Google's
error shape, including the ``google.firebase.fcm.v1.FcmError`` detail firebase-admin reads to pick its
exception class. Any non-empty ``Authorization: Bearer`` token is accepted.

A device is addressed by ``token`` (a registration token) or ``fid`` (a Firebase installation ID, which
firebase-admin 7.7 prefers and FCM added as a target); below, "token" means either.

Everything received is kept for inspection, and each token can be told how to answer, from Python
(:class:`FcmEmulator`) or over HTTP on the same port::

    GET    /emulator/messages[?token=T]     what was received, oldest first
    DELETE /emulator/messages               forget it
    GET    /emulator/tokens                 the scripted behaviours
    PUT    /emulator/tokens/{token}         {"behaviour": "unavailable", "times": 2, "retry_after": 7}
    DELETE /emulator/tokens[/{token}]       back to answering with success

``times`` limits a behaviour to the next N sends (then the token succeeds again); ``timeout`` holds the
request for ``hold_seconds`` (longer than any sane client timeout) and then accepts it, which is what a slow
FCM looks like: the client gave up, yet the message may have gone out.

Only the standard library is used, so the ``alerts`` package stays free of web frameworks.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from alerts.push.fcm_schema import (  # noqa: E402
    google_error,
    invalid_argument_body,
    validate_send_request,
)

log = logging.getLogger(__name__)

DEFAULT_HOLD_SECONDS = 30.0
DEFAULT_QUOTA_RETRY_AFTER = 60
MAX_BODY_BYTES = 1 << 20

# behaviour -> (HTTP status, google.rpc status, FcmError errorCode, message), as FCM answers each case.
ERROR_BEHAVIOURS: dict[str, tuple[int, str, str, str]] = {
    "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    "invalid_argument": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                         "The registration token is not a valid FCM registration token"),
    "quota_exceeded": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
                       "Quota exceeded for quota metric 'Send requests' of service 'fcm.googleapis.com'."),
    "unavailable": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    "internal": (500, "INTERNAL", "INTERNAL", "Internal error encountered."),
    "sender_id_mismatch": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    "third_party_auth_error": (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR",
                               "Auth error from APNS or Web Push Service"),
}
BEHAVIOURS = frozenset({"success", "timeout", *ERROR_BEHAVIOURS})

_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_TOKEN_PATH = re.compile(r"^/emulator/tokens/(?P<token>.+)$")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer; ``hold_seconds`` delays it (the ``timeout`` behaviour)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0


@dataclass
class Behaviour:
    behaviour: str
    times: int | None = None
    retry_after: float | None = None
    hold_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"behaviour": self.behaviour, "times": self.times, "retry_after": self.retry_after,
                "hold_seconds": self.hold_seconds}


class EmulatorState:
    """What the emulator received and how each token should answer. Thread-safe; no sockets, so the HTTP
    semantics can be tested directly."""

    def __init__(self, *, hold_seconds: float = DEFAULT_HOLD_SECONDS):
        self.hold_seconds = hold_seconds
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._behaviours: dict[str, Behaviour] = {}

    # --- control -------------------------------------------------------------------------------------
    def set_behaviour(self, token: str, behaviour: str, times: int | None = None,
                      retry_after: float | None = None, hold_seconds: float | None = None) -> Behaviour:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; one of {sorted(BEHAVIOURS)}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer or null")
        for name, value in (("retry_after", retry_after), ("hold_seconds", hold_seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a non-negative number or null")
        scripted = Behaviour(behaviour, times, retry_after, hold_seconds)
        with self._lock:
            if behaviour == "success" and times is None:
                self._behaviours.pop(token, None)
            else:
                self._behaviours[token] = scripted
        log.info("push.emulator.behaviour_set behaviour=%s times=%s", behaviour, times)
        return scripted

    def clear_behaviours(self, token: str | None = None) -> None:
        with self._lock:
            if token is None:
                self._behaviours.clear()
            else:
                self._behaviours.pop(token, None)

    def behaviours(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {token: b.as_dict() for token, b in self._behaviours.items()}

    def messages(self, token: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records if token is None or token in (r["token"], r["fid"])]

    def clear_messages(self) -> int:
        with self._lock:
            count = len(self._records)
            self._records.clear()
            return count

    # --- the FCM endpoint ----------------------------------------------------------------------------
    def handle_send(self, project: str, authorization: str | None, raw_body: bytes) -> Reply:
        """Answer one ``messages:send`` request as FCM would."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return Reply(401, google_error(
                401, "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential."))
        try:
            body = json.loads(raw_body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            return Reply(400, google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}"))
        violations = validate_send_request(body)
        message = body.get("message") if isinstance(body, dict) else None
        message = message if isinstance(message, dict) else {}
        validate_only = isinstance(body, dict) and body.get("validate_only", body.get("validateOnly")) is True
        token = next((message[k] for k in ("token", "fid") if isinstance(message.get(k), str)), None)
        if violations:
            self._record(project, message, validate_only, "INVALID_ARGUMENT", None)
            return Reply(400, invalid_argument_body(violations))
        scripted = self._take_behaviour(token)
        if scripted is None or scripted.behaviour in ("success", "timeout"):
            name = f"projects/{project}/messages/" + (
                "fake_message_id" if validate_only else f"0:{int(time.time() * 1000)}%{secrets.token_hex(8)}")
            if scripted is not None and scripted.behaviour == "timeout":
                self._record(project, message, validate_only, "timeout", name)
                hold = scripted.hold_seconds if scripted.hold_seconds is not None else self.hold_seconds
                return Reply(200, {"name": name}, hold_seconds=hold)
            self._record(project, message, validate_only, "validated" if validate_only else "delivered", name)
            return Reply(200, {"name": name})
        http_status, status, error_code, text = ERROR_BEHAVIOURS[scripted.behaviour]
        self._record(project, message, validate_only, error_code, None)
        retry_after = scripted.retry_after
        if retry_after is None and scripted.behaviour == "quota_exceeded":
            retry_after = DEFAULT_QUOTA_RETRY_AFTER
        headers = {"Retry-After": _seconds_text(retry_after)} if retry_after is not None else {}
        return Reply(http_status, google_error(http_status, status, text, fcm_error_code=error_code), headers)

    def _take_behaviour(self, token: str | None) -> Behaviour | None:
        if token is None:
            return None
        with self._lock:
            scripted = self._behaviours.get(token)
            if scripted is None:
                return None
            if scripted.times is not None:
                scripted.times -= 1
                if scripted.times <= 0:
                    del self._behaviours[token]
            return copy.copy(scripted)

    def _record(self, project: str, message: dict[str, Any], validate_only: bool, outcome: str,
                name: str | None) -> None:
        record = {
            "name": name, "project": project, "token": message.get("token"), "fid": message.get("fid"),
            "topic": message.get("topic"), "condition": message.get("condition"),
            "validate_only": validate_only, "outcome": outcome, "message": copy.deepcopy(message),
            "received_at": datetime.now(timezone.utc).isoformat(),
        }
        with self._lock:
            self._records.append(record)
        log.debug("push.emulator.received outcome=%s validate_only=%s", outcome, validate_only)


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class _Handler(BaseHTTPRequestHandler):
    """Routes HTTP to :class:`EmulatorState`. HTTP/1.1 keep-alive, because firebase-admin pools connections."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus delayed ACKs add ~40 ms
    # to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        match = _SEND_PATH.match(path)
        if not match:
            return self._not_found()
        raw = self._read_body()
        if raw is None:
            too_big = google_error(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit")
            return self._send(Reply(400, too_big))
        reply = self.server.state.handle_send(unquote(match["project"]), self.headers.get("Authorization"), raw)
        if reply.hold_seconds:
            # Waits on the stop event, so stopping the emulator releases held requests at once.
            self.server.stopping.wait(reply.hold_seconds)
        self._send(reply)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        state = self.server.state
        if parts.path == "/emulator/messages":
            token = parse_qs(parts.query).get("token", [None])[0]
            return self._send(Reply(200, {"messages": state.messages(token)}))
        if parts.path == "/emulator/tokens":
            return self._send(Reply(200, {"tokens": state.behaviours()}))
        self._not_found()

    def do_PUT(self) -> None:
        match = _TOKEN_PATH.match(urlsplit(self.path).path)
        if not match:
            return self._not_found()
        raw = self._read_body() or b""
        try:
            spec = json.loads(raw or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            scripted = self.server.state.set_behaviour(
                unquote(match["token"]), spec.get("behaviour", ""), spec.get("times"),
                spec.get("retry_after"), spec.get("hold_seconds"))
        except ValueError as exc:
            return self._send(Reply(400, {"error": str(exc)}))
        self._send(Reply(200, {"token": unquote(match["token"]), **scripted.as_dict()}))

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/emulator/messages":
            return self._send(Reply(200, {"deleted": state.clear_messages()}))
        if path == "/emulator/tokens":
            state.clear_behaviours()
            return self._send(Reply(200, {}))
        match = _TOKEN_PATH.match(path)
        if match:
            state.clear_behaviours(unquote(match["token"]))
            return self._send(Reply(200, {}))
        self._not_found()

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _not_found(self) -> None:
        self._send(Reply(404, google_error(404, "NOT_FOUND", f"No route for {self.command} {self.path}")))

    def _send(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (the point of the timeout behaviour); nothing to tell it.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("push.emulator.http " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: EmulatorState):
        self.state = state
        self.stopping = threading.Event()
        super().__init__(address, _Handler)


class FcmEmulator:
    """The emulator on a background thread. ``port=0`` picks a free port; read it back from ``url``.

    >>> with FcmEmulator() as fcm:                                   # doctest: +SKIP
    ...     fcm.set_behaviour("tok-1", "unavailable", times=2)
    ...     provider = FcmProvider.from_settings("demo", None, fcm.url, timeout=2)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, hold_seconds: float = DEFAULT_HOLD_SECONDS):
        self.host, self.port = host, port
        self.state = EmulatorState(hold_seconds=hold_seconds)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FcmEmulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self.state)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fcm-emulator", daemon=True)
        self._thread.start()
        log.info("push.emulator.started url=%s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("push.emulator.stopped")

    @property
    def url(self) -> str:
        """Base URL to give ``FcmProvider.from_settings(endpoint=...)``."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def messages(self, token: str | None = None) -> list[dict[str, Any]]:
        return self.state.messages(token)

    def clear_messages(self) -> int:
        return self.state.clear_messages()

    def set_behaviour(self, token: str, behaviour: str, times: int | None = None,
                      retry_after: float | None = None, hold_seconds: float | None = None) -> None:
        self.state.set_behaviour(token, behaviour, times, retry_after, hold_seconds)

    def clear_behaviours(self, token: str | None = None) -> None:
        self.state.clear_behaviours(token)

    def reset(self) -> None:
        self.state.clear_behaviours()
        self.state.clear_messages()

    def __enter__(self) -> FcmEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(host: str, port: int) -> None:
    """Run the emulator in the foreground until Ctrl-C (``beidou fcm-emulator``)."""
    emulator = FcmEmulator(host, port).start()
    print(f"FCM emulator listening on {emulator.url}  (control API under {emulator.url}/emulator/; Ctrl-C stops)",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fcm-emulator", description="A local FCM HTTP v1 emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
