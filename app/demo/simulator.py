"""Simulated phones and a simulated care agent, talking to the service only through its public API.

Each phone grants consent the way the app would, registers for pushes, delivers its person's readings at the
accelerated clock, and answers the care team's check-ins it receives through the FCM emulator. Generated
people stream over the WebSocket (resending unacknowledged frames after a reconnect); the real people's phones
forward their history as Health Connect records to ``POST /v1/sync/health-connect``, the shapes
:mod:`app.sync_client` sends: a ``HeartRateRecord`` with per-minute samples for each hour of a batch and a
``StepsRecord`` per minute interval (a failed request is sent again unchanged: a resend is ``unchanged``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import websockets

from app.demo.people import SimPerson

log = logging.getLogger(__name__)

HEALTH_CONNECT_APP = "com.fitbit.FitbitMobile"  # the app that wrote the real people's records (a Fitbit data set)


@dataclass
class Clock:
    """Simulated time: starts at ``start`` and runs ``speed`` times faster than the wall clock, never past now."""

    start: float
    speed: float
    t0: float = field(default_factory=time.monotonic)

    def now(self) -> float:
        return min(time.time(), self.start + (time.monotonic() - self.t0) * self.speed)


@dataclass
class Stats:
    readings_acked: int = 0
    frames_resent: int = 0
    pushes_seen: int = 0
    replies: int = 0
    streaming: set = field(default_factory=set)


class Phone:
    def __init__(self, person: SimPerson, token: str, base_url: str, emulator, clock: Clock, stats: Stats,
                 *, rng: random.Random, frame_every_s: float = 0.5, max_frame: int = 2000):
        self.person = person
        self.token = token
        self.base_url = base_url
        self.push_token = f"demo-phone-{person.name}"
        self.emulator = emulator
        self.clock = clock
        self.stats = stats
        self.rng = rng
        self.frame_every_s = frame_every_s
        self.max_frame = max_frame
        self.zone = ZoneInfo(person.tz)
        self.next_index = 0
        self.unacked: dict[int, list[dict]] = {}
        self.seq = 0
        self.answered: set[str] = set()

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=30) as http:
            await self._set_up(http)
            deliver = self._sync_records(http) if self.person.via == "health-connect" else self._stream()
            await asyncio.gather(deliver, self._answer_pushes(http))

    async def _set_up(self, http: httpx.AsyncClient) -> None:
        await http.patch("/v1/me", json={"time_zone": self.person.tz, "language": self.rng.choice(["en", "zh-CN"])})
        # Accelerated time and the wall clock disagree about night: these phones take check-ins any time.
        await http.put("/v1/me/quiet-hours", json={"start": "00:00", "end": "00:00"})
        for metric in ("heart_rate", "steps"):
            for purpose in ("monitoring", "outreach"):
                response = await http.put(f"/v1/me/consents/{metric}/{purpose}",
                                          json={"notice_version": "demo-2026.11", "app": "beidou-demo/1.0"})
                if response.status_code in (404, 405) and purpose == "monitoring":
                    await http.put(f"/v1/me/consents/{metric}")  # servers with monitoring-only consent routes
        await http.post("/v1/me/devices", json={"token": self.push_token, "platform": "android",
                                                 "app_version": "demo-1.0"})

    def _due(self) -> list[dict]:
        now = self.clock.now()
        out = []
        readings = self.person.readings
        while self.next_index < len(readings) and readings[self.next_index][0] <= now and len(out) < self.max_frame:
            ts, metric, value = readings[self.next_index]
            stamp = datetime.fromtimestamp(ts, self.zone).isoformat()
            out.append({"metric": metric, "time": stamp, "value": value, "source": "demo-watch"})
            self.next_index += 1
        return out

    def _health_connect(self, readings: list[dict]) -> dict:
        """A batch as Health Connect changes: per-minute heart rate grouped into one record per hour, steps as
        one-minute interval records. Record ids are derived from the times, so a resend is the same records."""
        changes: list[dict] = []
        modified = datetime.now(timezone.utc).isoformat()
        origin = {"packageName": HEALTH_CONNECT_APP}
        hours: dict[str, list[dict]] = {}
        for r in readings:
            if r["metric"] == "heart_rate":
                hours.setdefault(r["time"][:13], []).append(r)
            elif r["metric"] == "steps":
                start = datetime.fromisoformat(r["time"])
                end = datetime.fromtimestamp(start.timestamp() + 60, start.tzinfo)
                changes.append({"upsertionChange": {"record": {
                    "recordType": "StepsRecord",
                    "metadata": {"id": f"{self.person.name}-steps-{int(start.timestamp())}", "dataOrigin": origin,
                                 "lastModifiedTime": modified},
                    "startTime": start.isoformat(), "startZoneOffset": start.isoformat()[-6:],
                    "endTime": end.isoformat(), "endZoneOffset": end.isoformat()[-6:], "count": int(r["value"])}}})
        for samples in hours.values():
            first, last = datetime.fromisoformat(samples[0]["time"]), datetime.fromisoformat(samples[-1]["time"])
            changes.append({"upsertionChange": {"record": {
                "recordType": "HeartRateRecord",
                "metadata": {"id": f"{self.person.name}-hr-{int(first.timestamp())}", "dataOrigin": origin,
                             "lastModifiedTime": modified},
                "startTime": first.isoformat(), "startZoneOffset": first.isoformat()[-6:],
                "endTime": last.isoformat(), "endZoneOffset": last.isoformat()[-6:],
                "samples": [{"time": s["time"], "beatsPerMinute": s["value"]} for s in samples]}}})
        return {"changes": changes}

    async def _sync_records(self, http: httpx.AsyncClient) -> None:
        """Forward the history as the Android app does after reading Health Connect: one request at a time,
        the same body again until it is answered."""
        delay = 0.5
        while True:
            readings = self._due()
            if not readings:
                if self.next_index >= len(self.person.readings):
                    self.stats.streaming.discard(self.person.name)
                    await asyncio.sleep(5)
                else:
                    await asyncio.sleep(self.frame_every_s)
                continue
            body = self._health_connect(readings)
            self.stats.streaming.add(self.person.name)
            while True:
                try:
                    response = await http.post("/v1/sync/health-connect", json=body)
                    if response.status_code == 200:
                        answer = response.json()
                        self.stats.readings_acked += sum(r.get("readings") or 0 for r in answer["results"])
                        if answer["rejected"]:
                            log.info("demo.phone.rejected person=%s items=%s", self.person.name, answer["rejected"])
                        break
                    if response.status_code < 500 and response.status_code != 429:
                        log.warning("demo.phone.sync_refused person=%s status=%s body=%s", self.person.name,
                                    response.status_code, response.text[:300])
                        break
                except httpx.HTTPError as exc:
                    log.info("demo.phone.sync_retry person=%s error=%s", self.person.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            delay = 0.5

    async def _stream(self) -> None:
        delay = 0.5
        while True:
            try:
                async with websockets.connect(self.base_url.replace("http", "ws", 1) + "/v1/stream",
                                              additional_headers=self.headers, open_timeout=30) as ws:
                    delay = 0.5
                    for seq, frame in sorted(self.unacked.items()):  # resend what was never acknowledged
                        await ws.send(json.dumps({"seq": seq, "readings": frame}))
                        self.stats.frames_resent += 1
                    await asyncio.gather(self._send_frames(ws), self._read_acks(ws))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the service restarted or the network blinked: reconnect
                log.info("demo.phone.reconnect person=%s error=%s", self.person.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _send_frames(self, ws) -> None:
        while True:
            readings = self._due()
            if readings and len(self.unacked) < 16:
                self.seq += 1
                self.unacked[self.seq] = readings
                self.stats.streaming.add(self.person.name)
                await ws.send(json.dumps({"seq": self.seq, "readings": readings}))
            elif not readings and self.next_index >= len(self.person.readings):
                self.stats.streaming.discard(self.person.name)
                await asyncio.sleep(5)
            else:
                await asyncio.sleep(self.frame_every_s)

    async def _read_acks(self, ws) -> None:
        async for message in ws:
            m = json.loads(message)
            if m.get("type") == "ack" and m.get("seq") in self.unacked:
                self.unacked.pop(m["seq"])
                self.stats.readings_acked += m["accepted"] + m["duplicate"]
            elif m.get("type") == "error" and m.get("code") == "unavailable":
                await asyncio.sleep(m.get("retry_after", 5))
                frame = self.unacked.get(m["seq"])
                if frame:
                    await ws.send(json.dumps({"seq": m["seq"], "readings": frame}))

    async def _answer_pushes(self, http: httpx.AsyncClient) -> None:
        """What a person does with a check-in: opens it a little later and answers."""
        while True:
            await asyncio.sleep(1.0)
            for record in self.emulator.messages(self.push_token):
                message_id = record["message"].get("data", {}).get("message_id")
                if record["outcome"] != "delivered" or not message_id or message_id in self.answered:
                    continue
                self.answered.add(message_id)
                self.stats.pushes_seen += 1
                await asyncio.sleep(self.rng.uniform(1, 4))
                shown = await http.get(f"/v1/me/messages/{message_id}")
                if shown.status_code != 200:
                    continue
                answer = "help" if "ill" in self.person.story or "COVID" in self.person.story else "fine"
                if self.rng.random() < 0.2:
                    answer = "call"
                if (await http.post(f"/v1/me/messages/{message_id}/reply", json={"answer": answer})).status_code == 200:
                    self.stats.replies += 1


class CareAgent:
    """A care agent working the queue: claims new alerts, reaches out, and closes the ones people answered."""

    def __init__(self, base_url: str, token: str, *, rng: random.Random, poll_s: float = 2.0):
        self.base_url = base_url
        self.token = token
        self.rng = rng
        self.poll_s = poll_s
        self.reached: set[str] = set()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"},
                                     timeout=30) as http:
            # The agent's own phone, so escalations and "I need help" answers reach them.
            await http.post("/v1/care/me/devices", json={"token": "demo-agent-phone", "platform": "android"})
            await http.put("/v1/care/me/on-duty", json={"on_duty": True})
            while True:
                await asyncio.sleep(self.poll_s)
                try:
                    await self._work(http)
                except httpx.HTTPError as exc:
                    log.info("demo.agent.retry error=%s", exc)

    async def _work(self, http: httpx.AsyncClient) -> None:
        kinds = ["health", "data_gap", "help_request"]
        page = (await http.get("/v1/care/alerts", params={"kind": kinds, "limit": 100})).json()
        for alert in page.get("alerts", []):
            alert_id = alert["id"]
            if alert["status"] == "open":
                await http.post(f"/v1/care/alerts/{alert_id}/claim", json={"note": "looking at it"})
            if alert_id not in self.reached and alert["status"] in ("open", "claimed"):
                self.reached.add(alert_id)
                response = await http.post(f"/v1/care/alerts/{alert_id}/reach-out")
                if response.status_code == 409:
                    await http.post(f"/v1/care/alerts/{alert_id}/contact", json={"note": "phoned instead"})
            elif alert["urgent"] and alert["status"] == "claimed":
                await http.post(f"/v1/care/alerts/{alert_id}/contact", json={"note": "called the member back"})
            elif alert["urgent"] and alert["status"] == "contacted":
                await http.post(f"/v1/care/alerts/{alert_id}/resolve",
                                json={"reason": "needed_help", "note": "arranged a doctor's visit"})
