"""The web pages: the care team's ``GET /care`` (the queue) and ``GET /care/outcomes`` (the insurer's outcomes),
and the policyholder's own ``GET /me``, with their files under ``/care/static/`` and ``/me/static/`` (the same
directory: the pages share their chart and helpers).

The pages are static (plain HTML, CSS and JavaScript, no build step). ``/care`` talks to the ``/v1/care`` routes
with the staff token the agent pastes in; ``/me`` talks to ``/v1/me`` with the token the insurer's app hands
it (see docs/me-page.md). They hold no data themselves, so serving them needs no token; every
answer carries a strict Content-Security-Policy (scripts, styles and fetches from this origin only, the
live feed over ``ws:``/``wss:``) and the HTML is never cached, so a shared laptop keeps no copy of it.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, RedirectResponse

from app.core.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self' ws: wss:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Only these kinds of file are served; anything else under app/web (licences, notes) is not.
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@router.get("/care")
async def care_page() -> FileResponse:
    return _page("index.html")


@router.get("/care/outcomes")
async def outcomes_page() -> FileResponse:
    return _page("outcomes.html")


@router.get("/care/")
async def care_page_slash() -> RedirectResponse:
    return RedirectResponse("/care", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get("/care/static/{path:path}")
async def care_static(path: str) -> FileResponse:
    return _static(path)


@router.get("/me")
async def me_page() -> FileResponse:
    return _page("me.html")


@router.get("/me/")
async def me_page_slash() -> RedirectResponse:
    return RedirectResponse("/me", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get("/me/static/{path:path}")
async def me_static(path: str) -> FileResponse:
    return _static(path)


def _page(name: str) -> FileResponse:
    """A page's HTML with the security headers, never cached."""
    return FileResponse(WEB_ROOT / name, media_type="text/html; charset=utf-8",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


def _static(path: str) -> FileResponse:
    file = (WEB_ROOT / path).resolve()
    media_type = MEDIA_TYPES.get(file.suffix)
    # resolve() folds any "..", so a file outside app/web can never be named here.
    if media_type is None or not file.is_relative_to(WEB_ROOT) or not file.is_file():
        raise NotFound("not found")
    # Revalidated on every load (cheap: ETag/Last-Modified), so a new release is picked up at once.
    return FileResponse(file, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
