"""Real HTTP servers for tests: a simulator or any ASGI app on a loopback port, in a thread.

A thread (with its own event loop) keeps the server answering while a test blocks — the
official SDKs are synchronous `requests` clients — and makes every exchange real TCP.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

from pixwave.sandbox.core import Simulator
from pixwave.sandbox.server import bind, build_server


class ServerThread:
    """Runs a uvicorn server in a daemon thread; ``base_url`` is ready once started."""

    def __init__(self, server: uvicorn.Server, sock: Any) -> None:
        self.server = server
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> ServerThread:
        self._thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("the test server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        if self.loop is not None and not self._thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


@contextmanager
def run_simulator(simulator: Simulator[Any]) -> Iterator[ServerThread]:
    """Serve a simulator on a free port (with the pausable listener of the real command)."""
    server, sock = build_server(simulator, log_level="warning")
    thread = ServerThread(server, sock).start()
    try:
        yield thread
    finally:
        thread.stop()


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class WebhookSink:
    """An ASGI app that records every request and answers ``status`` (changeable mid-test)."""

    status: int = 200
    received: list[Received] = field(default_factory=list)
    _event: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(
            Received(
                scope["method"],
                scope["path"],
                scope["query_string"].decode(),
                {k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body,
            )
        )
        self._event.set()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until ``count`` requests arrived (or fail the test)."""
        waited = 0.0
        while len(self.received) < count and waited < timeout:
            self._event.clear()
            self._event.wait(0.05)
            waited += 0.05
        assert len(self.received) >= count, (
            f"expected {count} webhook requests, got {len(self.received)}"
        )
        return self.received


@contextmanager
def run_sink(sink: WebhookSink) -> Iterator[ServerThread]:
    """Serve a WebhookSink on a free port."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(sink, log_level="warning", access_log=False))
    thread = ServerThread(server, sock).start()
    try:
        yield thread
    finally:
        thread.stop()
