"""The web pages: the care team's ``GET /care`` (the queue) and ``GET /care/outcomes`` (the insurer's outcomes),
and the policyholder's own ``GET /me``, with their files under ``/care/static/`` and ``/me/static/`` (the same
directory: the pages share their chart and helpers).

The pages are static (plain HTML, CSS and JavaScript, no build step); the markup several pages share (the
head, the staff pages' top bar and token field) is written once in ``app/web/partials/`` and put in place when a
page is first served. ``/care`` talks to the ``/v1/care`` routes with the staff token the agent pastes in;
``/me`` talks to ``/v1/me`` with the token the insurer's app hands it (see docs/me-page.md). They hold no data
themselves, so serving them needs no token; every answer carries a strict Content-Security-Policy (scripts,
styles and fetches from this origin only, the live feed over ``ws:``/``wss:``) and the HTML is never cached, so
a shared laptop keeps no copy of it.
"""
from __future__ import annotations

import functools
import html
import re
from pathlib import Path

from fastapi import APIRouter, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

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


# Each page and the file it is made from; each app (the part of the path before the page) also redirects its
# trailing-slash form to itself and serves the shared files under its own ``/static/``.
PAGES = {"/care": "index.html", "/care/outcomes": "outcomes.html", "/me": "me.html"}
APPS = ("/care", "/me")
# A line ``<!--#include file="x.html" name="value" -->`` in a page stands for app/web/partials/x.html (indented as
# it is there) with each ``{{name}}`` filled in, escaped: markup the pages share is written once.
_INCLUDE = re.compile(r'^[ \t]*<!--#include file="(?P<file>[\w-]+\.html)"(?P<args>(?: \w+="[^"]*")*) -->', re.M)
_ARG = re.compile(r'(\w+)="([^"]*)"')


def _serve_page(name: str):
    """A page's HTML with the security headers, never cached."""
    async def page() -> HTMLResponse:
        return HTMLResponse(render(name), headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
    return page


def _redirect_to(path: str):
    async def redirect() -> RedirectResponse:
        return RedirectResponse(path, status_code=status.HTTP_308_PERMANENT_REDIRECT)
    return redirect


@functools.cache
def render(name: str) -> str:
    """The page ``name`` (a file under app/web) with its includes filled in; read once per process."""
    def include(match: re.Match) -> str:
        text = (WEB_ROOT / "partials" / match["file"]).read_text(encoding="utf-8")
        for key, value in _ARG.findall(match["args"]):
            text = text.replace("{{" + key + "}}", html.escape(value))
        return _INCLUDE.sub(include, text.rstrip("\n"))  # a partial may include another
    return _INCLUDE.sub(include, (WEB_ROOT / name).read_text(encoding="utf-8"))


async def static_file(path: str) -> FileResponse:
    file = (WEB_ROOT / path).resolve()
    media_type = MEDIA_TYPES.get(file.suffix)
    # resolve() folds any "..", so a file outside app/web can never be named here.
    if media_type is None or not file.is_relative_to(WEB_ROOT) or not file.is_file():
        raise NotFound("not found")
    # Revalidated on every load (cheap: ETag/Last-Modified), so a new release is picked up at once.
    return FileResponse(file, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


for _path, _name in PAGES.items():
    router.add_api_route(_path, _serve_page(_name), methods=["GET"])
for _app in APPS:
    router.add_api_route(f"{_app}/", _redirect_to(_app), methods=["GET"])
    router.add_api_route(f"{_app}/static/{{path:path}}", static_file, methods=["GET"])
