"""A private TimescaleDB cluster in a data folder of the project's, on loopback only.

Used when ``DATABASE_URL`` is unset (the demo, a laptop, the test suite). PostgreSQL refuses to run as
root, so when we are root the cluster runs as the unprivileged ``postgres`` user that Debian's package
creates. Passwords are generated once and kept in ``credentials.json`` (mode 600) beside the cluster.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# The advisory lock every change to cluster-wide rows (roles, their logins) takes, in every process that makes
# one (cluster start, the test suite's template migrations): one key, so they never run at once.
ROLE_CHANGE_LOCK = 7245001

log = logging.getLogger(__name__)

PG_BIN = Path(os.environ.get("BEIDOU_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN_ROLE = "beidou_admin"
APP_ROLE = "beidou_app"
DB_NAME = "beidou"


class LocalClusterError(RuntimeError):
    """The local cluster could not be created or started; the message says what to do."""


class _Below:
    """A path below the cluster's root, as an attribute of the cluster."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, cluster: LocalCluster | None, owner: type) -> Path | _Below:
        return self if cluster is None else cluster.root / self.name


@dataclass(frozen=True)
class LocalCluster:
    """Where a private cluster lives and how to reach it."""

    root: Path  # e.g. .data/pg — holds data/, run/, log, credentials.json
    port: int

    def __post_init__(self) -> None:
        # As root the cluster runs as `postgres`, which must be able to walk down to its folder. A checkout in a
        # private home (mode 700) is not reachable: keep the cluster in a folder of its own under /var/tmp.
        if os.geteuid() == 0 and not _reachable_by_others(self.root):
            digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:12]
            moved = Path("/var/tmp/beidou") / f"{self.root.name}-{digest}"
            log.info("localdb.relocated from=%s to=%s", self.root, moved)
            object.__setattr__(self, "root", moved)

    # What the root holds (read on access: the root may move in __post_init__).
    data = _Below("data")
    socket_dir = _Below("run")
    logfile = _Below("postgres.log")
    credentials_file = _Below("credentials.json")

    def credentials(self) -> dict[str, str]:
        return json.loads(self.credentials_file.read_text())

    def url(self, role: str = APP_ROLE, dbname: str = DB_NAME) -> str:
        password = self.credentials()[role]
        return f"postgresql://{role}:{quote(password)}@127.0.0.1:{self.port}/{dbname}"

    def admin_url(self, dbname: str = DB_NAME) -> str:
        return self.url(ADMIN_ROLE, dbname)


def _reachable_by_others(path: Path) -> bool:
    """True if every existing folder above ``path`` lets other users through (o+x)."""
    for parent in path.resolve().parents:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return False
    return True


def _run_as() -> list[str]:
    """Prefix that runs a PostgreSQL binary as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise LocalClusterError(
            "running as root and there is no 'postgres' user to run the cluster as; "
            "install Debian's postgresql-15 package (scripts/setup.sh does) or run as a normal user"
        ) from exc
    return ["runuser", "-u", "postgres", "--"]


def _chown_to_runner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _check_binaries() -> None:
    if not (PG_BIN / "initdb").exists():
        raise LocalClusterError(f"{PG_BIN}/initdb not found: run scripts/setup.sh to install PostgreSQL 15 and TimescaleDB")
    sharedir = subprocess.run([PG_BIN / "pg_config", "--sharedir"], capture_output=True, text=True).stdout.strip()
    if sharedir and not Path(sharedir, "extension", "timescaledb.control").exists():
        raise LocalClusterError("the TimescaleDB extension is not installed: run scripts/install-timescaledb.sh")


def _initdb(cluster: LocalCluster) -> None:
    cluster.root.mkdir(parents=True, exist_ok=True)
    creds = {ADMIN_ROLE: secrets.token_urlsafe(18), APP_ROLE: secrets.token_urlsafe(18)}
    pwfile = cluster.root / ".pwfile"
    pwfile.write_text(creds[ADMIN_ROLE] + "\n")
    for path in (cluster.root, pwfile):
        _chown_to_runner(path)
    os.chmod(pwfile, 0o600)
    log.info("localdb.initdb path=%s", cluster.data)
    result = subprocess.run(
        [*_run_as(), str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", ADMIN_ROLE, "--pwfile", str(pwfile),
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
        capture_output=True, text=True,
    )
    pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise LocalClusterError(f"initdb failed:\n{result.stderr.strip()}\n(remove {cluster.root} to start over)")
    cluster.socket_dir.mkdir(exist_ok=True)
    _chown_to_runner(cluster.socket_dir)
    conf = cluster.data / "postgresql.auto.conf"
    with conf.open("a") as fh:
        fh.write(
            "\n# Health Beidou private cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {cluster.port}\n"
            f"unix_socket_directories = '{cluster.socket_dir}'\n"
            "shared_preload_libraries = 'timescaledb'\n"
            "timescaledb.telemetry_level = off\n"
            "max_connections = 300\n"
            "shared_buffers = '256MB'\n"
            "synchronous_commit = on\n"
            "log_min_messages = warning\n"
        )
    cluster.credentials_file.write_text(json.dumps(creds))
    os.chmod(cluster.credentials_file, 0o600)


def is_running(cluster: LocalCluster) -> bool:
    if not (cluster.data / "PG_VERSION").exists():
        return False
    result = subprocess.run([*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "status"],
                            capture_output=True, text=True)
    return result.returncode == 0


# Settings for an ingest-heavy workload on a small machine, applied at every start (so clusters made before them
# get them too). Durability is untouched: synchronous_commit and full_page_writes stay on.
TUNING = {
    # Checkpoints far apart: fewer full-page images in the WAL while readings pour in (crash recovery takes longer).
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    # Short statements only: JIT compiling a statement whose estimated cost is high (a large group commit) costs
    # more than it saves.
    "jit": "off",
    # Room for the WAL of a large group commit before it must be written out.
    "wal_buffers": "32MB",
}


def start(cluster: LocalCluster, *, timeout_s: int = 60) -> LocalCluster:
    """Create the cluster if needed, start it if stopped, and make sure roles and the database exist."""
    _check_binaries()
    if not (cluster.data / "PG_VERSION").exists():
        _initdb(cluster)
    if not is_running(cluster):
        log.info("localdb.start port=%s", cluster.port)
        if not cluster.logfile.exists():
            cluster.logfile.touch()
            _chown_to_runner(cluster.logfile)
        result = subprocess.run(
            [*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.logfile),
             "-o", " ".join([f"-p {int(cluster.port)}", *(f"-c {k}={v}" for k, v in TUNING.items())]),
             "-w", "-t", str(timeout_s), "start"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            tail = cluster.logfile.read_text(errors="replace").splitlines()[-15:]
            raise LocalClusterError(
                "the local PostgreSQL did not start:\n" + "\n".join(tail)
                + f"\n(is port {cluster.port} taken? set BEIDOU_LOCAL_PG_PORT; log: {cluster.logfile})"
            )
    _ensure_roles(cluster)
    return cluster


def stop(cluster: LocalCluster) -> None:
    if is_running(cluster):
        subprocess.run([*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, text=True, check=False)


def _ensure_roles(cluster: LocalCluster) -> None:
    import psycopg
    from psycopg import sql

    creds = cluster.credentials()
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(cluster.admin_url("postgres"), autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with conn:
        # Several processes may start the cluster at once (parallel test processes, API workers): role changes
        # are cluster-wide rows, so one at a time ("tuple concurrently updated" otherwise).
        conn.execute("SELECT pg_advisory_lock(%s)", (ROLE_CHANGE_LOCK,))
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(APP_ROLE), sql.Literal(creds[APP_ROLE])))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))


def default_cluster(data_dir: Path, port: int) -> LocalCluster:
    return LocalCluster(root=data_dir / "pg", port=port)


def start_replica(primary: LocalCluster, root: Path, port: int, *, timeout_s: int = 60) -> LocalCluster:
    """A streaming replica of the running ``primary`` (``pg_basebackup -R``, then a hot standby on ``port``),
    for trying read replicas locally. The primary needs ``wal_level = replica`` (PostgreSQL's default) and a
    ``host replication`` line in pg_hba.conf (initdb writes one for 127.0.0.1), both checked here."""
    import psycopg

    replica = LocalCluster(root=root, port=port)
    if replica.root.exists():
        remove(replica)
    replica.root.mkdir(parents=True)
    _chown_to_runner(replica.root)
    creds = primary.credentials()
    with psycopg.connect(primary.admin_url("postgres"), autocommit=True) as conn:
        if conn.execute("SHOW wal_level").fetchone()[0] == "minimal":
            raise LocalClusterError("the primary runs with wal_level = minimal: set it to replica and restart")
        rules = conn.execute("SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)"
                             " AND type = 'host'").fetchone()[0]
        if not rules:
            with (primary.data / "pg_hba.conf").open("a") as fh:
                fh.write("host replication all 127.0.0.1/32 scram-sha-256\n")
            conn.execute("SELECT pg_reload_conf()")
    source = (f"host=127.0.0.1 port={primary.port} user={ADMIN_ROLE} password={creds[ADMIN_ROLE]} "
              "application_name=beidou-replica")
    result = subprocess.run([*_run_as(), str(PG_BIN / "pg_basebackup"), "-d", source, "-D", str(replica.data),
                             "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalClusterError(f"pg_basebackup failed:\n{result.stderr.strip()}")
    replica.socket_dir.mkdir(exist_ok=True)
    _chown_to_runner(replica.socket_dir)
    with (replica.data / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"\n# replica\nport = {port}\nunix_socket_directories = '{replica.socket_dir}'\n"
                 f"hot_standby = on\nmax_connections = 300\nprimary_conninfo = '{source}'\n")
    replica.credentials_file.write_text(json.dumps(creds))
    os.chmod(replica.credentials_file, 0o600)
    replica.logfile.touch()
    _chown_to_runner(replica.logfile)
    result = subprocess.run(
        [*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(replica.data), "-l", str(replica.logfile),
         "-o", f"-p {int(port)}", "-w", "-t", str(timeout_s), "start"], capture_output=True, text=True)
    if result.returncode != 0:
        tail = replica.logfile.read_text(errors="replace").splitlines()[-15:]
        raise LocalClusterError("the replica did not start:\n" + "\n".join(tail))
    return replica


def remove(cluster: LocalCluster) -> None:
    """Stop a cluster (immediately) and delete its files."""
    if (cluster.data / "PG_VERSION").exists():
        subprocess.run([*_run_as(), str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w",
                        "stop"], capture_output=True, text=True, check=False)
    shutil.rmtree(cluster.root, ignore_errors=True)
