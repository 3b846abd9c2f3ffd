"""Event time and late data: one real history gives the same episodes however late its parts arrive.

Each delivery goes through the real ingest writer (consent gate, COPY, the work row with its earliest
time) and the real worker pass (``DetectionConsumer.process_tenant``) against the test database, in the
order a phone and a watch would deliver it; only HTTP is left out, to keep each replay a few seconds.
"""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from app.core.db import Database
from app.summary import summarise
from app.demo.people import real_person
from streaming.consumer import ConsumerConfig, DetectionConsumer
from streaming.ingest import IngestWriter
from streaming.validation import Reading
from tests.support import ROOT

# Beside the checkout (as for the demo), or one folder further up.
DATA = next((d for d in (ROOT.parent / "shared" / "data" / "wearables-covid-dev",
                         ROOT.parent.parent / "shared" / "data" / "wearables-covid-dev")
             if (d / "labels.csv").exists()), ROOT.parent / "shared" / "data" / "wearables-covid-dev")
PARTICIPANT = "A36HR6Y"
HOUR = 3600.0


@pytest.fixture(scope="module")
def history() -> tuple[str, list[tuple[float, str, float]]]:
    """60 days of one real person, per minute, ending now: (epoch seconds, metric, value) in time order."""
    if not (DATA / "labels.csv").exists():
        pytest.fail(f"the development data set is missing: {DATA}")
    person = real_person(DATA, PARTICIPANT, days=60)
    return person.tz, person.readings


class Replay:
    """One person of a fresh tenant, fed through the real ingest writer and worker pass."""

    def __init__(self, service, tenant, name: str, tz: str, config: ConsumerConfig | None = None):
        self.client = client = tenant.client(tenant.person_token(name))
        for data_type in ("heart_rate", "steps"):
            assert client.put(f"/v1/me/consents/{data_type}").status_code < 300
        with service.admin_conn() as conn:
            self.person_id = conn.execute(
                "UPDATE people SET time_zone = %s WHERE tenant_id = %s AND external_id = %s RETURNING id",
                (tz, tenant.id, name)).fetchone()[0]
        self.service, self.tenant_id, self.tz = service, tenant.id, ZoneInfo(tz)
        self.config = config or ConsumerConfig()
        self.passes = 0

    async def __aenter__(self):
        self.db = Database(self.service.db.app_url, min_size=1, max_size=3)
        await self.db.open()
        self.writer = IngestWriter(self.db, writers=1)
        await self.writer.start()
        self.worker = DetectionConsumer(self.db, config=self.config)
        return self

    async def __aexit__(self, *exc):
        await self.writer.stop()
        await self.db.close()

    async def deliver(self, batch: list[tuple[float, str, float]], source_of=lambda metric: "watch") -> None:
        readings = [Reading(datetime.fromtimestamp(ts, timezone.utc), metric, value, None, None, source_of(metric),
                            int(datetime.fromtimestamp(ts, self.tz).utcoffset().total_seconds() // 60))
                    for ts, metric, value in batch]
        for i in range(0, len(readings), 20_000):
            outcomes = await self.writer.store(self.tenant_id, self.person_id, readings[i:i + 20_000])
            assert set(outcomes) <= {"accepted", "duplicate"}, set(outcomes)

    async def work(self) -> None:
        """Worker passes until nothing is waiting (a pass that hits its row limit queues the rest)."""
        for _ in range(100):
            self.passes += 1
            result = await self.worker.process_tenant(self.tenant_id)
            if result.people == 0:
                return
        raise AssertionError("the worker never caught up")

    def events(self, kind: str | None = "health") -> list[tuple]:
        with self.service.admin_conn() as conn:
            return conn.execute(
                """SELECT kind, feature, tier, start_time FROM anomaly_events
                    WHERE person_id = %s AND (%s::text IS NULL OR kind = %s)
                    ORDER BY start_time, feature, tier""", (self.person_id, kind, kind)).fetchall()

    def checkpoint_features(self) -> list[list[str]]:
        from streaming.detection import PersonDetector
        with self.service.admin_conn() as conn:
            rows = conn.execute("SELECT state FROM detector_checkpoints WHERE person_id = %s ORDER BY window_end",
                                (self.person_id,)).fetchall()
        return [PersonDetector.from_bytes(bytes(r[0])).features for r in rows]

    def state(self) -> tuple:
        with self.service.admin_conn() as conn:
            return conn.execute("SELECT readings_seen, late_readings, cursor_time FROM detector_state "
                                "WHERE person_id = %s", (self.person_id,)).fetchone()


def in_time_order(readings, size: int = 10_000):
    for i in range(0, len(readings), size):
        yield readings[i:i + size]


def phone_and_watch(readings, *, seed: int):
    """Arrival order of a phone that uploads its steps every hour and a watch that syncs its heart rate
    every 0-48 hours: ``(arrival time, readings)`` per upload, in arrival order."""
    rng = random.Random(seed)
    steps = [r for r in readings if r[1] == "steps"]
    heart = [r for r in readings if r[1] == "heart_rate"]
    uploads = []
    by_hour: dict[int, list] = {}
    for r in steps:
        by_hour.setdefault(int(r[0] // HOUR), []).append(r)
    for hour, batch in by_hour.items():
        uploads.append(((hour + 1) * HOUR, 1, batch))
    t, i, end = heart[0][0], 0, readings[-1][0] + 1
    while i < len(heart):
        t = min(t + rng.uniform(0, 48) * HOUR, end)
        j = i
        while j < len(heart) and heart[j][0] <= t:
            j += 1
        if j > i:
            uploads.append((t, 0, heart[i:j]))
        i = j
    uploads.sort(key=lambda u: (u[0], u[1]))
    return uploads


def shuffled_within_a_day(readings, *, seed: int, size: int = 2_000):
    """Each day's readings in a random order, in uploads of ``size``."""
    rng = random.Random(seed)
    start = readings[0][0]
    days: dict[int, list] = {}
    for r in readings:
        days.setdefault(int((r[0] - start) // (24 * HOUR)), []).append(r)
    for day in sorted(days):
        batch = days[day][:]
        rng.shuffle(batch)
        yield from in_time_order(batch, size)


def source_by_device(metric: str) -> str:
    return "phone" if metric == "steps" else "watch"


@pytest.fixture(scope="module")
def reference(service, history):
    """The history delivered in time order: the episodes every other delivery must reproduce."""
    tz, readings = history

    async def replay_in_order():
        async with Replay(service, service.new_tenant(), "in-order", tz) as replay:
            for batch in in_time_order(readings):
                await replay.deliver(batch, source_by_device)
                await replay.work()
            return replay.events(), replay.events(None), replay.state()

    events, all_events, state = asyncio.run(replay_in_order())
    assert [e for e in events if e[2] == "alert"], "the reference history should raise an alert"
    return events, all_events, state


async def test_phone_hourly_and_watch_syncing_up_to_two_days_late_give_the_same_episodes(
        service, history, reference):
    tz, readings = history
    events, all_events, (seen, late, cursor) = reference
    async with Replay(service, service.new_tenant(), "synced", tz) as replay:
        waiting = []
        for _arrival, device, batch in phone_and_watch(readings, seed=5):
            waiting.append(batch)
            if device == 0 or len(waiting) == 6:
                # The uploads since the last pass commit together (group commit), then the worker wakes:
                # on each watch sync, and at least every six phone uploads.
                await asyncio.gather(*(replay.deliver(b, source_by_device) for b in waiting))
                waiting = []
                await replay.work()
        await asyncio.gather(*(replay.deliver(b, source_by_device) for b in waiting))
        await replay.work()
        assert replay.events() == events
        assert replay.events(None) == all_events  # data gaps too: a watch behind is not a gap
        assert replay.state() == (seen, 0, cursor)


async def test_a_history_shuffled_within_each_day_gives_the_same_episodes(service, history, reference):
    tz, readings = history
    events, _all, (seen, late, cursor) = reference
    async with Replay(service, service.new_tenant(), "shuffled", tz) as replay:
        for batch in shuffled_within_a_day(readings, seed=9):
            await replay.deliver(batch, source_by_device)
            await replay.work()
        assert replay.events() == events
        assert replay.state() == (seen, 0, cursor)


async def test_steps_up_to_date_then_the_watchs_last_four_days_give_the_same_alert(service, history, reference):
    tz, readings = history
    events = reference[0]
    # The history up to three days after its first alert began: the nights that raise it are among the
    # watch's last four days.
    first_alert = min(e[3] for e in events if e[2] == "alert").timestamp()
    upto = [r for r in readings if r[0] < first_alert + 3 * 24 * HOUR]
    cut = upto[-1][0] - 4 * 24 * HOUR
    assert cut < first_alert
    async with Replay(service, service.new_tenant(), "in-time", tz) as in_time:
        for batch in in_time_order(upto):
            await in_time.deliver(batch, source_by_device)
            await in_time.work()
        expected = in_time.events()
    assert [e for e in expected if e[2] == "alert"]
    async with Replay(service, service.new_tenant(), "late-watch", tz) as replay:
        for batch in in_time_order([r for r in upto if r[0] < cut]):
            await replay.deliver(batch, source_by_device)
            await replay.work()
        await replay.deliver([r for r in upto if r[0] >= cut and r[1] == "steps"], source_by_device)
        await replay.work()
        await replay.deliver([r for r in upto if r[0] >= cut and r[1] == "heart_rate"], source_by_device)
        await replay.work()
        assert replay.events() == expected
        assert replay.state()[:2] == in_time.state()[:2]


async def test_readings_older_than_the_allowed_lateness_are_stored_and_counted_not_scored(service, history):
    tz, readings = history
    two_weeks = [r for r in readings if r[0] >= readings[-1][0] - 14 * 24 * HOUR]
    old = [r for r in two_weeks if r[0] < two_weeks[-1][0] - 3 * 24 * HOUR and r[1] == "steps"]
    async with Replay(service, service.new_tenant(), "too-late", tz) as replay:
        old_set = set(old)
        await replay.deliver([r for r in two_weeks if r not in old_set], source_by_device)
        await replay.work()
        seen, late, cursor = replay.state()
        assert late == 0
        # A second phone uploads its old steps after a trip: stored, counted, not scored.
        await replay.deliver(old, lambda metric: "old-phone")
        await replay.work()
        assert replay.state() == (seen, len(old), cursor)
    with service.admin_conn() as conn:
        stored = conn.execute("SELECT count(*) FROM readings WHERE person_id = %s AND source = 'old-phone'",
                              (replay.person_id,)).fetchone()[0]
    assert stored == len(old)
    status = summarise(service.db.app_url, replay.tenant_id)  # what `beidou status` prints
    assert f"readings too late to score  {len(old):,}" in status.lines()


async def test_steps_from_phone_and_watch_count_once(service, history):
    """Both devices send the same steps: per hour only one of them counts, so the days are not doubled
    and the episodes are those of one device."""
    tz, readings = history
    three_weeks = [r for r in readings if r[0] >= readings[-1][0] - 21 * 24 * HOUR]
    steps = [r for r in three_weeks if r[1] == "steps"]
    hourly: dict[float, float] = {}
    for ts, _metric, value in steps:  # the phone's own count: one total per hour
        hourly[ts // HOUR * HOUR] = hourly.get(ts // HOUR * HOUR, 0.0) + value
    phone = [(ts, "steps", value) for ts, value in sorted(hourly.items())]
    async with Replay(service, service.new_tenant(), "one-device", tz) as alone:
        await alone.deliver(three_weeks)
        await alone.work()
    async with Replay(service, service.new_tenant(), "two-devices", tz) as both:
        await both.deliver(phone, lambda metric: "phone")
        await both.deliver(three_weeks, lambda metric: "watch")
        await both.work()
        assert both.events(None) == alone.events(None)
        # As many readings scored as from the watch alone: in an hour with a single watch step reading the
        # phone's total stands in for it, one for one.
        assert both.state() == alone.state()


async def test_withdrawn_consent_is_forgotten_by_the_checkpoints_too(service, history):
    from streaming.detection import PersonDetector
    tz, readings = history
    three_weeks = [r for r in readings if r[0] >= readings[-1][0] - 21 * 24 * HOUR]
    async with Replay(service, service.new_tenant(), "withdraws", tz) as replay:
        await replay.deliver(three_weeks, source_by_device)
        await replay.work()
        assert "overnight_rhr" in replay.checkpoint_features()[-1]
        client = replay.client
        assert client.delete("/v1/me/consents/heart_rate").status_code < 300
        await replay.worker.drop_metric(replay.tenant_id, replay.person_id, "heart_rate")
        features = replay.checkpoint_features()
        assert features and all("overnight_rhr" not in f for f in features)
        # Late steps within the lateness re-score from a checkpoint: heart rate stays forgotten.
        await replay.deliver([(three_weeks[-1][0] - 3 * HOUR, "steps", 5.0)], lambda metric: "phone-2")
        await replay.work()
        with service.admin_conn() as conn:
            state = conn.execute("SELECT state FROM detector_state WHERE person_id = %s",
                                 (replay.person_id,)).fetchone()[0]
        assert "overnight_rhr" not in PersonDetector.from_bytes(bytes(state)).features



async def test_a_rescore_request_reads_the_readings_as_they_are_now(service, history):
    """What a record sync does after replacing or deleting readings: the worker scores them again."""
    from streaming import repository
    tz, readings = history
    three_weeks = [r for r in readings if r[0] >= readings[-1][0] - 21 * 24 * HOUR]
    since = datetime.fromtimestamp(three_weeks[-1][0] - 20 * HOUR, timezone.utc)
    # A small pass (as under load): the history and the re-score each take several passes.
    small = ConsumerConfig(max_readings_per_pass=1_000)
    async with Replay(service, service.new_tenant(), "withdrawn-record", tz, small) as replay:
        await replay.deliver(three_weeks, source_by_device)
        await replay.work()
        seen, _late, cursor = replay.state()
        with service.admin_conn() as conn:  # the record that owned the watch's last 20 hours is deleted
            deleted = conn.execute("DELETE FROM readings WHERE person_id = %s AND metric = 'heart_rate' "
                                   "AND time >= %s", (replay.person_id, since)).rowcount
        assert deleted > 0
        async with replay.db.transaction(tenant_id=replay.tenant_id) as conn:
            await repository.request_rescore(conn, tenant_id=replay.tenant_id, person_id=replay.person_id,
                                             earliest=since)
        result = await replay.worker.process_tenant(replay.tenant_id)
        assert result.rescored
        assert result.more  # the re-score reads more than one pass takes; the rest is queued
        await replay.work()
        assert replay.state() == (seen - deleted, 0, cursor)
