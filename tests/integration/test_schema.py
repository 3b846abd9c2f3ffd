"""Migrations and the database-level guarantees: schema reproducibility, RLS everywhere, role limits."""
from __future__ import annotations

import shutil

import psycopg
import pytest

from app.core import migrate, schema
from app.core.datatypes import DATA_TYPES
from tests.support import cluster_wide



def test_a_fresh_migration_run_gives_the_committed_schema(fresh_db):
    """migrations/schema.sql is what the migrations build: a migration that changes more (or less) than its
    author meant shows up here. After a deliberate change: beidou db schema > migrations/schema.sql"""
    assert schema.dump(fresh_db.admin_url) == schema.SCHEMA_FILE.read_text()


def test_upgrading_one_migration_at_a_time_gives_the_same_schema_as_a_fresh_run(empty_db):
    # Step by step, one migration per upgrade call, as a long-lived installation would get them.
    migrations = migrate.discover()
    with cluster_wide(empty_db.server_admin_url):
        for m in migrations:
            migrate.upgrade(empty_db.admin_url, target=m.version)
    assert schema.dump(empty_db.admin_url) == schema.SCHEMA_FILE.read_text()
    with psycopg.connect(empty_db.admin_url) as conn:
        assert sorted(migrate.applied(conn)) == [m.version for m in migrations]


def test_the_data_types_table_holds_exactly_the_registry(fresh_db):
    with psycopg.connect(fresh_db.app_url) as conn:
        rows = set(conn.execute("SELECT name, unit FROM data_types").fetchall())
    assert rows == {(t.name, t.unit) for t in DATA_TYPES.values()}


def test_a_reading_or_consent_of_an_unknown_type_cannot_be_stored(fresh_db):
    with psycopg.connect(fresh_db.admin_url, autocommit=True) as conn:
        tid = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()[0]
        pid = conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, 'p') RETURNING id",
                           (tid,)).fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                            VALUES (now(), %s, %s, 'mood', 3, 's', 0)""", (tid, pid))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("""INSERT INTO consent_events (tenant_id, person_id, data_type, purpose, action)
                            VALUES (%s, %s, 'mood', 'monitoring', 'grant')""", (tid, pid))
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        VALUES (now(), %s, %s, 'hrv_sdnn', 40, 's', 0)""", (tid, pid))


def test_adding_a_data_type_is_one_row_and_types_are_never_removed(fresh_db):
    with psycopg.connect(fresh_db.admin_url, autocommit=True) as conn:
        tid = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()[0]
        pid = conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, 'p') RETURNING id",
                           (tid,)).fetchone()[0]
        conn.execute("INSERT INTO data_types (name, unit) VALUES ('weight', 'kg')")  # what a migration would do
        conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, source, utc_offset_min)
                        VALUES (now(), %s, %s, 'weight', 70, 's', 0)""", (tid, pid))
        for statement in ("DELETE FROM data_types WHERE name = 'weight'", "UPDATE data_types SET unit = 'lb'",
                          "TRUNCATE data_types CASCADE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(fresh_db.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO data_types (name, unit) VALUES ('mood', 'score')")


def test_upgrade_twice_applies_nothing_the_second_time(fresh_db):
    assert migrate.upgrade(fresh_db.admin_url) == []


def test_an_edited_applied_migration_is_refused_with_a_clear_message(empty_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    with cluster_wide(empty_db.server_admin_url):
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


def test_upgrading_to_the_lean_hot_table_moves_every_reading_unchanged(empty_db):
    """Migration 0017 moves the readings of an installation into the lean tables; `readings` shows them as they
    were, value for value (a float4 reads back as the value sent), with their diastolic, stages and record."""
    with cluster_wide(empty_db.server_admin_url):
        migrate.upgrade(empty_db.admin_url, target=16)
    with psycopg.connect(empty_db.admin_url, autocommit=True) as conn:
        tid = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()[0]
        pids = [conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, %s) RETURNING id",
                             (tid, name)).fetchone()[0] for name in ("a", "b")]
        conn.execute("INSERT INTO sources (tenant_id, person_id, source) VALUES (%s, %s, 'watch')", (tid, pids[0]))
        rid = conn.execute(
            """INSERT INTO records (tenant_id, person_id, platform, source_app, native_id, record_type, metric,
                                    content_hash, state, start_time, end_time, utc_offset_min, offset_inferred)
               VALUES (%s, %s, 'health_connect', 'app', 'r1', 'HeartRateRecord', 'heart_rate', 'h', 'live', now(),
                       now(), 480, false) RETURNING id""", (tid, pids[1])).fetchone()[0]
        rows = [("2026-11-30 08:00+00", pids[0], "body_temperature", 36.6, None, None, "watch", None),
                ("2026-11-30 08:00+00", pids[0], "blood_pressure", 121.0, 79.5, None, "cuff", None),
                ("2026-11-30 01:00+00", pids[0], "sleep", 420.0, None, '{"stages": {"deep": 90}}', "watch", None),
                ("2026-11-30 08:00+00", pids[1], "heart_rate", 61.0, None, None, "health-connect:app", rid)]
        for at, pid, metric, value, value2, details, source, record in rows:
            conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, value2, details, source,
                                                  utc_offset_min, record_id)
                            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 480, %s)""",
                         (at, tid, pid, metric, value, value2, details, source, record))
        before = conn.execute("SELECT * FROM readings ORDER BY person_id, time, metric").fetchall()
    with cluster_wide(empty_db.server_admin_url):
        assert [m.version for m in migrate.upgrade(empty_db.admin_url, target=17)] == [17]
    with psycopg.connect(empty_db.admin_url) as conn:
        assert conn.execute("SELECT * FROM readings ORDER BY person_id, time, metric").fetchall() == before
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE record_id IS NOT NULL) FROM readings_hot_extra"
                            ).fetchone() == (3, 1)
        assert conn.execute("SELECT person_id, source, source_no FROM sources ORDER BY person_id, source_no"
                            ).fetchall() == sorted([(pids[0], "watch", 1), (pids[0], "cuff", 2),
                                                    (pids[1], "health-connect:app", 1)], key=lambda r: (r[0], r[2]))


def test_upgrading_to_record_numbers_keeps_every_reading_and_its_record(empty_db):
    """Migration 0020 moves each reading's record from readings_hot_extra into its hot row, as the person's record
    number: `readings` shows every reading as it was, record included; extra rows that held only a record go."""
    with cluster_wide(empty_db.server_admin_url):
        migrate.upgrade(empty_db.admin_url, target=19)
    with psycopg.connect(empty_db.admin_url, autocommit=True) as conn:
        tid = conn.execute("INSERT INTO tenants (name) VALUES ('x') RETURNING id").fetchone()[0]
        a, b = (conn.execute("INSERT INTO people (tenant_id, external_id) VALUES (%s, %s) RETURNING id",
                             (tid, name)).fetchone()[0] for name in ("a", "b"))

        def record(pid, native_id: str, metric: str, state: str = "live") -> int:
            return conn.execute(
                """INSERT INTO records (tenant_id, person_id, platform, source_app, native_id, record_type, metric,
                                        content_hash, state, start_time, end_time, utc_offset_min, offset_inferred)
                   VALUES (%s, %s, 'health_connect', 'app', %s, 'T', %s, 'h', %s, now(), now(), 480, false)
                   RETURNING id""", (tid, pid, native_id, metric, state)).fetchone()[0]
        # ids interleaved between the two people: each person's numbers still run 1, 2, 3
        a1, b1, a2, _, b2 = (record(a, "a1", "heart_rate"), record(b, "b1", "heart_rate"),
                             record(a, "a2", "blood_pressure"), record(a, "a-gone", "heart_rate", "deleted"),
                             record(b, "b2", "heart_rate"))
        rows = [(a, "heart_rate", 61.0, None, None, "health-connect:app", a1),
                (a, "blood_pressure", 121.0, 79.5, None, "health-connect:app", a2),
                (a, "blood_pressure", 118.0, 76.0, None, "cuff", None),
                (a, "sleep", 420.0, None, '{"stages": {"deep": 90}}', "watch", None),
                (a, "heart_rate", 36.6, None, None, "watch", None),
                (b, "heart_rate", 62.0, None, None, "health-connect:app", b1),
                (b, "heart_rate", 63.0, None, None, "health-connect:app", b2)]
        for i, (pid, metric, value, value2, details, source, rec) in enumerate(rows):
            conn.execute("""INSERT INTO readings (time, tenant_id, person_id, metric, value, value2, details, source,
                                                  utc_offset_min, record_id)
                            VALUES (now() - make_interval(mins => %s), %s, %s, %s, %s, %s, %s, %s, 480, %s)""",
                         (i, tid, pid, metric, value, value2, details, source, rec))
        before = conn.execute("SELECT * FROM readings ORDER BY person_id, time, metric").fetchall()
        assert conn.execute("SELECT count(*) FROM readings_hot_extra").fetchone()[0] == 6
    with cluster_wide(empty_db.server_admin_url):
        assert [m.version for m in migrate.upgrade(empty_db.admin_url, target=20)] == [20]
    with psycopg.connect(empty_db.admin_url, autocommit=True) as conn:
        assert conn.execute("SELECT * FROM readings ORDER BY person_id, time, metric").fetchall() == before
        assert sorted(r[-1] for r in before if r[-1]) == sorted([a1, a2, b1, b2])
        # only a diastolic or stages keep an extra row; the records are numbered per person in the hot rows
        assert conn.execute("SELECT count(*) FROM readings_hot_extra").fetchone()[0] == 3
        assert conn.execute("SELECT native_id, record_no FROM records ORDER BY id").fetchall() == [
            ("a1", 1), ("b1", 1), ("a2", 2), ("a-gone", 3), ("b2", 2)]
        assert sorted(conn.execute("SELECT record_no FROM readings_hot").fetchall()) == [
            (0,), (0,), (0,), (1,), (1,), (2,), (2,)]
        # a new record takes its person's next number
        assert conn.execute("SELECT record_no FROM records WHERE id = %s", (record(a, "a3", "steps"),)
                            ).fetchone() == (4,)
