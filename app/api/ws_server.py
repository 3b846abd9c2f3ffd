"""The server side of a WebSocket connection: uvicorn's sans-I/O protocol (``websockets-sansio``), leaner.

Ten thousand open streams, most of them idle, are the normal load of the ingest API, so what one connection
keeps matters. This protocol behaves as uvicorn's and keeps less:

* the handshake's request and response (their header structures, ~4 KiB) are dropped once the connection is
  accepted: the headers the app reads are in its ASGI scope, which stays;
* the queue of received messages is a list and one waiter (the app is its only reader), not an
  ``asyncio.Queue`` with its four deques (~3 KiB).

``beidou api`` and the demo pass it to uvicorn through ``uvicorn_ws_options``.
"""
from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

WS_PROTOCOL = "app.api.ws_server:LeanWebSocketProtocol"


def uvicorn_ws_options(compression: bool) -> dict[str, Any]:
    """How every server of ours runs WebSockets. permessage-deflate is off unless asked for
    (BEIDOU_WS_COMPRESSION=1): it triples an idle stream's memory and costs more CPU than small JSON frames
    save in bandwidth."""
    return {"ws": WS_PROTOCOL, "ws_max_size": 16 * 1024 * 1024, "ws_per_message_deflate": compression}


class Inbox:
    """Messages from the client to the app, in order: ``put_nowait`` by the protocol, ``get`` by one reader."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]

    def start_keepalive(self) -> None:
        # Called once, right after the handshake's answer is written: nothing reads these again.
        super().start_keepalive()
        self.request = self.response = None  # type: ignore[assignment]
