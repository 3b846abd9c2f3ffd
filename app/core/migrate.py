"""Ordered SQL migrations from ``migrations/``, each applied once and recorded with a checksum.

A migration that was applied and later edited is refused: the database and the files no longer agree,
and guessing which is right would risk health data. Add a new migration instead.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.core.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
SCHEMA_DUMP = "schema.sql"  # the committed dump of a fresh run (app.core.schema), not a migration
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed number: all migration runners of this project take the same lock.
_LOCK_KEY = 0x6265_6964_6F75  # "beidou"


class MigrationError(RuntimeError):
    """Migrations cannot be applied; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file in order; a badly named ``.sql`` file is an error, not silently skipped."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        if path.name == SCHEMA_DUMP:
            continue
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {folder}")
    return found


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS beidou_meta")
    conn.execute("REVOKE ALL ON SCHEMA beidou_meta FROM PUBLIC")
    conn.execute(
        """CREATE TABLE IF NOT EXISTS beidou_meta.schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             checksum   text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    """Applied versions → (name, checksum)."""
    rows = conn.execute("SELECT version, name, checksum FROM beidou_meta.schema_migrations").fetchall()
    return {v: (n, c) for v, n, c in rows}


def upgrade(url: str, folder: Path = MIGRATIONS_DIR, *, target: int | None = None) -> list[Migration]:
    """Apply pending migrations (up to ``target``) in order, one transaction each. Returns what ran."""
    migrations = discover(folder)
    ran: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # Serialise concurrent upgrades (several API processes starting at once).
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            _ensure_table(conn)
            done = applied(conn)
            for migration in migrations:
                if migration.version in done:
                    name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.path.name} was edited after it was applied "
                            f"(checksum {checksum[:12]} in the database, {migration.checksum[:12]} on disk). "
                            "Restore the file and put the change in a new migration."
                        )
                    continue
                if target is not None and migration.version > target:
                    break
                log.info("db.migration.apply version=%s name=%s", migration.version, migration.name)
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO beidou_meta.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                ran.append(migration)
            unknown = set(done) - {m.version for m in migrations}
            if unknown:
                log.warning("db.migration.unknown_versions versions=%s", sorted(unknown))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return ran


def status(url: str, folder: Path = MIGRATIONS_DIR) -> list[tuple[Migration, bool]]:
    with psycopg.connect(url, autocommit=True) as conn:
        _ensure_table(conn)
        done = applied(conn)
    return [(m, m.version in done) for m in discover(folder)]
