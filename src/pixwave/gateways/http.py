"""One HTTP call to a gateway: timeouts, latency, error classification and one log line.

Connectors build their requests and map their provider's error bodies; everything that is the
same for every provider — which httpx failure means "nothing was sent" and which means "maybe"
— lives here, so the two connectors cannot disagree about it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from pixwave.gateways.errors import (
    TRANSPORT_CODES,
    TRANSPORT_OUTCOMES,
    GatewayError,
    Outcome,
    TransportFailure,
)
from pixwave.gateways.transport import AiohttpTransport, env_proxy
from pixwave.observability.metrics import observe_gateway_call

log = structlog.get_logger("pixwave.gateways")

#: Maps an error response to the exception to raise; the connector's provider table lives there.
ErrorMapper = Callable[[str, httpx.Response, bool, int], GatewayError]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``read`` bounds the wait for each response chunk; ``connect`` the handshake."""

    connect: float = 3.0
    read: float = 10.0
    write: float = 5.0
    pool: float = 2.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


def transport_failure(exc: httpx.TransportError) -> TransportFailure:
    """Which phase of the exchange an httpx error happened in."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return TransportFailure.CONNECT
    if isinstance(exc, httpx.PoolTimeout):
        return TransportFailure.POOL
    if isinstance(exc, httpx.WriteTimeout | httpx.WriteError):
        return TransportFailure.WRITE
    if isinstance(exc, httpx.ReadTimeout):
        return TransportFailure.READ_TIMEOUT
    # ReadError, RemoteProtocolError ("server disconnected without sending a response") and
    # anything unforeseen: assume the request was sent.
    return TransportFailure.READ


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), or None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


class GatewayHTTP:
    """An httpx client bound to one provider, raising only GatewayError subclasses."""

    def __init__(
        self,
        *,
        gateway: str,
        base_url: str,
        timeouts: Timeouts,
        map_error: ErrorMapper,
        transport: httpx.AsyncBaseTransport | None = None,
        cert: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
    ) -> None:
        self.gateway = gateway
        self._map_error = map_error
        tls: ssl.SSLContext | None = None
        if cert is not None:
            # The client certificate (PEM with its key) for mTLS; loading it here makes a bad
            # file fail at start-up instead of on the first payment.
            tls = ssl.create_default_context()
            tls.load_cert_chain(cert)
        if transport is None:  # otherwise a test's (an ASGI app, a MockTransport)
            transport = AiohttpTransport(  # ADR 26
                # certifi's roots (or SSL_CERT_FILE's) unless a client certificate is used
                tls=tls or httpx.create_ssl_context(),
                max_connections=max_connections,
                proxy=env_proxy(base_url),
            )
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeouts.httpx(),
            transport=transport,
            headers=dict(headers or {}),
        )

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        mutates: bool,
        moves_money: bool = False,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send once; return the 2xx response and its latency, or raise the classified error."""
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method,
                path,
                json=json,
                content=content,
                params=params,
                headers=headers,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            latency = elapsed_ms(started)
            failure = transport_failure(exc)
            error_class = TRANSPORT_OUTCOMES[(failure, mutates)]
            error = error_class(
                f"{self.gateway} {operation}: {type(exc).__name__}: {exc}",
                gateway=self.gateway,
                operation=operation,
                code=TRANSPORT_CODES[failure],
                latency_ms=latency,
            )
            self._log(operation, method, path, None, error.outcome, latency, error.code)
            raise error from exc
        latency = elapsed_ms(started)
        if response.is_success:
            self._log(operation, method, path, response.status_code, Outcome.SUCCEEDED, latency)
            return response, latency
        error = self._map_error(operation, response, moves_money, latency)
        self._log(operation, method, path, response.status_code, error.outcome, latency, error.code)
        raise error

    def _log(
        self,
        operation: str,
        method: str,
        path: str,
        status: int | None,
        outcome: Outcome,
        latency_ms: int,
        code: str | None = None,
    ) -> None:
        observe_gateway_call(self.gateway, operation, outcome.value, latency_ms)
        log.info(
            "gateway.call",
            gateway=self.gateway,
            operation=operation,
            method=method,
            path=path,
            http_status=status,
            outcome=outcome.value,
            latency_ms=latency_ms,
            error_code=code,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
