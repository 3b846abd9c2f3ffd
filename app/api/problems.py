"""THE rendering of an error: ``{"detail": ..., "code": ...}``, over HTTP and in WebSocket error frames.

Routes raise :class:`~app.core.errors.BeidouError` subclasses and never build answers themselves. The
framework's own refusals (a body that fails validation, an unknown route, a wrong method) get the same shape
here, with a ``code`` derived from their status.
"""
from __future__ import annotations

from fastapi import WebSocket, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.core.errors import BeidouError, DatabaseUnavailable, Unauthorized

# Codes of the framework's HTTP answers (routing, body parsing), by status.
_FRAMEWORK_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                    422: "invalid", 429: "rate_limited", 503: "unavailable"}


def problem_body(exc: BeidouError) -> dict:
    """The two fields every error answer carries, HTTP or WebSocket."""
    detail = exc.detail
    if isinstance(exc, DatabaseUnavailable):
        detail = f"database unavailable, nothing was stored: {exc}"
    return {"detail": detail, "code": exc.code}


def problem_headers(exc: BeidouError) -> dict[str, str] | None:
    if isinstance(exc, DatabaseUnavailable):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


def problem_response(exc: BeidouError) -> JSONResponse:
    """A domain error as its HTTP answer (Retry-After on 503, WWW-Authenticate on 401)."""
    return JSONResponse(problem_body(exc), status_code=exc.status, headers=problem_headers(exc))


def http_exception_response(exc: HTTPException) -> JSONResponse:
    code = _FRAMEWORK_CODES.get(exc.status_code, "error")
    return JSONResponse({"detail": exc.detail, "code": code}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """The framework's field errors (a list with each fault's location), with the ``invalid`` code."""
    return JSONResponse({"detail": jsonable_encoder(exc.errors()), "code": "invalid"},
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def error_frame(exc: BeidouError, seq: int | None = None, **extra) -> dict:
    """A WebSocket ``error`` frame: the same ``detail`` and ``code`` as the HTTP answer would carry."""
    if isinstance(exc, DatabaseUnavailable):
        extra.setdefault("retry_after", exc.retry_after_s)
    return {"type": "error", "seq": seq, **problem_body(exc), **extra}


async def refuse_handshake(ws: WebSocket, exc: BeidouError) -> None:
    """Refuse a WebSocket handshake with the HTTP answer the error has (a 503 with Retry-After for a database
    outage): a close before accepting would reach the client as a bare HTTP 403, which reads as "your token is
    bad". Where the server cannot send an HTTP answer: close 1013 (try again later) for an outage, else 1008."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem_response(exc))
    elif isinstance(exc, DatabaseUnavailable):
        await ws.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="database unavailable")
    else:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason=exc.detail[:120])
