"""The gateways' HTTP transport: aiohttp underneath, httpx's interface on top.

Connectors speak httpx (requests, responses, auth flows, `MockTransport` in their unit tests);
what carries the bytes is aiohttp's connection pool and C parser. httpx's own pool (httpcore
over anyio) cost a worker about a third of a credit: it polls every idle connection it holds
before placing each request, and every read goes through anyio's task bookkeeping. On the same
requests this transport costs a third of that (ADR 26, docs/performance.md).

What a gateway call may assume is decided by the *kind* of failure (nothing sent, maybe sent),
so this module's one job besides carrying bytes is to raise the httpx exception that says the
same thing aiohttp's did, and `gateways.http.transport_failure` classifies it as before:

=====================================  ========================  =======================
aiohttp                                httpx                     what it means
=====================================  ========================  =======================
``ConnectionTimeoutError``             ``ConnectTimeout``        nothing sent (no free
                                                                 connection, or no
                                                                 handshake, in time)
``ClientConnectorError`` (refused,     ``ConnectError``          nothing sent
DNS, TLS), ``ServerFingerprintMismatch``
``SocketTimeoutError``                 ``ReadTimeout``           sent, no answer in time
``ServerDisconnectedError``,           ``RemoteProtocolError``   sent, or maybe sent
malformed response
any other ``ClientError``              ``ReadError``             maybe sent
=====================================  ========================  =======================

aiohttp resends an idempotent method (``GET``, ``PUT``…) once by itself when a kept-alive
connection breaks under it. A gateway's ``PUT`` is not harmless twice (a provider may create a
charge or send a Pix with one), and a resent request would turn "maybe sent" into an answer
about the resend; that retry is turned off: every call is sent once, and the engine decides.
"""

from __future__ import annotations

import ssl
import urllib.parse
import urllib.request
from typing import Final

import aiohttp
import httpx

#: Idle connections are closed after this (httpx's default keep-alive expiry): a provider's
#: load balancer may drop them sooner, and a request written into a dropped one is ambiguous.
KEEPALIVE_SECONDS: Final = 5.0


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One connection pool per gateway client, opened on the first request (aiohttp binds
    it to the running event loop)."""

    def __init__(self, *, tls: ssl.SSLContext, max_connections: int, proxy: str | None) -> None:
        self._tls = tls
        self._proxy = proxy
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._tls,
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            # httpx sends the headers, decodes the body and keeps the cookies: aiohttp adds
            # none of its own and leaves the body as it came.
            auto_decompress=False,
            skip_auto_headers=("Content-Type",),
            cookie_jar=aiohttp.DummyCookieJar(),
            # Read once (`env_proxy`): aiohttp's trust_env reads the environment and ~/.netrc
            # again for every request.
            proxy=self._proxy,
        )
        session._retry_connection = False  # see the module's docstring: every call goes once
        return session

    @staticmethod
    def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
        """httpx's four timeouts in aiohttp's terms: ``connect`` there is the wait for a
        pooled connection *and* the handshake; ``sock_read`` bounds each read, as httpx's
        ``read`` does. A request body is written into the socket's buffer (gateways take a few
        hundred bytes), so the wait that matters after it is the read's."""
        given = request.extensions.get("timeout", {})
        pool, connect = given.get("pool"), given.get("connect")
        return aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=given.get("read"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._session = self._open()
        body = await request.aread()
        headers = request.headers.multi_items()
        if "transfer-encoding" in request.headers:  # a streamed body, now read: a length
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request),
            ) as response:
                content = await response.read()
        except aiohttp.ClientError as exc:
            raise _translate(exc, request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=httpx.ByteStream(content),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``ALL_PROXY``, unless
    ``NO_PROXY`` covers its host), as httpx would have used it: a gateway client talks to one
    host, so this is read once, when the client is built."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:  # `egress:3128`, which httpx reads as plain HTTP
        proxy = f"http://{proxy}"
    return proxy


def _translate(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that says what aiohttp's says about the request (the table in the
    module's docstring); the most specific class first."""
    kind: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        kind = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.ReadError
    return kind(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, request=request)
