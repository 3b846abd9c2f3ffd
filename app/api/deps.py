"""Request dependencies: the service container, the authenticated principal."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from fastapi import Depends, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import directory
from app.api.fanout import CareFeed, StreamRegistry
from app.api.gathering import FrameGathering
from app.auth import AuthError, Claims, TokenVerifier
from app.core.db import Database, ReadDatabase
from app.api.problems import refuse_handshake
from app.core.errors import BeidouError, Forbidden, Invalid, Unauthorized
from app.core.settings import Settings
from streaming.ingest import IngestWriter
from streaming.validation import Limits


@dataclass
class Services:
    """Everything a request may need, built once per process by the app factory."""

    settings: Settings
    db: Database
    reads: ReadDatabase
    """Reads that may lag a little (care charts, exports, queue listings, the audit view): the read replica
    when BEIDOU_READ_DATABASE_URL is set and it is close enough, else ``db``."""
    verifier: TokenVerifier
    ingest: IngestWriter
    principals: PrincipalCache
    limits: Limits
    streams: StreamRegistry = field(default_factory=StreamRegistry)
    """Open ingest streams per person (consent changes reach them)."""
    gathering: FrameGathering = field(default_factory=FrameGathering)
    """Streams with frames to store, handed to the writer together (group commit across streams)."""
    care_feed: CareFeed = field(default_factory=CareFeed)
    """Open care-page live feeds per tenant (alert changes reach them)."""


@dataclass(frozen=True, slots=True)
class Principal:
    claims: Claims
    person: directory.Person | None = None
    staff: directory.StaffMember | None = None

    @property
    def tenant_id(self) -> UUID:
        return self.claims.tenant_id

    @property
    def person_id(self) -> UUID | None:
        return self.person.id if self.person else None


class UnknownTenant(AuthError):
    pass


class PrincipalCache:
    """Token claims → provisioned person or staff row, cached briefly: ids never change once made."""

    def __init__(self, db: Database, ttl_s: float = 300.0, max_entries: int = 100_000):
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[float, Principal]] = {}

    async def resolve(self, claims: Claims) -> Principal:
        key = (claims.tenant_id, claims.subject, claims.role)
        hit = self._entries.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        async with self.db.transaction(tenant_id=claims.tenant_id) as conn:
            if not await directory.tenant_exists(conn, claims.tenant_id):
                raise UnknownTenant("unknown tenant")
            if claims.is_staff:
                principal = Principal(claims, staff=await directory.provision_staff(
                    conn, claims.tenant_id, claims.subject, claims.role))
            else:
                principal = Principal(claims, person=await directory.provision_person(
                    conn, claims.tenant_id, claims.subject))
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl_s, principal)
        return principal

    def forget_person(self, tenant_id: UUID, subject: str) -> None:
        self._entries.pop((tenant_id, subject, "policyholder"), None)


def aware(value: datetime | None, name: str) -> datetime | None:
    """A query time must say its UTC offset: a bare local time would mean a different instant to every reader."""
    if value is not None and value.tzinfo is None:
        raise Invalid(f"`{name}` needs a UTC offset, e.g. 2026-11-01T00:00:00+08:00 or 2026-11-01T00:00:00Z")
    return value


def services(request: Request) -> Services:
    return request.app.state.services


# In a route's `openapi_extra`: every signed-in role may use it (the OpenAPI document then lists no 403).
ANY_ROLE = "x-any-role"

_bearer = HTTPBearer(auto_error=False, description="A JWT from the insurer's identity provider "
                     "(or `beidou token` locally).")


async def authenticate(token: str, svc: Services) -> Principal:
    claims = svc.verifier.verify(token)
    return await svc.principals.resolve(claims)


# A WebSocket outlives no token: it closes when HTTP with the same token would start answering 401 (exp plus
# the configured leeway), with this application close code and reason, so the app fetches a fresh token and
# reconnects instead of treating it as a network fault.
TOKEN_EXPIRED_CLOSE = 4401
TOKEN_EXPIRED_REASON = "token_expired"


async def authenticate_until(token: str, svc: Services) -> tuple[Principal, float]:
    """The principal, and the Unix time its token stops being accepted."""
    claims = svc.verifier.verify(token)
    principal = await svc.principals.resolve(claims)
    return principal, (claims.expires_at or time.time()) + svc.settings.jwt_leeway_s


async def close_at_expiry(ws: WebSocket, until: float) -> None:
    """Close ``ws`` with 4401 ``token_expired`` at ``until`` (run as a task next to the connection's loop)."""
    await asyncio.sleep(max(0.0, until - time.time()))
    try:
        await ws.close(code=TOKEN_EXPIRED_CLOSE, reason=TOKEN_EXPIRED_REASON)
    except RuntimeError:  # already closed
        pass


async def principal(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
                    svc: Services = Depends(services)) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    try:
        return await authenticate(credentials.credentials, svc)
    except AuthError as exc:
        raise Unauthorized(str(exc)) from None


async def policyholder(p: Principal = Depends(principal)) -> Principal:
    if p.person is None:
        raise Forbidden("this route is for policyholders")
    return p


async def staff(p: Principal = Depends(principal)) -> Principal:
    if p.staff is None:
        raise Forbidden("this route is for care staff")
    return p


def websocket_token(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return ws.query_params.get("access_token")


async def websocket_caller(ws: WebSocket, *, staff: bool, refusal: str) -> tuple[Services, Principal, float] | None:
    """The services, the caller of a WebSocket handshake (a staff member if ``staff``, else a policyholder) and
    the Unix time its token stops being accepted (see ``close_at_expiry``), or None once the handshake was refused: a bad token, or the other kind of caller, closes with 1008 (policy
    violation, ``refusal`` says why); any other error (a database outage) gets the answer an HTTP route gives."""
    svc: Services = ws.app.state.services
    token = websocket_token(ws)
    try:
        if not token:
            raise AuthError("missing bearer token")
        who, until = await authenticate_until(token, svc)
    except AuthError as exc:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason=str(exc)[:120])
        return None
    except BeidouError as exc:
        await refuse_handshake(ws, exc)
        return None
    if (who.staff if staff else who.person) is None:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason=refusal)
        return None
    return svc, who, until
