"""Database access: one connection pool per process, and transactions scoped to a tenant and subject.

Row-level security reads ``beidou.tenant_id`` and ``beidou.person_id``; both are set with
``set_config(..., is_local => true)`` so they vanish at commit or rollback, and a pooled connection
is additionally ``RESET ALL`` before reuse.

When the database goes away, callers should hear so at once (503 with Retry-After), not after waiting the
pool's full timeout for a connection that cannot come: once a connection has failed, transactions wait at most
``down_wait_s`` for one until a transaction succeeds again. The pool gives up a reconnection attempt after
``reconnect_timeout_s`` (psycopg_pool otherwise backs off exponentially for five minutes, so a long outage
could leave it asleep long after the database is back); the next request then starts a fresh attempt at once.
"""
from __future__ import annotations

import logging
import time
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
                 application_name: str = "beidou", wait_s: float = 10.0, down_wait_s: float = 1.0,
                 reconnect_timeout_s: float = 5.0):
        self.url = url
        self.wait_s = wait_s
        self.down_wait_s = down_wait_s
        self.down_since: float | None = None  # monotonic time of the first failure since the last success
        options = f"-c statement_timeout={int(statement_timeout_ms)} -c application_name={application_name}"
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "options": options, "connect_timeout": 5},
            reset=_reset,
            open=False,
            timeout=wait_s,
            reconnect_timeout=reconnect_timeout_s,
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
            async with self.pool.connection(timeout=self._wait()) as conn:
                async with conn.transaction():
                    await conn.execute(_SET_CONTEXT, (_text(tenant_id), _text(person_id)))
                    yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise DatabaseUnavailable("the database took too long to answer (statement timeout)") from exc
            self._failed(exc)
            raise DatabaseUnavailable(str(exc).strip() or "database unavailable") from exc
        self.down_since = None

    @asynccontextmanager
    async def spare_transaction(self, *, tenant_id: UUID | str | None, wait_s: float = 0.05
                                ) -> AsyncIterator[psycopg.AsyncConnection | None]:
        """A second tenant-scoped transaction for work that can run beside the caller's own, or None when no
        connection is free within ``wait_s``: a request that already holds a connection never waits for another
        (which could starve the pool), it does the work on its own connection instead."""
        try:
            conn = await self.pool.getconn(timeout=wait_s)
        except (psycopg.OperationalError, PoolTimeout):
            yield None
            return
        try:
            async with conn.transaction():
                await conn.execute(_SET_CONTEXT, (_text(tenant_id), ""))
                yield conn
        except psycopg.OperationalError as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise DatabaseUnavailable("the database took too long to answer (statement timeout)") from exc
            self._failed(exc)
            raise DatabaseUnavailable(str(exc).strip() or "database unavailable") from exc
        finally:
            await self.pool.putconn(conn)

    def _wait(self) -> float:
        return self.wait_s if self.down_since is None else self.down_wait_s

    def _failed(self, exc: Exception) -> None:
        # A connection that broke or could not be made means the server is gone; a pool timeout alone may just
        # be load, so it only keeps an outage going, never starts one.
        if self.down_since is None and not isinstance(exc, PoolTimeout):
            self.down_since = time.monotonic()
            log.warning("db.unavailable pool=%s error=%s", self.pool.name, str(exc).strip()[:200])

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=min(2.0, self._wait())) as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:  # any failure means "not ready"
            if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
                self._failed(exc)
            return False
        self.down_since = None
        return True


def _text(value: UUID | str | None) -> str:
    return "" if value is None else str(value)


async def try_advisory_lock(conn: psycopg.AsyncConnection, key: int) -> bool:
    """Take the session-level advisory lock ``key`` if no other session holds it (held until this session
    unlocks it or closes): how a job makes sure it runs in one place at a time."""
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
    return (await cur.fetchone())[0]


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


# How far a streaming replica is behind: nothing when it has replayed everything it received, else the age of
# the last transaction it replayed. NULL on a primary (not in recovery).
_LAG = """SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
                      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                      ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END"""


class ReadDatabase:
    """Reads that may lag a little (care charts, exports, queue listings, dashboards): a streaming replica when
    one is configured, reachable and at most ``max_lag_s`` behind, else the primary.

    The replica's state is checked at most every ``recheck_s``: a replica that is down or behind is skipped
    until the next check, so an outage costs the first read at most ``down_wait_s`` and later reads nothing.
    Writes, and a person's own reads right after their writes, use the primary :class:`Database` directly."""

    def __init__(self, primary: Database, replica: Database | None = None, *, max_lag_s: float = 10.0,
                 recheck_s: float = 1.0):
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.recheck_s = recheck_s
        self._checked_at = -1e9
        self._usable = False
        self.last_lag_s: float | None = None

    async def open(self) -> None:
        if self.replica is not None:
            await self.replica.open()

    async def close(self) -> None:
        if self.replica is not None:
            await self.replica.close()

    async def _replica_usable(self) -> bool:
        if self.replica is None:
            return False
        now = time.monotonic()
        if now - self._checked_at < self.recheck_s:
            return self._usable
        self._checked_at = now
        try:
            async with self.replica.pool.connection(timeout=min(self.replica.down_wait_s, 2.0)) as conn:
                lag = (await (await conn.execute(_LAG)).fetchone())[0]
        except Exception as exc:  # unreachable, or anything else: the primary serves
            if self._usable or self.last_lag_s is not None:
                log.warning("db.replica_skipped reason=unavailable error=%s", str(exc).strip()[:200])
            self._usable, self.last_lag_s = False, None
            return False
        self.last_lag_s = None if lag is None else float(lag)
        usable = self.last_lag_s is not None and self.last_lag_s <= self.max_lag_s
        if usable != self._usable:
            log.info("db.replica_%s lag_s=%s", "used" if usable else "skipped", self.last_lag_s)
        self._usable = usable
        return usable

    async def serving(self) -> Database:
        """The database the next read goes to."""
        return self.replica if await self._replica_usable() else self.primary

    @asynccontextmanager
    async def transaction(self, *, tenant_id: UUID | str | None, person_id: UUID | str | None = None
                          ) -> AsyncIterator[psycopg.AsyncConnection]:
        """A read transaction scoped like :meth:`Database.transaction`, on the replica when it may serve."""
        db = await self.serving()
        async with db.transaction(tenant_id=tenant_id, person_id=person_id) as conn:
            yield conn
