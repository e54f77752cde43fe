"""Run a simulator as its own HTTP server, able to refuse connections like a dead host.

A ``refuse`` outage must look to the client exactly like a gateway that is down: the TCP
connect fails. Answering 503 is a different failure (the host is up). So the standalone server
owns its listening socket: a refuse outage closes it and drops idle keep-alive connections,
and clearing the outage binds the same port again.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import structlog
import uvicorn

from pixwave.sandbox.core import Simulator

log = structlog.get_logger("pixwave.sandbox")


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it a small response waits on the client's
        # delayed ACK (~40 ms per request on loopback) whenever uvloop serves the socket.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class SandboxServer(uvicorn.Server):
    """uvicorn with a pausable listener (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, *, host: str, port: int) -> None:
        super().__init__(config)
        self.host = host
        self.port = port

    async def pause(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()
        for connection in list(self.server_state.connections):
            connection.shutdown()

    async def resume(self) -> None:
        if self.servers:
            return
        config = self.config

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=_loop,
            )
            return protocol

        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            create_protocol, sock=await self._bind_again(), backlog=config.backlog
        )
        self.servers.append(server)

    async def _bind_again(self) -> socket.socket:
        """The port, once it is free. While it was closed, the kernel may have handed it to
        an outgoing connection as its local port (a port picked with ``port=0`` lies in the
        ephemeral range): binding then fails until that connection is gone. Giving up would
        leave the simulator refusing for good, so it keeps trying, and says so."""
        waited = 0.0
        while True:
            try:
                return bind(self.host, self.port)
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                if waited % 10 == 0:
                    log.warning(
                        "sandbox.port_taken", port=self.port, waited_s=waited, error=str(error)
                    )
            await asyncio.sleep(0.25)
            waited += 0.25


def build_server(
    simulator: Simulator[Any], *, host: str = "127.0.0.1", port: int = 0, log_level: str = "info"
) -> tuple[SandboxServer, socket.socket]:
    """The server and its bound socket (``port=0`` picks a free port: read it off the socket)."""
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    # log_config=None: uvicorn's lines go through PixWave's logging (ECS JSON), not its own.
    config = uvicorn.Config(
        simulator.app(),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        log_config=None,
    )
    server = SandboxServer(config, host=host, port=actual_port)
    simulator.faults.listener = server
    return server, sock


async def serve(
    simulator: Simulator[Any], *, host: str, port: int, log_level: str = "info"
) -> None:
    server, sock = build_server(simulator, host=host, port=port, log_level=log_level)
    try:
        await server.serve(sockets=[sock])
    finally:
        await simulator.aclose()
