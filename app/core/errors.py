"""The project's one error family. Each error carries the HTTP status and the stable ``code`` clients act on;
the app factory has ONE handler that renders any of them as ``{"detail": ..., "code": ...}`` (HTTP) and the
WebSocket endpoints send the same two fields in their ``error`` frames. Domain packages raise these and never
know about HTTP beyond the number."""
from __future__ import annotations


class BeidouError(Exception):
    """Base of the project's own errors: ``status`` (HTTP) and ``code`` (stable, machine-readable)."""

    status: int = 400
    code: str = "bad_request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None, **kwargs) -> None:
        """``class Gone(BeidouError, status=410, code="erased")``; class attributes of the same names work too."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code

    @property
    def detail(self) -> str:
        return str(self) or self.code.replace("_", " ")


class Invalid(BeidouError, status=422, code="invalid"):
    """The request is well-formed JSON but its content cannot be accepted."""


class UnstorableText(Invalid, code="invalid_text"):
    """Input text PostgreSQL cannot hold (a NUL character, an unpaired surrogate). The statement ran inside the
    request's transaction, which rolled back: nothing was stored."""

    def __init__(self, detail: str = "text with a NUL character or an unpaired surrogate cannot be stored; "
                                     "nothing was stored") -> None:
        super().__init__(detail)


class TooManySources(Invalid, code="too_many_sources"):
    """A person's sources are numbered in the hot table (a smallint, migration 0017): at most 32,767 distinct
    source names per person. The transaction rolled back: nothing was stored."""

    def __init__(self, detail: str = "at most 32,767 distinct sources per person; nothing was stored") -> None:
        super().__init__(detail)

    CONSTRAINT = "sources_per_person"  # what the database names in the error (migration 0021)

    @classmethod
    def raised_by(cls, exc: BaseException) -> bool:
        """Is ``exc`` (a database check violation) the sources limit?"""
        diag = getattr(exc, "diag", None)
        return diag is not None and diag.constraint_name == cls.CONSTRAINT


class Unauthorized(BeidouError, status=401, code="unauthorized"):
    """No valid credentials (answered with ``WWW-Authenticate: Bearer``)."""


class Forbidden(BeidouError, status=403, code="forbidden"):
    """The caller may not do this."""


class NotFound(BeidouError, status=404, code="not_found"):
    """The thing does not exist, or is not visible to the caller (never says which)."""


class Conflict(BeidouError, status=409, code="conflict"):
    """The request clashes with the current state."""


class Gone(BeidouError, status=410, code="erased"):
    """The person's data was erased: nothing more can be written for them."""


class TooLarge(BeidouError, status=413, code="too_large"):
    """The request is larger than a configured limit."""


class Internal(BeidouError, status=500, code="internal"):
    """Our fault, not the caller's; the message says what to do (e.g. resend)."""


class RateLimited(BeidouError, status=429, code="rate_limited"):
    """Too many requests or frames; the answer says when to try again."""


class DatabaseUnavailable(BeidouError, status=503, code="unavailable"):
    """The database cannot be reached or timed out; the caller should retry later."""

    retry_after_s = 5


class NoConsent(Forbidden):
    """The person has not agreed to this use of this data type (or has withdrawn it): nothing is shown."""

    code = "no_consent"
