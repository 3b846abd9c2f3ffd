import asyncio, time
from tests.integration.test_late_data import Replay, in_time_order, source_by_device, history  # noqa
import streaming.repository as repo

def test_prof(service, history):
    tz, readings = history
    timings = {}
    for name in ["stream_heads", "readings_between", "save_checkpoints", "prune_checkpoints", "checkpoint_at_or_before", "insert_events", "save_state", "pending_work", "monitored_metrics"]:
        fn = getattr(repo, name)
        async def wrapped(*a, _fn=fn, _n=name, **k):
            t = time.perf_counter(); r = await _fn(*a, **k); timings[_n] = timings.get(_n, 0) + time.perf_counter() - t; return r
        setattr(repo, name, wrapped)
    async def run():
        async with Replay(service, service.new_tenant(), "p", tz) as replay:
            t = time.perf_counter()
            for batch in in_time_order(readings):
                t0=time.perf_counter()
                await replay.deliver(batch, source_by_device)
                timings["ingest"] = timings.get("ingest",0)+time.perf_counter()-t0
                t0=time.perf_counter()
                await replay.work()
                timings["work"] = timings.get("work",0)+time.perf_counter()-t0
            print("total", time.perf_counter() - t)
    asyncio.run(run())
    print(timings)
