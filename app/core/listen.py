"""LISTEN/NOTIFY with reconnection: a background task calls ``handler(channel, payload)`` per notification."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

Handler = Callable[[str, str], Awaitable[None] | None]


async def listen_forever(url: str, channels: list[str], handler: Handler, *,
                         on_connect: Callable[[], Awaitable[None] | None] | None = None) -> None:
    """Listen until cancelled. ``on_connect`` runs after every (re)connection, so callers can catch up on
    anything they may have missed while disconnected."""
    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                for channel in channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                delay = 0.5
                if on_connect:
                    result = on_connect()
                    if asyncio.iscoroutine(result):
                        await result
                async for note in conn.notifies():
                    result = handler(note.channel, note.payload)
                    if asyncio.iscoroutine(result):
                        await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("listen.reconnect channels=%s error=%s", channels, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
