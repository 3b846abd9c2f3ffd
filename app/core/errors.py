"""The project's one error family. Each error carries the HTTP status and the stable ``code`` clients act on;
the app factory has ONE handler that renders any of them as ``{"detail": ..., "code": ...}`` (HTTP) and the
WebSocket endpoints send the same two fields in their ``error`` frames. Domain packages raise these and never
know about HTTP beyond the number."""
from __future__ import annotations


class BeidouError(Exception):
    """Base of the project's own errors: ``status`` (HTTP) and ``code`` (stable, machine-readable)."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code

    @property
    def detail(self) -> str:
        return str(self) or self.code.replace("_", " ")


class Invalid(BeidouError):
    """The request is well-formed JSON but its content cannot be accepted."""

    status = 422
    code = "invalid"


class UnstorableText(Invalid):
    """Input text PostgreSQL cannot hold (a NUL character, an unpaired surrogate). The statement ran inside the
    request's transaction, which rolled back: nothing was stored."""

    code = "invalid_text"

    def __init__(self, detail: str = "text with a NUL character or an unpaired surrogate cannot be stored; "
                                     "nothing was stored") -> None:
        super().__init__(detail)


class Unauthorized(BeidouError):
    """No valid credentials (answered with ``WWW-Authenticate: Bearer``)."""

    status = 401
    code = "unauthorized"


class Forbidden(BeidouError):
    """The caller may not do this."""

    status = 403
    code = "forbidden"


class NotFound(BeidouError):
    """The thing does not exist, or is not visible to the caller (never says which)."""

    status = 404
    code = "not_found"


class Conflict(BeidouError):
    """The request clashes with the current state."""

    status = 409
    code = "conflict"


class Gone(BeidouError):
    """The person's data was erased: nothing more can be written for them."""

    status = 410
    code = "erased"


class TooLarge(BeidouError):
    """The request is larger than a configured limit."""

    status = 413
    code = "too_large"


class Internal(BeidouError):
    """Our fault, not the caller's; the message says what to do (e.g. resend)."""

    status = 500
    code = "internal"


class RateLimited(BeidouError):
    """Too many requests or frames; the answer says when to try again."""

    status = 429
    code = "rate_limited"


class DatabaseUnavailable(BeidouError):
    """The database cannot be reached or timed out; the caller should retry later."""

    status = 503
    code = "unavailable"
    retry_after_s = 5
