"""A local HTTPS-less receiver for signed webhooks (loopback only): records every request, verifies its
Standard Webhooks signature with the secrets it was told, and answers from a script."""
from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    verified_with: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Answer:
    status: int = 200
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0


class Receiver:
    """``secrets`` are checked against every request; ``verified_with`` lists the ones that verified it."""

    def __init__(self, secrets: list[str] | None = None):
        self.secrets = list(secrets or [])
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()
        self.default = Answer()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                item = Received(self.path, headers, body)
                for secret in receiver.secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                    except WebhookVerificationError:
                        continue
                    item.verified_with.append(secret)
                with receiver._lock:
                    receiver.received.append(item)
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer.delay_s:
                    threading.Event().wait(answer.delay_s)
                payload = json.dumps(answer.body or {}).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self.answers.extend(answers)

    def of_type(self, event: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.json.get("type") == event]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
