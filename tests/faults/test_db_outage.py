"""PostgreSQL goes away during ingest: clear 503s and error frames, a red /readyz, nothing half-written, and
everything resumes by itself when it comes back — without restarting the API.

The outage is staged on a private cluster of this module's own (the shared test cluster is never stopped).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.core import localdb, migrate
from app.core.settings import Settings
from tests.faults import Phone, check_all_or_nothing, check_exactly_once, reading, run_phones, total
from tests.faults.conftest import JWT_SECRET
from tests.support import ROOT, Service, free_port, service_env

OUTAGE_S = 30.0
CRASH_S = 4.0
WS_PHONES = 12
HTTP_PHONES = 3


@dataclass
class ClusterDatabase:
    """What :class:`tests.support.Service` needs of a database, for the private cluster."""

    app_url: str
    admin_url: str


@pytest.fixture(scope="module")
def cluster():
    root = ROOT / ".data" / f"fault-pg-{os.getpid()}"
    shutil.rmtree(root, ignore_errors=True)
    pg = localdb.LocalCluster(root=root, port=free_port())
    localdb.start(pg)
    migrate.upgrade(pg.admin_url())
    yield pg
    stop_immediately(pg)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def outage_service(cluster, tmp_path_factory) -> Service:
    db = ClusterDatabase(cluster.url(), cluster.admin_url())
    data = tmp_path_factory.mktemp("outage-service")
    port = free_port()
    settings = Settings(_env_file=None, database_url=db.app_url, jwt_secret=JWT_SECRET, data_dir=data)
    svc = Service(db=db, settings=settings, env=service_env(db, JWT_SECRET, data, port), port=port,  # type: ignore[arg-type]
                  log_path=data / "service.log")
    svc.start()
    yield svc
    svc.stop()


def stop_immediately(pg: localdb.LocalCluster) -> None:
    """``pg_ctl stop -m immediate``: every server process quits at once, as in a crash (recovery on start)."""
    if localdb.is_running(pg):
        subprocess.run([*localdb._run_as(), str(localdb.PG_BIN / "pg_ctl"), "-D", str(pg.data), "-m", "immediate",
                        "-w", "stop"], capture_output=True, text=True, check=True)


async def grant(service, tokens: list[str]) -> None:
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        for token in tokens:
            r = await client.put("/v1/me/consents/heart_rate", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text


class Probe:
    """Polls /readyz and POSTs one reading at a time, recording every answer with its time and latency."""

    def __init__(self, service, token: str):
        self.service, self.token = service, token
        self.readyz: list[tuple[float, int, float, str | None]] = []   # (at, status, latency, Retry-After)
        self.posts: list[tuple[float, int, float, str | None, dict]] = []
        self.handshakes: list[tuple[float, str]] = []
        self.index = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.service.base_url, timeout=30) as client:
            await asyncio.gather(self._readyz(client, stop), self._post(client, stop))

    async def _readyz(self, client, stop) -> None:
        while not stop.is_set():
            t = time.monotonic()
            r = await client.get("/readyz")
            self.readyz.append((t, r.status_code, time.monotonic() - t, r.headers.get("Retry-After")))
            await asyncio.sleep(0.1)

    async def _post(self, client, stop) -> None:
        while not stop.is_set():
            t = time.monotonic()
            self.index += 1
            r = await client.post("/v1/readings", json={"readings": [reading(self.index)]},
                                  headers={"Authorization": f"Bearer {self.token}"})
            self.posts.append((t, r.status_code, time.monotonic() - t, r.headers.get("Retry-After"), r.json()))
            await asyncio.sleep(0.2)

    async def new_stream(self, token: str) -> None:
        """A person the API has never seen opens a stream (the handshake needs the database)."""
        t = time.monotonic()
        try:
            async with connect(self.service.ws_url, additional_headers={"Authorization": f"Bearer {token}"},
                               open_timeout=20):
                self.handshakes.append((t, "accepted"))
        except InvalidStatus as exc:
            self.handshakes.append((t, f"HTTP {exc.response.status_code} Retry-After "
                                       f"{exc.response.headers.get('Retry-After')}"))


def first(rows, after: float, predicate) -> tuple | None:
    return next((row for row in rows if row[0] >= after and predicate(row)), None)


def outage(service, cluster, figures, key: str, *, down_s: float, stop, label: str) -> None:
    tenant = service.new_tenant()
    names = [f"ws-{i}" for i in range(WS_PHONES)] + [f"http-{i}" for i in range(HTTP_PHONES)]
    tokens = {n: tenant.person_token(n) for n in names + ["probe"]}
    seen: dict = {}

    async def scenario() -> tuple[list[Phone], Probe]:
        await grant(service, list(tokens.values()))
        phones = [Phone(service, tokens[n], n, http=n.startswith("http"), per_frame=3, period=0.2, window=8)
                  for n in names]
        probe = Probe(service, tokens["probe"])
        probing = asyncio.Event()
        started = time.monotonic()
        runner = asyncio.create_task(run_phones(phones, deadline=started + down_s + 90))
        prober = asyncio.create_task(probe.run(probing))
        await asyncio.sleep(3)
        assert all(p.tally.acked for p in phones), "steady ingest before the outage"
        seen["acked_before_outage"] = sum(p.tally.acked for p in phones)
        seen["stopped_at"] = time.monotonic()
        await asyncio.to_thread(stop, cluster)
        seen["down_from"] = time.monotonic()
        strangers = [tenant.person_token(f"stranger-{i}") for i in range(3)]
        for i, token in enumerate(strangers):  # new streams during the outage
            await asyncio.sleep(down_s / (len(strangers) + 1))
            asyncio.create_task(probe.new_stream(token))
        await asyncio.sleep(max(0.0, seen["stopped_at"] + down_s - time.monotonic()))
        acked_before = {p.person: set(p.acked) for p in phones}
        await asyncio.to_thread(localdb.start, cluster)
        seen["started_at"] = time.monotonic()
        # One consistent snapshot as soon as the database is back: every frame wholly stored or not at all.
        seen["snapshot"] = await asyncio.to_thread(check_all_or_nothing, phones, acked_before,
                                                   service.db.admin_url, tenant.id)
        while not all(p.acked and max(p.acked.values()) > seen["started_at"] for p in phones):
            if runner.done():
                runner.result()
            if time.monotonic() > seen["started_at"] + 60:
                raise AssertionError("ingest did not resume within 60 s of the database's return")
            await asyncio.sleep(0.05)
        seen["streams_resumed"] = time.monotonic() - seen["started_at"]
        await asyncio.sleep(1.5)
        probing.set()
        await prober
        for p in phones:
            p.finish()
        await runner
        seen["elapsed"] = time.monotonic() - started
        return phones, probe

    phones, probe = asyncio.run(scenario())
    tally = total(phones)
    stored = check_exactly_once(phones, service.db.admin_url, tenant.id)
    stopped, down, back = seen["stopped_at"], seen["down_from"], seen["started_at"]
    during = [r for r in probe.posts if down < r[0] and r[0] + r[2] < back]  # asked and answered while down
    ready_down = first(probe.readyz, stopped, lambda r: r[1] == 503)
    ready_up = first(probe.readyz, back, lambda r: r[1] == 200)
    post_up = first(probe.posts, back, lambda r: r[1] == 200)
    ws = [p for p in phones if not p.http]

    section = figures.section(key)
    section.add("outage", label)
    section.add("load", f"{WS_PHONES} WebSocket streams + {HTTP_PHONES} HTTP posters, a frame/batch of 3 readings "
                        "every ~0.2 s each, plus a probe POSTing one reading at a time and polling /readyz")
    section.add("/readyz: first 503 after the stop, s", ready_down[0] - stopped if ready_down else "never")
    section.add("`pg_ctl stop` took, s", down - stopped)
    section.add("/readyz answers while down (status: count)", _statuses(probe.readyz, down, back))
    section.add("POST /v1/readings answers while down (status: count)", _statuses(probe.posts, down, back))
    if during:
        section.add("POST while down: Retry-After / `code` / latency median, max s",
                    f"{sorted({r[3] for r in during})} / {sorted({r[4].get('code') for r in during})} / "
                    f"{statistics.median(r[2] for r in during):.2f}, {max(r[2] for r in during):.2f}")
        section.add("POST while down: detail", during[-1][4].get("detail", "")[:140])
    section.add("errors the streams and posters were answered (code: count)", dict(tally.errors) or "none")
    section.add("retry_after values seen by clients, s", sorted(tally.retry_after) or "none")
    section.add("WebSocket streams closed by the server while down", sum(sum(p.tally.closes.values()) for p in ws))
    if probe.handshakes:
        section.add("new stream opened while down (handshake answer)", sorted({h[1] for h in probe.handshakes}))
    section.add("frames partly stored, in one snapshot at the restart", seen["snapshot"]["frames_partial"])
    section.add("acknowledged frames missing at the restart", seen["snapshot"]["acked_missing"])
    section.add("database back → /readyz 200, s", ready_up[0] - back if ready_up else "never")
    section.add("database back → first POST stored, s", post_up[0] - back if post_up else "never")
    section.add("database back → every stream and poster acknowledged again, s", seen["streams_resumed"])
    section.add("frames/batches sent / resent", f"{tally.sent} / {tally.resent}")
    section.add("readings sent (distinct) / rows stored at the end", f"{stored['sent']} / {stored['rows']}")
    section.add("acknowledged readings lost / readings lost / stored twice",
                f"{stored['lost_acked']} / {stored['lost']} / {stored['duplicates']}")
    section.add("API restarts", 0)

    assert service.process.poll() is None, "the API survived the outage"
    assert ready_down and ready_up and post_up
    assert seen["snapshot"]["frames_partial"] == 0 and seen["snapshot"]["acked_missing"] == 0, seen["snapshot"]
    assert set(_statuses(probe.readyz, down, back)) == {503}
    assert during and all(r[1] == 503 and r[3] and r[4]["code"] == "unavailable" for r in during), during
    assert tally.errors.get("unavailable", 0) > 0, "streams were told the database is unavailable"
    assert set(tally.errors) <= {"unavailable", "http_503"}, tally.errors
    assert all(not p.tally.closes for p in ws), [p.tally.closes for p in ws]
    assert stored["lost_acked"] == stored["lost"] == stored["duplicates"] == stored["unexpected"] == 0, stored


def _statuses(rows, start: float, end: float) -> dict:
    counts: dict = {}
    for row in rows:
        if start < row[0] and row[0] + row[2] < end:
            counts[row[1]] = counts.get(row[1], 0) + 1
    return counts


def test_a_30_s_postgres_outage_answers_503_and_resumes_by_itself(outage_service, cluster, figures):
    outage(outage_service, cluster, figures, "db_outage", down_s=OUTAGE_S, stop=localdb.stop,
           label=f"`pg_ctl stop -m fast`, {OUTAGE_S:.0f} s")


def test_a_postgres_crash_loses_no_acknowledged_reading(outage_service, cluster, figures):
    outage(outage_service, cluster, figures, "db_crash", down_s=CRASH_S, stop=stop_immediately,
           label=f"`pg_ctl stop -m immediate` (crash), {CRASH_S:.0f} s")
