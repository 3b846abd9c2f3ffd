"""The one place that wires the HTTP/WebSocket service together."""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from contextlib import asynccontextmanager
from datetime import timedelta

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api import (care, care_live, consents, datatypes, fhir_in, health, me, me_page, outcomes, outreach, readings,
                     stream, sync, tenant, web, webhooks)
from app.api.deps import ANY_ROLE, PrincipalCache, Services
from app.api.limits import BodySizeLimit
from app.api.problems import http_exception_response, problem_response, validation_response
from app.auth import TokenVerifier
from app.core import channels
from app.core.db import Database, ReadDatabase
from app.core.errors import BeidouError, TooManySources, UnstorableText
from app.core.listen import listen_forever
from app.core.settings import Settings, get_settings
from consent import expiry
from streaming.ingest import IngestWriter
from streaming.validation import Limits

log = logging.getLogger(__name__)

DESCRIPTION = """
Health Beidou lets an insurer look after its policyholders' health **with their consent**.

* **Policyholders** (the mobile app) send readings over `POST /v1/readings` or the `GET /v1/stream`
  WebSocket, and manage their consent under `/v1/me/consents`. Apps forwarding the phone's health store
  (Health Connect, HealthKit, Huawei Health) use `/v1/sync/...`; partners send FHIR R4 to `/fhir/r4`.
* Every request carries a bearer JWT from the insurer's identity provider: claims `iss`, `aud`, `exp`,
  `sub` (the person or staff id as the insurer knows it), `tid` (tenant id) and `role`
  (`policyholder`, `care_agent`, `care_supervisor` or `tenant_admin`).
* Every error is JSON `{"detail": ..., "code": ...}` (the `Problem` schema): `detail` says what went wrong in
  words (for a request that fails validation, a list of the faulty fields), `code` is a stable, machine-readable
  name clients act on (`invalid`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `erased`, `too_large`,
  `unavailable`, ...). WebSocket `error` frames carry the same two fields. 503 answers carry `Retry-After`,
  401 answers `WWW-Authenticate: Bearer`.
"""


def create_app(settings: Settings, database_url: str, *, embedded_worker: bool = False,
               owner_url: str | None = None) -> FastAPI:
    """Build the API for a resolved database URL (the local cluster is started by the caller).

    ``embedded_worker`` also runs the worker and the scheduler in this process (`beidou up`); ``owner_url``,
    the schema owner's URL, gives that scheduler its owner-only job (compacting closed hot days' indexes)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database(database_url, min_size=settings.pool_min, max_size=settings.pool_max,
                      statement_timeout_ms=settings.statement_timeout_ms, application_name="beidou-api")
        await db.open()
        replica = None
        if settings.read_database_url:
            replica = Database(settings.read_database_url, min_size=1, max_size=settings.pool_max,
                               statement_timeout_ms=settings.statement_timeout_ms,
                               application_name="beidou-api-reads")
        reads = ReadDatabase(db, replica, max_lag_s=settings.read_max_lag_s)
        await reads.open()
        writer = IngestWriter(db, writers=settings.ingest_writers, hot_days=settings.hot_days)
        await writer.start()
        limits = Limits(max_future=timedelta(seconds=settings.max_future_skew_s),
                        max_past=timedelta(days=settings.max_past_days))
        svc = app.state.services = Services(settings=settings, db=db, reads=reads, verifier=TokenVerifier(settings),
                                            ingest=writer, principals=PrincipalCache(db), limits=limits)

        def on_notify(channel: str, payload: str) -> None:
            if channel == channels.CONSENT.name:
                svc.streams.consent_changed(channels.CONSENT.decode(payload))
            elif channel == channels.ALERTS.name:
                svc.care_feed.publish(channels.ALERTS.decode(payload))

        # Every background task of the API process starts (and stops) here, nowhere else.
        tasks = [
            asyncio.create_task(listen_forever(database_url, [channels.CONSENT.name, channels.ALERTS.name],
                                               on_notify), name="api-listen"),
            # Records and announces consents reaching their valid_until; safe in several processes at once.
            asyncio.create_task(expiry.run_forever(db), name="consent-expiry"),
        ]
        worker = scheduler = None
        if embedded_worker:
            from app.scheduler import Scheduler
            from app.worker import Worker, build_sender
            worker = Worker(db, database_url, sender=build_sender(db, settings))
            await worker.start()
            scheduler = Scheduler(db, database_url, hot_days=settings.hot_days, owner_url=owner_url)
            scheduler.start()
        # What start-up made (routes, models, settings, pools) lives as long as the process: kept out of the
        # collector's passes, and young collections less often (ingest makes many short-lived objects).
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()
            if worker is not None:
                await worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await writer.stop()
            await reads.close()
            await db.close()

    app = FastAPI(title="Health Beidou", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(stream.StreamFirst)  # outermost of ours: the stream skips the routing layers
    for module in (readings, sync, fhir_in, stream, consents, me, me_page, care, care_live, outreach, outcomes, webhooks,
                   tenant, datatypes, health, web):
        app.include_router(module.router)

    @app.exception_handler(BeidouError)
    async def _domain_error(_: Request, exc: BeidouError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _framework_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_exception_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(psycopg.DataError)
    async def _data_error(_: Request, exc: psycopg.DataError) -> JSONResponse:
        if not _unstorable_text(exc):
            raise exc
        return problem_response(UnstorableText())

    @app.exception_handler(psycopg.errors.CheckViolation)
    async def _limit(_: Request, exc: psycopg.errors.CheckViolation) -> JSONResponse:
        if not TooManySources.raised_by(exc):
            raise exc
        return problem_response(TooManySources())

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        if not _unstorable_text(exc):
            raise exc
        return problem_response(UnstorableText())

    _document_raw_bodies(app)
    return app


# Set by `beidou api` / `beidou up` for the API processes it starts: the database it resolved (the local cluster is
# started once, by the parent) and whether each process also runs the worker and the scheduler.
SERVE_DATABASE_URL = "_BEIDOU_SERVE_DATABASE_URL"
SERVE_EMBEDDED_WORKER = "_BEIDOU_SERVE_EMBEDDED_WORKER"
# ... and, for that scheduler, the schema owner's URL when one is known (owner-only upkeep).
SERVE_OWNER_URL = "_BEIDOU_SERVE_OWNER_URL"


def create_app_from_env() -> FastAPI:
    """The app of one API process, built from the environment (uvicorn imports this in every process it starts)."""
    settings = get_settings()
    url = os.environ.get(SERVE_DATABASE_URL) or settings.database_url
    if not url:
        raise RuntimeError("no database: set DATABASE_URL (or start the API with `beidou api`)")
    return create_app(settings, url, embedded_worker=os.environ.get(SERVE_EMBEDDED_WORKER) == "1",
                      owner_url=os.environ.pop(SERVE_OWNER_URL, None))


def _unstorable_text(exc: Exception) -> bool:
    """Input text PostgreSQL cannot hold: a NUL character (refused by psycopg, or by the server inside jsonb)
    or an unpaired UTF-16 surrogate (JSON allows ``"\\ud800"``; UTF-8 cannot encode it)."""
    if isinstance(exc, UnicodeEncodeError):
        return exc.reason == "surrogates not allowed"
    if isinstance(exc, psycopg.errors.UntranslatableCharacter | psycopg.errors.CharacterNotInRepertoire):
        return True
    return isinstance(exc, psycopg.DataError) and "NUL" in str(exc)


def _document_raw_bodies(app: FastAPI) -> None:
    """Routes that decode their body themselves (the msgspec fast path) still get a documented schema."""
    from fastapi.openapi.utils import get_openapi

    from app.api.schemas import ReadingBatch

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema = ReadingBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            components.update(schema.pop("$defs", {}))
            components["ReadingBatch"] = schema
            _document_common_answers(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi


# What any route behind a bearer token may answer, whatever the route: its own `responses=` say the rest.
_COMMON_ANSWERS = {
    "401": "No bearer token, or one that is invalid, expired, for another audience or issuer, or for an unknown "
           "insurer (`WWW-Authenticate: Bearer`).",
    "403": "The token's role may not use this route (policyholder routes, care-team routes, tenant_admin routes).",
    "503": "The database is unavailable; nothing was stored. Retry after `Retry-After` seconds.",
}


def _document_common_answers(doc: dict) -> None:
    """Document the answers the auth dependencies and the error handlers give on every protected route."""
    from app.api.schemas import Problem

    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                any_role = operation.pop(ANY_ROLE, False)  # no role is refused: no 403 to document
                for code, description in _COMMON_ANSWERS.items():
                    if not (any_role and code == "403"):
                        responses.setdefault(code, {"description": description, "content": problem})
            if "requestBody" in operation:
                # Starlette cannot even read a body that is not UTF-8 text: 400 before any validation.
                responses.setdefault("400", {"description": "The body could not be read as JSON text.",
                                             "content": problem})
                responses.setdefault("413", {"description": "The body is larger than BEIDOU_MAX_BODY_BYTES.",
                                             "content": problem})
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {})
            if invalid.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
                # The framework's field errors come in the same Problem shape (code `invalid`, `detail` a list of
                # faulty fields); routes refuse some valid-looking input with a sentence of their own instead.
                invalid["schema"] = {"$ref": "#/components/schemas/Problem"}
                responses["422"]["description"] = "The request is invalid: `detail` lists the fields or says why."
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in json.dumps(doc["paths"]):
            components.pop(unused, None)
