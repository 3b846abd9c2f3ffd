"""Runs the demo: the service with its worker and scheduler, the FCM emulator, phones and a care agent."""
from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from app.core.settings import PROJECT_ROOT, Settings
from app.demo.people import SimPerson, real_person, synthetic_person
from app.demo.simulator import CareAgent, Clock, Phone, Stats

log = logging.getLogger(__name__)

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "wearables-covid-dev"
TENANT_NAME = "Demo Insurance"


@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    speed: float = 20_000.0
    days: int = 40
    end: str = "last"
    synthetic: int = 12
    real: list[str] = field(default_factory=lambda: ["all"])
    data_dir: Path | None = None
    duration: float | None = None
    fcm_port: int = 8790
    summary_json: Path | None = None
    seed: int = 2026


def build_people(opts: DemoOptions, out=sys.stderr) -> list[SimPerson]:
    rng = random.Random(opts.seed)
    people: list[SimPerson] = []
    folder = opts.data_dir or DEFAULT_DATA
    if opts.real and (folder / "labels.csv").exists():
        ids = sorted(p.name.split("_")[0] for p in folder.glob("*_hr.csv*"))
        wanted = ids if "all" in opts.real else [i for i in ids if i in opts.real]
        for participant in wanted:
            print(f"  loading {participant} (real history) ...", file=out, flush=True)
            people.append(real_person(folder, participant, days=opts.days, end=opts.end))
    elif opts.real and opts.real != ["all"]:
        raise FileNotFoundError(f"no labelled wearable data in {folder}: pass --data-dir")
    for i in range(opts.synthetic):
        story = rng.random()
        people.append(synthetic_person(f"member-{i + 1:03d}", seed=rng.randrange(1 << 30), days=opts.days,
                                       ill=story < 0.35, gap=0.35 <= story < 0.45))
    return people


def run_demo(settings: Settings, target, opts: DemoOptions) -> dict:
    """Run until Ctrl-C (or ``opts.duration`` seconds); returns the closing summary."""
    import uvicorn

    from alerts.push.emulator import FcmEmulator
    from app import directory
    from app.api.factory import create_app
    from app.api.ws_server import uvicorn_ws_options
    from app.auth import issue_token
    from app.summary import summarise

    out = sys.stderr
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print("==> Preparing simulated policyholders", file=out, flush=True)
    people = build_people(opts, out)
    emulator = FcmEmulator(opts.host, opts.fcm_port).start()
    settings = settings.model_copy(update={"fcm_endpoint": emulator.url, "fcm_project_id": "beidou-demo",
                                           "outreach_weekly_cap": 100, "push_backoff_base_s": 0.5})
    tenant_id = directory.add_tenant(target.admin_url, TENANT_NAME, "Asia/Shanghai")
    agent_token = issue_token(settings, tenant_id=tenant_id, subject="agent-demo", role="care_agent")
    viewer_token = issue_token(settings, tenant_id=tenant_id, subject="you", role="care_supervisor")
    app = create_app(settings, target.url, embedded_worker=True, owner_url=target.maintenance_url)
    server = uvicorn.Server(uvicorn.Config(app, host=opts.host, port=opts.port, **uvicorn_ws_options(settings.ws_compression),
                                           log_level="warning", access_log=False, lifespan="on"))
    base_url = f"http://{opts.host}:{opts.port}"
    stats = Stats()
    started = time.monotonic()

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving  # raises what stopped it (a port in use, say)
                return
            await asyncio.sleep(0.05)
        start = min(p.readings[0][0] for p in people if p.readings)
        clock = Clock(start=start, speed=opts.speed)
        print(f"\n  Care page:     {base_url}/care\n  Outcomes:      {base_url}/care/outcomes\n"
              f"  Staff token:   {viewer_token}\n"
              f"  API docs:      {base_url}/docs\n  FCM emulator:  {emulator.url}/emulator/messages\n"
              f"  Simulated:     {len(people)} people — " + ", ".join(f"{p.name}: {p.story}" for p in people[:6])
              + (" …" if len(people) > 6 else "") + f"\n  Speed:         {opts.speed:,.0f}× "
              f"({opts.days} days of history in about {opts.days * 86400 / opts.speed / 60:.1f} min)\n"
              "  Press Ctrl-C to stop.\n", file=out, flush=True)
        rng = random.Random(opts.seed)
        tasks = [asyncio.create_task(Phone(p, issue_token(settings, tenant_id=tenant_id, subject=p.name,
                                                          role="policyholder"), base_url, emulator, clock, stats,
                                           rng=random.Random(rng.random())).run()) for p in people]
        tasks.append(asyncio.create_task(CareAgent(base_url, agent_token, rng=rng).run()))
        tasks.append(asyncio.create_task(_progress(clock, stats, target.url, tenant_id, started)))
        try:
            if opts.duration:
                await asyncio.wait([serving], timeout=opts.duration)
            else:
                await serving
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    result = summarise(target.url, tenant_id).as_dict() | {
        "pushes_delivered_to_emulator": sum(1 for m in emulator.messages() if m["outcome"] == "delivered"),
        "frames_resent": stats.frames_resent, "seconds": round(time.monotonic() - started, 1)}
    print("\n==> Summary\n" + "\n".join("  " + line for line in summarise(target.url, tenant_id).lines()), file=out)
    if opts.summary_json:
        opts.summary_json.write_text(json.dumps(result, indent=2, default=str))
    return result


async def _progress(clock: Clock, stats: Stats, url: str, tenant_id, started: float, every_s: float = 5.0) -> None:
    from app.summary import summarise
    while True:
        await asyncio.sleep(every_s)
        try:
            s = await asyncio.to_thread(summarise, url, tenant_id)
        except Exception as exc:  # the progress line must never stop the demo
            log.info("demo.progress_failed error=%s", exc)
            continue
        sim = datetime.fromtimestamp(clock.now(), timezone.utc).strftime("%Y-%m-%d %H:%M")
        lat = f"{s.latency_p50_s:.1f}/{s.latency_p99_s:.1f} s" if s.latency_p50_s is not None else "n/a"
        print(f"[{time.monotonic() - started:6.0f} s] sim {sim} UTC | streaming {len(stats.streaming):>3} | "
              f"stored {s.readings_stored:>10,} | alerts {s.alerts_open} open, {s.alerts_resolved} resolved | "
              f"pushes {s.pushes_sent} | answers {s.replies} | reading→alert p50/p99 {lat}",
              file=sys.stderr, flush=True)
