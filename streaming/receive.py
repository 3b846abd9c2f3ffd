"""From raw items to per-item results: validate each, store the good ones, report every one in order."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from uuid import UUID

import msgspec

from app.core.observability import READINGS
from streaming.ingest import ACCEPTED, DUPLICATE, NO_CONSENT, IngestWriter
from streaming.validation import Limits, validate_batch

_encoder = msgspec.json.Encoder()
_NO_CONSENT_DETAIL = "no active consent to store this data type for monitoring"


async def receive(writer: IngestWriter, *, tenant_id: UUID, person_id: UUID, items: list[msgspec.Raw],
                  limits: Limits) -> list[dict]:
    """Validate and store a person's items; one result per item, in order, after the commit."""
    good, positions, refused = validate_batch(items, now=datetime.now(timezone.utc), limits=limits)
    outcomes = await writer.store(tenant_id, person_id, good)
    if not refused and len(outcomes) == len(items) and outcomes.count(ACCEPTED) == len(items):
        READINGS.labels("accepted", "").inc(len(items))
        return all_accepted(len(items))
    results: list[dict] = [None] * len(items)  # type: ignore[list-item]
    for index, exc in refused.items():
        results[index] = {"index": index, "status": "rejected", "reason": exc.reason, "detail": exc.detail}
        READINGS.labels("rejected", exc.reason).inc()
    for index, outcome in zip(positions, outcomes):
        if outcome == NO_CONSENT:
            results[index] = {"index": index, "status": "rejected", "reason": NO_CONSENT, "detail": _NO_CONSENT_DETAIL}
            READINGS.labels("rejected", NO_CONSENT).inc()
        else:
            results[index] = {"index": index, "status": outcome}
    accepted = outcomes.count(ACCEPTED)
    duplicate = outcomes.count(DUPLICATE)
    if accepted:
        READINGS.labels("accepted", "").inc(accepted)
    if duplicate:
        READINGS.labels("duplicate", "").inc(duplicate)
    return results


# Answers of up to this many items are kept encoded (32 sizes at most: a few MiB at worst).
_CACHED_UP_TO = 1000


def all_accepted(n: int) -> list[dict]:
    """The results of ``n`` items that were all accepted (the common case). Up to ``_CACHED_UP_TO`` items it is one
    shared list per size, not to be modified, which :func:`summary_json` recognises and answers with bytes encoded
    once."""
    return _all_accepted(n) if n <= _CACHED_UP_TO else [{"index": i, "status": ACCEPTED} for i in range(n)]


@functools.lru_cache(maxsize=32)
def _all_accepted(n: int) -> list[dict]:
    return [{"index": i, "status": ACCEPTED} for i in range(n)]


@functools.lru_cache(maxsize=32)
def _all_accepted_json(n: int) -> bytes:
    return _encoder.encode(_all_accepted(n))


def summary_json(results: list[dict], **head) -> bytes:
    """``{**head, "results", "accepted", "duplicate", "rejected"}`` as JSON; pre-encoded when all were accepted."""
    n = len(results)
    if n <= _CACHED_UP_TO and results is _all_accepted(n):
        start = _encoder.encode(head)[:-1] + b"," if head else b"{"
        return b"%s\"results\":%s,\"accepted\":%d,\"duplicate\":0,\"rejected\":0}" % (
            start, _all_accepted_json(n), n)
    return _encoder.encode({**head, **summarise(results)})


def summarise(results: list[dict]) -> dict:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r["status"]] += 1
    return {"results": results, **counts}
