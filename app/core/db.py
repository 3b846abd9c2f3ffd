"""Database access: one connection pool per process, and transactions scoped to a tenant and subject.

Row-level security reads ``beidou.tenant_id`` and ``beidou.person_id``; both are set with
``set_config(..., is_local => true)`` so they vanish at commit or rollback, and a pooled connection
is additionally ``RESET ALL`` before reuse.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

_SET_CONTEXT = "SELECT set_config('beidou.tenant_id', %s, true), set_config('beidou.person_id', %s, true)"


async def _reset(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("RESET ALL")


class Database:
    """A process-wide pool of connections as the service role."""

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10, statement_timeout_ms: int = 15000,
                 application_name: str = "beidou"):
        self.url = url
        options = f"-c statement_timeout={int(statement_timeout_ms)} -c application_name={application_name}"
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "options": options, "connect_timeout": 5},
            reset=_reset,
            open=False,
            timeout=10,
            name=application_name,
        )

    async def open(self, *, wait: bool = False) -> None:
        await self.pool.open(wait=wait, timeout=30)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self, *, tenant_id: UUID | str | None, person_id: UUID | str | None = None
                          ) -> AsyncIterator[psycopg.AsyncConnection]:
        """A transaction that sees only ``tenant_id``'s rows (and only ``person_id``'s, when given).

        Commits when the block exits normally, rolls back on an exception. Connection failures and
        pool exhaustion surface as :class:`DatabaseUnavailable`.
        """
        try:
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    await conn.execute(_SET_CONTEXT, (_text(tenant_id), _text(person_id)))
                    yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise DatabaseUnavailable("the database took too long to answer") from exc
            raise DatabaseUnavailable(str(exc).strip() or "database unavailable") from exc

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            return True
        except Exception:  # any failure means "not ready"
            return False


def _text(value: UUID | str | None) -> str:
    return "" if value is None else str(value)


@asynccontextmanager
async def tenant_wide(conn: psycopg.AsyncConnection) -> AsyncIterator[None]:
    """Within a person's transaction, briefly act tenant-wide (e.g. to notify staff about that person's
    answer in the same transaction), then narrow back to the person."""
    cur = await conn.execute("SELECT current_setting('beidou.person_id', true)")
    person = (await cur.fetchone())[0] or ""
    await conn.execute("SELECT set_config('beidou.person_id', '', true)")
    try:
        yield
    finally:
        await conn.execute("SELECT set_config('beidou.person_id', %s, true)", (person,))
