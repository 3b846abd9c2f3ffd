"""From raw items to per-item results: validate each, store the good ones, report every one in order."""
from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

import msgspec

from app.core.observability import READINGS
from streaming.ingest import ACCEPTED, DUPLICATE, NO_CONSENT, IngestWriter
from streaming.validation import Limits, validate_batch

_NO_CONSENT_DETAIL = "no active consent to store this data type for monitoring"


async def receive(writer: IngestWriter, *, tenant_id: UUID, person_id: UUID, items: list[msgspec.Raw],
                  limits: Limits) -> list[dict]:
    """Validate and store a person's items; one result per item, in order, after the commit."""
    good, positions, refused = validate_batch(items, now=datetime.now(timezone.utc), limits=limits)
    outcomes = await writer.store(tenant_id, person_id, good)
    if not refused and len(outcomes) == len(items) and all(o == ACCEPTED for o in outcomes):
        READINGS.labels("accepted", "").inc(len(items))
        return [{"index": i, "status": ACCEPTED} for i in range(len(items))]
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


def summarise(results: list[dict]) -> dict:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for r in results:
        counts[r["status"]] += 1
    return {"results": results, **counts}
