"""The API process is killed (SIGKILL) while hundreds of streams send: acknowledged means stored, exactly once."""
from __future__ import annotations

import asyncio
import signal
import time

import httpx

from tests.faults import Phone, check_all_or_nothing, check_exactly_once, run_phones, total

STREAMS = 250
FRAMES = 24
PER_FRAME = 4
KILL_AT = 0.35  # share of all frames acknowledged when the API is killed


async def grant_monitoring(service, tokens: list[str]) -> None:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        async def grant(token: str) -> None:
            async with limit:
                r = await client.put("/v1/me/consents/heart_rate", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, r.text
        await asyncio.gather(*(grant(t) for t in tokens))


def test_every_acknowledged_reading_survives_a_sigkill_of_the_api_exactly_once(fault_service, figures):
    service = fault_service
    tenant = service.new_tenant()
    people = [f"stream-{i:03d}" for i in range(STREAMS)]
    tokens = {p: tenant.person_token(p) for p in people}
    seen: dict = {}

    async def scenario() -> list[Phone]:
        await grant_monitoring(service, list(tokens.values()))
        phones = [Phone(service, tokens[p], p, frames=FRAMES, per_frame=PER_FRAME, period=0.1, window=8)
                  for p in people]
        started = time.monotonic()
        runner = asyncio.create_task(run_phones(phones, deadline=started + 120))
        while sum(p.tally.acked for p in phones) < KILL_AT * STREAMS * FRAMES:
            if runner.done():
                runner.result()
            await asyncio.sleep(0.02)
        # Kill the whole process group at once, mid-stream, with frames in flight on every connection.
        seen["acked_before"] = {p.person: set(p.acked) for p in phones}
        seen["inflight"] = sum(len(p.unacked) for p in phones)
        killed = time.monotonic()
        service.stop(signal.SIGKILL)
        seen["snapshot"] = check_all_or_nothing(phones, seen["acked_before"], service.db.admin_url, tenant.id)
        seen["acked_frames_before"] = sum(len(s) for s in seen["acked_before"].values())
        await asyncio.to_thread(service.start)
        seen["down_s"] = time.monotonic() - killed
        await runner
        seen["elapsed_s"] = time.monotonic() - started
        return phones

    phones = asyncio.run(scenario())
    tally = total(phones)
    stored = check_exactly_once(phones, service.db.admin_url, tenant.id)
    snapshot = seen["snapshot"]
    # Frames in flight at the kill whose transaction had committed: stored, but the ack never left the process.
    committed_unacked = snapshot["frames_whole"] - seen["acked_frames_before"]

    section = figures.section("api_sigkill")
    section.add("streams (one person each), frames per stream × readings per frame", f"{STREAMS}, {FRAMES} × {PER_FRAME}")
    section.add("readings sent (distinct natural keys)", stored["sent"])
    section.add("frames acknowledged before the kill", seen["acked_frames_before"])
    section.add("frames unacknowledged (in flight) at the kill", seen["inflight"])
    section.add("of those, already committed (ack lost with the process)", committed_unacked)
    section.add("frames partly stored, seen in one snapshot right after the kill", snapshot["frames_partial"])
    section.add("acknowledged frames missing right after the kill", snapshot["acked_missing"])
    section.add("API down (SIGKILL → /readyz 200 again), s", seen["down_s"])
    section.add("stream reconnects / frames resent", f"{tally.reconnects} / {tally.resent}")
    section.add("readings the server answered `duplicate` to (a resend of a committed frame)", tally.duplicate)
    section.add("rows stored at the end", stored["rows"])
    section.add("acknowledged readings lost", stored["lost_acked"])
    section.add("readings lost (sent, never stored)", stored["lost"])
    section.add("readings stored twice", stored["duplicates"])
    section.add("scenario time, s", seen["elapsed_s"])

    assert snapshot["frames_partial"] == 0 and snapshot["acked_missing"] == 0, snapshot
    assert tally.reconnects >= STREAMS, "every stream lost its connection to the killed process"
    assert stored == {"rows": STREAMS * FRAMES * PER_FRAME, "sent": STREAMS * FRAMES * PER_FRAME, "lost_acked": 0,
                      "lost": 0, "duplicates": 0, "unexpected": 0}, stored
    assert tally.accepted + tally.duplicate == STREAMS * FRAMES * PER_FRAME
    assert tally.errors == {}, tally.errors
