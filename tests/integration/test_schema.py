"""Migrations and the database-level guarantees: schema reproducibility, RLS everywhere, role limits."""
from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest

from app.core import migrate

PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"


def _schema(url: str) -> str:
    out = subprocess.run([PG_DUMP, "--schema-only", "--no-owner", "--exclude-schema=beidou_meta", url],
                         capture_output=True, text=True, check=True).stdout
    # Drop comment lines that carry dump-specific noise.
    return "\n".join(line for line in out.splitlines() if not line.startswith(("--", "\\restrict", "\\unrestrict")))


def test_fresh_and_stepwise_upgraded_databases_end_with_the_same_schema(empty_db, fresh_db, tmp_path):
    migrations = migrate.discover()
    # Step by step, one migration per upgrade call, as a long-lived installation would get them.
    for m in migrations:
        migrate.upgrade(empty_db.admin_url, target=m.version)
    assert _schema(empty_db.admin_url) == _schema(fresh_db.admin_url)
    with psycopg.connect(empty_db.admin_url) as conn:
        assert sorted(migrate.applied(conn)) == [m.version for m in migrations]


def test_upgrade_twice_applies_nothing_the_second_time(fresh_db):
    assert migrate.upgrade(fresh_db.admin_url) == []


def test_an_edited_applied_migration_is_refused_with_a_clear_message(empty_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    migrate.upgrade(empty_db.admin_url, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(migrate.MigrationError, match="was edited after it was applied"):
        migrate.upgrade(empty_db.admin_url, folder)


def test_a_badly_named_migration_file_is_an_error(tmp_path):
    (tmp_path / "1_oops.sql").write_text("SELECT 1")
    with pytest.raises(migrate.MigrationError, match="NNNN_lowercase_name"):
        migrate.discover(tmp_path)


def test_every_table_has_row_level_security_forced(fresh_db):
    with psycopg.connect(fresh_db.admin_url) as conn:
        rows = conn.execute(
            """SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"""
        ).fetchall()
    assert rows, "no tables found"
    unprotected = [name for name, enabled, forced in rows if not (enabled and forced)]
    assert unprotected == []


def test_the_service_role_is_not_privileged(fresh_db):
    with psycopg.connect(fresh_db.app_url) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
        owns = conn.execute(
            """SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                WHERE r.rolname = current_user""").fetchone()[0]
    assert role == (False, False, False)
    assert owns == 0


@pytest.mark.parametrize("query", [
    "SELECT count(*) FROM beidou_meta.schema_migrations",
    "SELECT count(*) FROM beidou_chunks._hyper_1_1_chunk",
])
def test_the_service_role_cannot_reach_internal_schemas(fresh_db, query):
    with psycopg.connect(fresh_db.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(query)


def test_chunks_are_created_where_the_service_role_cannot_read_them(fresh_db):
    with psycopg.connect(fresh_db.admin_url, autocommit=True) as conn:
        tid = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()[0]
        pid = conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, 'p') RETURNING id",
                           (tid,)).fetchone()[0]
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        VALUES (now(), %s, %s, 'heart_rate', 60, 's', 0)""", (tid, pid))
        schemas = {r[0] for r in conn.execute("SELECT chunk_schema FROM timescaledb_information.chunks")}
        chunk = conn.execute("SELECT chunk_schema || '.' || chunk_name FROM timescaledb_information.chunks").fetchone()[0]
    assert schemas == {"beidou_chunks"}
    with psycopg.connect(fresh_db.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM {chunk}")
