"""The ``beidou`` command."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from uuid import UUID

import click

from app.core.settings import Settings, get_settings

SETTINGS_HELP = """
\b
Configuration comes from environment variables (or a file named by BEIDOU_CONFIG_FILE, KEY=value lines):
""" + "\n".join(
    f"  {(f.validation_alias or 'BEIDOU_' + name.upper())}: {f.description}"
    for name, f in Settings.model_fields.items()
)


@click.group(help="Health Beidou: consent-first health monitoring for insurers.\n" + SETTINGS_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def main() -> None:
    from app.core.observability import configure_logging
    configure_logging(get_settings().log_level)


def _target(start_local: bool = True):
    from app.core import localdb, runtime
    try:
        return runtime.resolve(get_settings(), start_local=start_local)
    except localdb.LocalClusterError as exc:
        raise click.ClickException(str(exc)) from None


def _stop_local(target) -> None:
    """Stop the local cluster if this command started it (Ctrl-C leaves nothing running behind)."""
    if target.started_local:
        from app.core import localdb
        click.echo("stopping the local database", err=True)
        localdb.stop(target.local)


def _upgrade(admin_url: str) -> None:
    from app.core import migrate
    try:
        ran = migrate.upgrade(admin_url)
    except migrate.MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    for m in ran:
        click.echo(f"applied {m.path.name}", err=True)


def api_processes(workers: int | None) -> int:
    """How many API processes to run: ``--workers``, else BEIDOU_API_WORKERS, else one per CPU core."""
    import os
    count = workers if workers is not None else get_settings().api_workers
    return count if count > 0 else (os.cpu_count() or 1)


def _serve_api(host: str, port: int, url: str, *, workers: int = 1, embedded_worker: bool = False,
               owner_url: str | None = None) -> None:
    """Serve the API on one port from ``workers`` processes (uvicorn's supervisor shares the listening socket).

    Every process builds its own app from the environment (`create_app_from_env`); what crosses processes
    (consent pushes to open streams, the care page's live feed, detection work) goes through the database's
    LISTEN/NOTIFY, so a client may land on any of them."""
    import os

    import uvicorn

    from app.api.factory import SERVE_DATABASE_URL, SERVE_EMBEDDED_WORKER, SERVE_OWNER_URL
    from app.api.ws_server import uvicorn_ws_options
    settings = get_settings()
    os.environ[SERVE_DATABASE_URL] = url
    os.environ[SERVE_EMBEDDED_WORKER] = "1" if embedded_worker else "0"
    if embedded_worker and owner_url:
        os.environ[SERVE_OWNER_URL] = owner_url
    uvicorn.run("app.api.factory:create_app_from_env", factory=True, workers=workers, host=host, port=port,
                **uvicorn_ws_options(settings.ws_compression),
                log_level=settings.log_level.lower(), access_log=False, proxy_headers=False)


@main.command(help="Start everything in one process: the database (local unless DATABASE_URL is set), migrations, "
                   "the API and the worker.")
@click.option("--host", default=None, help="Listen address (default BEIDOU_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default BEIDOU_PORT, 8000).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="API processes on the port; each also runs a detection worker (several cooperate) and the "
                   "scheduler (lock-guarded: one is active).")
@click.option("--demo", "with_demo", is_flag=True,
              help="Also simulate an insurer's policyholders and care agent (see `beidou demo --help`).")
@click.pass_context
def up(ctx: click.Context, host: str | None, port: int | None, workers: int, with_demo: bool) -> None:
    if with_demo:
        ctx.invoke(demo, host=host, port=port)
        return
    settings = get_settings()
    target = _target()
    _upgrade(target.admin_url)
    host, port = host or settings.host, port or settings.port
    click.echo(f"Health Beidou on http://{host}:{port}  (care page: /care, OpenAPI: /docs)", err=True)
    try:
        _serve_api(host, port, target.url, workers=max(1, workers), embedded_worker=True,
                   owner_url=target.maintenance_url)
    finally:
        _stop_local(target)


@main.command(help="The whole loop, live: the service, the FCM emulator, simulated policyholders streaming real and "
                   "generated wearable histories at accelerated time over the WebSocket API, and a simulated care "
                   "agent. Prints the care page's URL and a staff token; Ctrl-C stops and prints a summary.")
@click.option("--host", default=None, help="Listen address (default BEIDOU_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default BEIDOU_PORT).")
@click.option("--speed", type=float, default=20_000, show_default=True, help="Simulated seconds per real second.")
@click.option("--days", type=int, default=40, show_default=True, help="Days of history each person replays.")
@click.option("--end", default="last", show_default=True,
              help="Where a real history's replay ends: 'last' (its last day) or 'onset+N' (N days after the onset).")
@click.option("--synthetic", type=int, default=12, show_default=True, help="Generated people.")
@click.option("--real", default="all", show_default=True,
              help="Comma-separated participant ids of the labelled data set to replay ('all', or '' for none).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of labelled wearable data (default ../shared/data/wearables-covid-dev).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--fcm-port", type=int, default=8790, show_default=True, help="Port of the FCM emulator.")
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the closing summary to this file.")
def demo(host, port, speed, days, end, synthetic, real, data_dir, duration, fcm_port, summary_json) -> None:
    from app.demo.runner import DemoOptions, run_demo
    settings = get_settings()
    target = _target()
    _upgrade(target.admin_url)
    opts = DemoOptions(host=host or settings.host, port=port or settings.port, speed=speed, days=days, end=end,
                       synthetic=synthetic, real=[r for r in real.split(",") if r], data_dir=data_dir,
                       duration=duration, fcm_port=fcm_port, summary_json=summary_json)
    try:
        run_demo(settings, target, opts)
    finally:
        _stop_local(target)


@main.command(help="Print what the service has done for an insurer: people streaming, readings stored, alerts, "
                   "pushes and the anomalous-reading-to-alert latency.")
@click.option("--tenant", "tenant_", default="Demo Insurance", show_default=True, help="Tenant id or name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(tenant_: str, as_json: bool) -> None:
    from app.summary import summarise
    summary = summarise(_target().url, _tenant_id(tenant_))
    click.echo(json.dumps(summary.as_dict(), indent=2) if as_json else "\n".join(summary.lines()))


@main.command("sync-client", help="Replay a folder of platform-shaped change batches (Health Connect getChanges "
                                   "pages, HealthKit anchored-query results, Huawei sample sets, FHIR Observations or "
                                   "batch Bundles; *.json in name order) against a running service, with progress.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The service's base URL.")
@click.option("--token", envvar="BEIDOU_TOKEN", required=True, help="The policyholder's bearer token "
              "(or BEIDOU_TOKEN).")
def sync_client(folder: Path, url: str, token: str) -> None:
    from app.sync_client import replay
    try:
        done = replay(folder, url=url, token=token, progress=click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    totals = ", ".join(f"{k} {v}" for k, v in sorted(done.statuses.items())) or "nothing"
    click.echo(f"{done.files} batches in {done.seconds:.1f} s: {totals}")
    if done.failures:
        raise click.ClickException(f"{len(done.failures)} batches failed")


@main.command(help="Run only the HTTP/WebSocket API: several processes sharing one port.")
@click.option("--host", default=None, help="Listen address (default BEIDOU_HOST).")
@click.option("--port", type=int, default=None, help="Listen port (default BEIDOU_PORT).")
@click.option("--workers", type=int, default=None,
              help="API processes (default BEIDOU_API_WORKERS; 0 or unset: one per CPU core).")
def api(host: str | None, port: int | None, workers: int | None) -> None:
    settings = get_settings()
    _serve_api(host or settings.host, port or settings.port, _target().url, workers=api_processes(workers))


@main.command(help="Run the background worker: detection, alerting and push sending (run one or more; they share "
                   "the work by person, fresh readings first).")
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes to run (use the machine's cores; each person is processed by one at a time).")
def worker(processes: int) -> None:
    import asyncio

    from app.worker import run_worker, run_worker_processes
    url = _target().url
    if processes > 1:
        run_worker_processes(url, processes)
        return
    try:
        asyncio.run(run_worker(url))
    except KeyboardInterrupt:
        pass


@main.command(help="Run the scheduler: escalation timers, data-gap checks, packing history past the hot window, the hourly "
                   "chart roll-up, the daily break-the-glass digest, and (given the schema owner's URL: "
                   "DATABASE_ADMIN_URL, or the local cluster) compacting closed hot days' indexes. Run ONE per "
                   "deployment (jobs are lock-guarded, so a second one is harmless but idle).")
def scheduler() -> None:
    import asyncio

    from app.scheduler import run_scheduler
    target = _target()
    try:
        asyncio.run(run_scheduler(target.url, hot_days=get_settings().hot_days, owner_url=target.maintenance_url))
    except KeyboardInterrupt:
        pass


@main.group(help="Database: migrations and the private local cluster.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply pending migrations from migrations/ (each once, checksummed).")
def db_upgrade() -> None:
    _upgrade(_target().admin_url)


@db.command("status", help="List migrations and whether each is applied.")
def db_status() -> None:
    from app.core import migrate
    for m, done in migrate.status(_target().admin_url):
        click.echo(f"{'applied' if done else 'pending':8} {m.path.name}")


@db.command("schema", help="Print the schema a fresh migration run produces (normalised pg_dump), as committed in "
                          "migrations/schema.sql: beidou db schema > migrations/schema.sql")
def db_schema() -> None:
    from app.core import schema
    click.echo(schema.fresh(_target().admin_url), nl=False)


@db.command("compact", help="Rebuild the indexes of closed hot day chunks that readings arriving interleaved left "
                            "loose (REINDEX INDEX CONCURRENTLY, as the schema owner, DATABASE_ADMIN_URL: reads and "
                            "writes go on). The scheduler does this hourly when it has the owner's URL, skipping "
                            "indexes under 1 MB; this runs it once, for indexes of every size.")
@click.option("--settle-hours", type=click.FloatRange(min=0), default=None,
              help="Only chunks whose day ended at least this long ago (default: the scheduler's, 6 hours).")
def db_compact(settle_hours: float | None) -> None:
    import asyncio
    from datetime import timedelta

    import psycopg

    from streaming import history
    kwargs = {} if settle_hours is None else {"settle": timedelta(hours=settle_hours)}
    try:
        result = asyncio.run(history.compact_hot_indexes(_target().admin_url, hot_days=get_settings().hot_days,
                                                         min_bytes=0, **kwargs))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise click.ClickException(f"only the schema owner may rebuild the hot chunks' indexes: set "
                                   f"DATABASE_ADMIN_URL to the owner's URL ({str(exc).strip()})") from exc
    if result.running_elsewhere:
        raise click.ClickException("a compaction is already running (the scheduler's, or another `db compact`)")
    for name in result.leftovers:
        click.echo(f"dropped an interrupted rebuild's index {name}")
    click.echo(f"rebuilt {result.indexes} index(es): {result.bytes_before / 1e6:.1f} MB -> "
               f"{result.bytes_after / 1e6:.1f} MB")


@db.command("start", help="Start the private local cluster (no-op with DATABASE_URL set).")
def db_start() -> None:
    target = _target()
    click.echo("using DATABASE_URL" if target.local is None else f"local cluster on 127.0.0.1:{target.local.port}")


@db.command("stop", help="Stop the private local cluster.")
def db_stop() -> None:
    from app.core import localdb
    settings = get_settings()
    if settings.database_url:
        raise click.ClickException("DATABASE_URL is set: the local cluster is not used")
    localdb.stop(localdb.default_cluster(settings.data_dir, settings.local_pg_port))


@db.command("url", help="Print the service-role URL (--admin: the owner's) of the database in use.")
@click.option("--admin", is_flag=True, help="Print the schema owner's URL instead.")
def db_url(admin: bool) -> None:
    target = _target()
    click.echo(target.admin_url if admin else target.url)


@main.group(help="Insurers (tenants).")
def tenant() -> None:
    pass


@tenant.command("add", help="Add an insurer and print its id (the same id again if it exists).")
@click.argument("name")
@click.option("--time-zone", default=None, help="The insurer's IANA time zone, for its outcomes report (default "
              "UTC; given for an existing insurer, it is changed).")
def tenant_add(name: str, time_zone: str | None) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from app import directory
    if time_zone is not None:
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.ClickException(f"unknown time zone {time_zone!r} (an IANA name such as Asia/Shanghai)") from None
    target = _target()
    _upgrade(target.admin_url)
    click.echo(directory.add_tenant(target.admin_url, name, time_zone))


@tenant.command("list", help="List insurers: id and name.")
def tenant_list() -> None:
    from app import directory
    for tid, name in directory.list_tenants(_target().admin_url):
        click.echo(f"{tid}  {name}")


@main.command(help="Print a locally signed bearer token (HS256) for a policyholder or a staff member.")
@click.option("--tenant", "tenant_", required=True, help="Tenant id (or name).")
@click.option("--person", help="Policyholder id as the insurer knows it (token subject).")
@click.option("--staff", help="Staff member id (token subject).")
@click.option("--role", type=click.Choice(["care_agent", "care_supervisor", "tenant_admin"]), default="care_agent",
              show_default=True, help="Role of a staff token.")
@click.option("--ttl", type=int, default=24 * 3600, show_default=True, help="Lifetime in seconds.")
def token(tenant_: str, person: str | None, staff: str | None, role: str, ttl: int) -> None:
    from app.auth import PERSON_ROLE, issue_token
    if bool(person) == bool(staff):
        raise click.UsageError("give exactly one of --person or --staff")
    settings = get_settings()
    if settings.jwt_jwks_url:
        raise click.ClickException("BEIDOU_JWT_JWKS_URL is set: tokens come from the identity provider")
    tenant_id = _tenant_id(tenant_)
    subject, token_role = (person, PERSON_ROLE) if person else (staff, role)
    click.echo(issue_token(settings, tenant_id=tenant_id, subject=subject, role=token_role, ttl_s=ttl))


def _tenant_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        pass
    from app import directory
    for tid, name in directory.list_tenants(_target().admin_url):
        if name == value:
            return tid
    raise click.ClickException(f"no tenant named {value!r} (add it with `beidou tenant add`)")


@main.command(help="Replay a person's history through the detector and print one JSON line per episode "
                   "(no database needed).")
@click.option("--heart-rate", "heart_rate", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV or CSV.gz with columns time,bpm (local times).")
@click.option("--steps", type=click.Path(exists=True, dir_okay=False),
              help="CSV or CSV.gz with columns time,steps (local times).")
@click.option("--person", default=None, help="Person id to print (default: from the file name).")
@click.option("--tz", default="UTC", show_default=True, help="The person's time zone (IANA name).")
def replay(heart_rate: str, steps: str | None, person: str | None, tz: str) -> None:
    from streaming.replay import replay as run_replay
    person = person or Path(heart_rate).name.split("_")[0].split(".")[0]
    run_replay(heart_rate, steps, person, tz, sys.stdout)


@main.command(help="Judge the detector on a folder of labelled wearable data (<ID>_hr.csv.gz, <ID>_steps.csv.gz, "
                   "labels.csv): leave-one-person-out, injected illnesses as an operating curve (PNG), and the "
                   "labelled people as they are, each beside a NightSignal reference.")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", default="test-artifacts", show_default=True, type=click.Path(file_okay=False),
              help="Folder for detection-curve.png and detection-evaluation.json.")
@click.option("--synthetic", default=6, show_default=True, help="Generated people added to the injections.")
@click.option("--seeds", default=2, show_default=True, help="Injections per position.")
@click.option("--write-operating-points", "write_points", is_flag=True,
              help="Rewrite the committed operating points (streaming/detection/operating_points.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def evaluate(folder: str, out: str, synthetic: int, seeds: int, write_points: bool, as_json: bool) -> None:
    from streaming import evaluate as ev
    ev.run(folder, out=Path(out), write_points=write_points, synthetic=synthetic, seeds=seeds, as_json=as_json,
           command="beidou evaluate " + " ".join(sys.argv[2:]))


@main.command("fcm-emulator", help="Run the local FCM HTTP v1 emulator (for tests and the demo).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8790, show_default=True)
def fcm_emulator(host: str, port: int) -> None:
    from alerts.push.emulator import serve
    serve(host, port)


if __name__ == "__main__":
    main()
