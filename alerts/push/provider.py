"""The port every push provider plugs into: a message, a result, and the retry arithmetic around them.

Alerting code talks only to :class:`PushProvider`. FCM is one implementation (:mod:`alerts.push.fcm`); a
provider for phones without Google services implements the same two members and nothing in ``alerts``
changes. Callers act on the *meaning* of a :class:`SendResult` (``retryable``, ``drop_token``,
``retry_after``); ``error_code`` is the provider's own vocabulary, kept for operators and logs.
"""
from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, runtime_checkable

Priority = Literal["normal", "high"]
Platform = Literal["android", "ios", "web"]
# What the app registered: a registration token, or an installation id (FCM's FID, which Firebase's client
# SDKs now hand out instead of tokens when an app opts in). Providers address the device accordingly.
TokenKind = Literal["registration", "installation"]

# FCM refuses a TTL above four weeks, and APNs refuses an apns-collapse-id above 64 bytes; other providers
# have similar or looser limits, so checking here catches the mistake before any provider sees it.
MAX_TTL_SECONDS = 28 * 24 * 3600
MAX_COLLAPSE_KEY_BYTES = 64


@dataclass(frozen=True)
class PushMessage:
    """One notification for one device.

    ``token`` is whatever the app registered with us; ``token_kind`` says which of the two kinds it is.

    It carries no health data: callers put a neutral title/body and opaque ids in ``data`` (the app fetches
    details over its authenticated API). A message with neither title nor body is a silent, data-only push.
    """

    token: str
    title: str | None = None
    body: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    collapse_key: str | None = None
    priority: Priority = "normal"
    ttl_seconds: int | None = None
    platform: Platform | None = None
    token_kind: TokenKind = "registration"

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise ValueError("token must be a non-empty string")
        for name in ("title", "body", "collapse_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or None")
        bad = [k for k, v in self.data.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise ValueError(f"data keys and values must be strings (offending keys: {bad!r})")
        # A private copy, so the caller mutating its dict later cannot change a message already queued.
        object.__setattr__(self, "data", dict(self.data))
        if self.priority not in ("normal", "high"):
            raise ValueError("priority must be 'normal' or 'high'")
        if self.ttl_seconds is not None and (
                isinstance(self.ttl_seconds, bool) or not isinstance(self.ttl_seconds, int)
                or not 0 <= self.ttl_seconds <= MAX_TTL_SECONDS):
            raise ValueError(f"ttl_seconds must be an integer between 0 and {MAX_TTL_SECONDS}")
        if self.collapse_key is not None and not 0 < len(self.collapse_key.encode()) <= MAX_COLLAPSE_KEY_BYTES:
            raise ValueError(f"collapse_key must be 1 to {MAX_COLLAPSE_KEY_BYTES} bytes")
        if self.platform not in (None, "android", "ios", "web"):
            raise ValueError("platform must be 'android', 'ios', 'web' or None")
        if self.token_kind not in ("registration", "installation"):
            raise ValueError("token_kind must be 'registration' or 'installation'")


@dataclass(frozen=True)
class SendResult:
    """What happened to one send, in terms the caller can act on.

    ``retryable``: sending the same message again later may succeed. ``drop_token``: the token is dead
    (the app was uninstalled or the token expired); delete it and never send to it again.
    ``retry_after``: the provider asked us to wait at least this many seconds.
    """

    ok: bool
    provider_message_id: str | None = None
    error_code: str | None = None
    retryable: bool = False
    drop_token: bool = False
    retry_after: float | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.ok and (self.error_code or self.retryable or self.drop_token):
            raise ValueError("a successful result carries no error")
        if self.drop_token and self.retryable:
            raise ValueError("a dropped token is never retried")

    @classmethod
    def sent(cls, provider_message_id: str) -> SendResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, error_code: str, *, retryable: bool, drop_token: bool = False,
               retry_after: float | None = None, detail: str | None = None) -> SendResult:
        return cls(ok=False, error_code=error_code, retryable=retryable, drop_token=drop_token,
                   retry_after=retry_after, detail=detail)


@runtime_checkable
class PushProvider(Protocol):
    """Sends one message. Returns a :class:`SendResult` for every outcome the remote side or the network can
    cause (it does not raise for those), so the caller's bookkeeping has a single path."""

    name: str

    def send(self, msg: PushMessage) -> SendResult: ...


class FakeProvider:
    """A provider for tests of code that sends pushes: records every message and answers from a script.

    ``script(...)`` queues results for any token; ``script_for(token, ...)`` queues results for one token and
    takes precedence. With nothing scripted, a send succeeds.
    """

    def __init__(self, results: Iterable[SendResult] = (), *, name: str = "fake"):
        self.name = name
        self.sent: list[PushMessage] = []
        self._script: deque[SendResult] = deque(results)
        self._per_token: dict[str, deque[SendResult]] = {}
        self._lock = threading.Lock()

    def script(self, *results: SendResult) -> None:
        with self._lock:
            self._script.extend(results)

    def script_for(self, token: str, *results: SendResult) -> None:
        with self._lock:
            self._per_token.setdefault(token, deque()).extend(results)

    def send(self, msg: PushMessage) -> SendResult:
        with self._lock:
            self.sent.append(msg)
            queue = self._per_token.get(msg.token)
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
            return SendResult.sent(f"{self.name}-{len(self.sent)}")


class _Uniform(Protocol):
    def random(self) -> float: ...


def backoff_delay(attempt: int, retry_after: float | None = None, *, base: float = 1.0, cap: float = 300.0,
                  rng: _Uniform | None = None) -> float:
    """Seconds to wait before the next try, after ``attempt`` failed tries (1 for the first failure).

    Exponential backoff with full jitter: a uniform draw from ``[0, min(cap, base * 2**(attempt-1))]``, so
    many senders failing together spread out instead of retrying in lock-step. A ``retry_after`` from the
    provider is a floor, never shortened (not even by ``cap``); up to ``base`` seconds of jitter go on top
    of it, because a quota answer reaches every message in flight at once and they should not all come
    back in the same second.
    """
    if attempt < 1:
        raise ValueError("attempt counts failed tries and starts at 1")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    rng = rng if rng is not None else random
    # 2**(attempt-1) overflows a float past ~1024; the cap is reached long before, so clamp the exponent.
    bound = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = rng.random() * bound
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after + rng.random() * base)
    return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delta-seconds or an HTTP-date); ``None`` if absent or
    unreadable. A date in the past means "now": 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
