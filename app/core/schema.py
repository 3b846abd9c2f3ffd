"""The schema a fresh migration run produces, as normalised ``pg_dump`` text.

``migrations/schema.sql`` is this text, committed: a reviewer reads the whole schema in one file, and a test
compares it with a fresh run, so a migration that changes more (or less) than its author meant shows up as a
diff. Regenerate it with ``beidou db schema > migrations/schema.sql``.
"""
from __future__ import annotations

import re
import subprocess
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app.core import migrate
from app.core.localdb import PG_BIN
from app.core.settings import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "migrations" / "schema.sql"


def dump(admin_url: str) -> str:
    """The schema of the database at ``admin_url``, without dump noise and with the owner's name as CURRENT_USER
    (so the text does not depend on what the administrator role is called)."""
    out = subprocess.run([str(PG_BIN / "pg_dump"), "--schema-only", "--no-owner", "--exclude-schema=beidou_meta",
                          admin_url], capture_output=True, text=True, check=True).stdout
    owner = conninfo_to_dict(admin_url).get("user")
    lines = [line for line in out.splitlines()
             if not line.startswith(("--", "\\restrict", "\\unrestrict", "SET ", "SELECT pg_catalog.set_config"))]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    if owner:
        text = re.sub(rf"\bTO {re.escape(owner)}\b", "TO CURRENT_USER", text)
    return text


def fresh(admin_url: str) -> str:
    """Migrate a new, empty database on the same server from scratch, dump its schema, and drop it."""
    name = f"beidou_schema_{uuid.uuid4().hex[:12]}"
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(url)
        return dump(url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
