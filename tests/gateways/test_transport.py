"""The gateways' transport (aiohttp under httpx) against a scripted server on a real socket:
what reaches the provider, what comes back, and what each failure tells the engine."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from pixwave.gateways.errors import GatewayAmbiguous, GatewayError, GatewayUnavailable
from pixwave.gateways.http import GatewayHTTP, Timeouts
from pixwave.gateways.transport import env_proxy


@dataclass
class Seen:
    """One request as the server read it."""

    head: list[str]
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head[0]

    def header(self, name: str) -> list[str]:
        prefix = name.lower() + ":"
        return [
            line.split(":", 1)[1].strip() for line in self.head if line.lower().startswith(prefix)
        ]


Behaviour = Callable[[Seen, int, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Server:
    """Reads HTTP/1.1 requests off kept-alive connections; ``behaviour`` answers each (its
    number on the connection given) and says whether to keep the connection."""

    behaviour: Behaviour
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = 0
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                head = raw.decode("latin-1").split("\r\n")[:-2]
                seen = Seen(head, b"")
                length = seen.header("content-length")
                if length:
                    seen.body = await reader.readexactly(int(length[0]))
                self.seen.append(seen)
                number += 1
                if not await self.behaviour(seen, number, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def ok(_seen: Seen, _number: int, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(b'{"ok": true}', "Content-Type: application/json"))
    await writer.drain()
    return True


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Behaviour], Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(behaviour: Behaviour) -> Server:
        server = Server(behaviour)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = listening.sockets[0].getsockname()[1]
        servers.append(listening)
        return server

    yield start
    for listening in servers:
        listening.close()


def refuse(operation: str, response: httpx.Response, _money: bool, latency: int) -> GatewayError:
    return GatewayError(
        f"{operation}: {response.status_code}",
        gateway="test",
        operation=operation,
        code="refused",
        latency_ms=latency,
    )


def client(port: int, **timeouts: float) -> GatewayHTTP:
    return GatewayHTTP(
        gateway="test",
        base_url=f"http://127.0.0.1:{port}",
        timeouts=Timeouts(**{"read": 2.0, "connect": 1.0, "pool": 1.0, **timeouts}),
        map_error=refuse,
        headers={"Authorization": "Bearer secret"},
    )


class TestExchange:
    async def test_the_request_arrives_as_httpx_built_it(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        server = await serve(ok)
        http = client(server.port)
        try:
            response, _ = await http.request(
                "charge", "POST", "/v1/orders", mutates=True, json={"amount": "12.34"},
                headers={"X-Idempotency-Key": "k-1"},
            )  # fmt: skip
        finally:
            await http.aclose()
        assert response.json() == {"ok": True}
        [seen] = server.seen
        assert seen.request_line == "POST /v1/orders HTTP/1.1"
        assert json.loads(seen.body) == {"amount": "12.34"}
        # One of each, as httpx wrote them; aiohttp adds none of its own.
        assert seen.header("content-type") == ["application/json"]
        assert seen.header("content-length") == [str(len(seen.body))]
        assert seen.header("authorization") == ["Bearer secret"]
        assert seen.header("x-idempotency-key") == ["k-1"]
        assert seen.header("user-agent") == [f"python-httpx/{httpx.__version__}"]

    async def test_raw_bytes_carry_no_content_type_of_aiohttps(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        server = await serve(ok)
        http = client(server.port)
        try:
            await http.request("notify", "POST", "/hook", mutates=True, content=b"raw")
        finally:
            await http.aclose()
        [seen] = server.seen
        assert seen.body == b"raw"
        assert seen.header("content-type") == []

    async def test_a_compressed_body_and_repeated_headers_come_back_as_sent(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        async def gzipped(_seen: Seen, _n: int, writer: asyncio.StreamWriter) -> bool:
            body = gzip.compress(b'{"status": "approved"}')
            writer.write(
                answer(
                    body,
                    "Content-Encoding: gzip",
                    "Content-Type: application/json",
                    "Set-Cookie: a=1",
                    "Link: <one>",
                    "Link: <two>",
                    status="201 Created",
                )
            )
            await writer.drain()
            return True

        server = await serve(gzipped)
        http = client(server.port)
        try:
            response, _ = await http.request("charge", "GET", "/v1/payments/1", mutates=False)
            await http.request("charge", "GET", "/v1/payments/2", mutates=False)
        finally:
            await http.aclose()
        assert response.status_code == 201
        assert response.json() == {"status": "approved"}
        assert response.headers.get_list("link") == ["<one>", "<two>"]
        # Kept alive: the second request rode the first one's connection, and its cookie is
        # httpx's to keep (a load balancer's stickiness), sent back once.
        assert server.connections == 1
        assert server.seen[1].header("cookie") == ["a=1"]

    async def test_an_error_status_goes_to_the_connector_mapping(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        async def rejected(_seen: Seen, _n: int, writer: asyncio.StreamWriter) -> bool:
            writer.write(answer(b'{"error": "bad"}', status="400 Bad Request"))
            await writer.drain()
            return True

        server = await serve(rejected)
        http = client(server.port)
        try:
            with pytest.raises(GatewayError, match="charge: 400"):
                await http.request("charge", "POST", "/v1/orders", mutates=True, json={})
        finally:
            await http.aclose()


class TestFailures:
    async def test_a_refused_connection_sent_nothing(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        http = client(port)
        try:
            with pytest.raises(GatewayUnavailable) as caught:
                await http.request("send", "PUT", "/v3/gn/pix/e1", mutates=True, json={})
        finally:
            await http.aclose()
        assert caught.value.code == "connect_failed"

    async def test_no_answer_in_time_is_ambiguous_for_a_mutation(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        async def silent(_seen: Seen, _n: int, _writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(5)
            return False

        server = await serve(silent)
        http = client(server.port, read=0.2)
        try:
            with pytest.raises(GatewayAmbiguous) as sent:
                await http.request("send", "PUT", "/v3/gn/pix/e1", mutates=True, json={})
            with pytest.raises(GatewayUnavailable) as read:
                await http.request("get_send", "GET", "/v3/gn/pix/e1", mutates=False)
        finally:
            await http.aclose()
        assert sent.value.code == read.value.code == "read_timeout"

    async def test_a_connection_lost_under_a_put_is_never_resent(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        """aiohttp resends an idempotent method once when a kept-alive connection breaks; a
        gateway's PUT creates a charge or sends a Pix: it goes once, and the engine learns it
        may have been taken."""

        async def then_drop(_seen: Seen, number: int, writer: asyncio.StreamWriter) -> bool:
            if number == 1:
                return await ok(_seen, number, writer)
            return False  # read the request, then close without a word

        server = await serve(then_drop)
        http = client(server.port)
        try:
            await http.request("charge", "GET", "/v2/cob/t1", mutates=False)
            with pytest.raises(GatewayAmbiguous) as caught:
                await http.request("send", "PUT", "/v3/gn/pix/e1", mutates=True, json={})
        finally:
            await http.aclose()
        assert caught.value.code == "connection_lost"
        assert [s.request_line for s in server.seen] == [
            "GET /v2/cob/t1 HTTP/1.1",
            "PUT /v3/gn/pix/e1 HTTP/1.1",
        ]

    async def test_waiting_for_a_free_connection_sent_nothing(
        self, serve: Callable[..., Awaitable[Server]]
    ) -> None:
        """One connection, held by a call that hangs: the next call gives up before sending."""

        async def slow(_seen: Seen, _n: int, writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(0.5)
            return await ok(_seen, _n, writer)

        server = await serve(slow)
        http = GatewayHTTP(
            gateway="test",
            base_url=f"http://127.0.0.1:{server.port}",
            timeouts=Timeouts(read=2.0, connect=0.1, pool=0.1),
            map_error=refuse,
            max_connections=1,
        )
        try:
            first = asyncio.create_task(
                http.request("charge", "POST", "/v1/orders", mutates=True, json={})
            )
            await asyncio.sleep(0.1)
            with pytest.raises(GatewayUnavailable):
                await http.request("send", "POST", "/v1/sends", mutates=True, json={})
            await first
        finally:
            await http.aclose()
        assert [s.request_line for s in server.seen] == ["POST /v1/orders HTTP/1.1"]


class TestProxy:
    def test_the_environment_names_the_proxy_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        assert env_proxy("https://api.mercadopago.com") is None
        monkeypatch.setenv("HTTPS_PROXY", "http://egress:3128")
        assert env_proxy("https://api.mercadopago.com") == "http://egress:3128"
        assert env_proxy("http://127.0.0.1:9000") is None
        monkeypatch.setenv("NO_PROXY", "mercadopago.com")
        assert env_proxy("https://api.mercadopago.com") is None
        assert env_proxy("https://pix.api.efipay.com.br") == "http://egress:3128"
        monkeypatch.setenv("HTTPS_PROXY", "egress:3128")  # no scheme: plain HTTP, as httpx
        assert env_proxy("https://pix.api.efipay.com.br") == "http://egress:3128"

    async def test_calls_go_through_the_proxy(
        self, serve: Callable[..., Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        proxy = await serve(ok)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        http = GatewayHTTP(
            gateway="test",
            base_url="http://gateway.invalid",
            timeouts=Timeouts(read=2.0),
            map_error=refuse,
        )
        try:
            await http.request("charge", "GET", "/v1/payments/7", mutates=False)
        finally:
            await http.aclose()
        assert [s.request_line for s in proxy.seen] == [
            "GET http://gateway.invalid/v1/payments/7 HTTP/1.1"
        ]
