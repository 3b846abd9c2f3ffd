"""SQL for the detection settings an insurer chooses (its operating point). Runs in a tenant-scoped transaction."""
from __future__ import annotations

import psycopg

from streaming.detection.operating_points import DEFAULT_CHOICE


async def operating_point(conn: psycopg.AsyncConnection) -> str:
    """The tenant's chosen operating point (``standard`` until an admin chooses)."""
    cur = await conn.execute(
        "SELECT operating_point FROM tenant_detection_settings WHERE tenant_id = beidou_tenant()")
    row = await cur.fetchone()
    return row[0] if row else DEFAULT_CHOICE


async def save_operating_point(conn: psycopg.AsyncConnection, *, choice: str, by: str) -> None:
    await conn.execute(
        """INSERT INTO tenant_detection_settings (tenant_id, operating_point, updated_by)
           VALUES (beidou_tenant(), %s, %s)
           ON CONFLICT (tenant_id) DO UPDATE SET operating_point = EXCLUDED.operating_point,
               updated_by = EXCLUDED.updated_by, updated_at = now()""",
        (choice, by),
    )
