"""The embedded uvicorn server on a real loopback socket: what its connections look like."""

from __future__ import annotations

import asyncio
import socket

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.embedded import free_port
from services.intake_phone.runtime import HttpServer


async def _answer(request: Request) -> JSONResponse:
    del request
    return JSONResponse({"ok": True})


async def test_accepted_connections_do_not_wait_on_nagle() -> None:
    # uvicorn writes a response's head and body separately; with Nagle's algorithm on,
    # the body waited for the client's delayed ACK (40 ms on every keep-alive request).
    server = HttpServer(Starlette(routes=[Route("/", _answer)]), "127.0.0.1", free_port())
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        # uvicorn's own record of its open connections (no public accessor).
        connections = list(server._server.server_state.connections)
        assert len(connections) == 1
        accepted = connections[0].transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
