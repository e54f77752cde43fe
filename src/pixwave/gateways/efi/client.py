"""HTTP to Efí: the mTLS client certificate, the OAuth2 token and one retry on a 401.

Every Efí call — the token call included — presents the account's client certificate. The
bearer token comes from ``POST /oauth/token`` (client credentials) and is cached until a minute
before it expires; a single lock makes a burst of calls share one token request. A 401 means
the token was revoked or rotated early: the token is dropped, a new one fetched and the call
repeated once. That repeat is safe because every call the connector makes is idempotent by its
own id (txid, idEnvio, devolução id).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx
from pydantic import ValidationError

from pixwave.gateways.efi.mapping import GATEWAY, map_error
from pixwave.gateways.efi.schemas import Token
from pixwave.gateways.errors import GatewayError, GatewayUnavailable
from pixwave.gateways.http import GatewayHTTP, Timeouts, elapsed_ms

#: Refresh this long before the token's stated expiry, so a call never carries a token that
#: expires in flight.
TOKEN_REFRESH_MARGIN: Final = timedelta(seconds=60)

OAUTH_OPERATION: Final = "oauth.token"


def resolve_certificate(base_url: str, certificate_path: str | None) -> str | None:
    """The certificate to present, or None over plain HTTP (a local simulator needs none).

    Checked at construction so a wrong path fails at start-up, not on the first payment.
    """
    if certificate_path is not None and not Path(certificate_path).is_file():
        raise ValueError(
            f"the Efí client certificate {certificate_path!r} does not exist or is not a file; "
            "set GERENCIANET_CERTIFICATE_PATH to the account's PEM certificate (convert the "
            "downloaded .p12 with openssl pkcs12 -nodes)"
        )
    if not base_url.lower().startswith("https://"):
        return None
    if certificate_path is None:
        raise ValueError(
            f"Efí requires the account's client certificate (mTLS) on every call to {base_url}; "
            "set GERENCIANET_CERTIFICATE_PATH"
        )
    return certificate_path


def parse_json(response: httpx.Response) -> Any:
    """Decode a body without ever producing a float."""
    return json.loads(response.content, parse_float=Decimal)


@dataclass(slots=True)
class _CachedToken:
    value: str
    refresh_at: datetime


class TokenManager:
    """Fetches and caches the bearer token; at most one token request is in flight."""

    def __init__(
        self,
        *,
        http: GatewayHTTP,
        client_id: str,
        client_secret: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._http = http
        credentials = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._clock = clock
        self._cached: _CachedToken | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> tuple[str, int]:
        """The current token and the milliseconds spent obtaining it (0 from the cache)."""
        cached = self._cached
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.value, 0
        started = time.perf_counter()
        async with self._lock:
            cached = self._cached
            if cached is None or self._clock() >= cached.refresh_at:
                cached = await self._fetch()
                self._cached = cached
        return cached.value, elapsed_ms(started)

    def invalidate(self, token: str) -> None:
        """Drop ``token`` — unless a concurrent call has already replaced it."""
        if self._cached is not None and self._cached.value == token:
            self._cached = None

    async def _fetch(self) -> _CachedToken:
        response, latency = await self._http.request(
            OAUTH_OPERATION,
            "POST",
            "/oauth/token",
            mutates=False,
            json={"grant_type": "client_credentials"},
            headers={"Authorization": self._basic},
        )
        try:
            token = Token.model_validate(parse_json(response))
        except (ValueError, ValidationError) as exc:
            raise GatewayUnavailable(
                f"{GATEWAY} {OAUTH_OPERATION}: unreadable token response: {exc}",
                gateway=GATEWAY,
                operation=OAUTH_OPERATION,
                code="invalid_response",
                http_status=response.status_code,
                latency_ms=latency,
            ) from exc
        lifetime = timedelta(seconds=token.expires_in)
        return _CachedToken(token.access_token, self._clock() + lifetime - TOKEN_REFRESH_MARGIN)


class EfiClient:
    """Authenticated calls to one Efí account; raises only GatewayError subclasses."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        certificate_path: str | None,
        timeouts: Timeouts,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        #: The PEM path presented on every call, or None over plain HTTP.
        self.cert = resolve_certificate(base_url, certificate_path)
        try:
            self.http = GatewayHTTP(
                gateway=GATEWAY,
                base_url=base_url,
                timeouts=timeouts,
                map_error=map_error,
                transport=transport,
                cert=self.cert,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"the Efí client certificate {certificate_path!r} could not be loaded: {exc}"
            ) from exc
        self.tokens = TokenManager(
            http=self.http, client_id=client_id, client_secret=client_secret, clock=clock
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
        headers: Mapping[str, str] | None = None,
    ) -> tuple[httpx.Response, int]:
        """Send with a bearer token; the latency includes obtaining the token."""
        spent = 0
        for attempt in (1, 2):
            try:
                token, token_ms = await self.tokens.get()
            except GatewayError as exc:
                exc.latency_ms += spent
                raise
            spent += token_ms
            try:
                response, latency = await self.http.request(
                    operation,
                    method,
                    path,
                    mutates=mutates,
                    moves_money=moves_money,
                    json=json,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                )
            except GatewayError as exc:
                exc.latency_ms += spent
                if exc.http_status != 401:
                    raise
                self.tokens.invalidate(token)
                if attempt == 1:
                    spent = exc.latency_ms
                    continue
                raise GatewayUnavailable(
                    f"{GATEWAY} {operation}: a freshly issued token was refused (HTTP 401); "
                    "check the client credentials and the certificate's account",
                    gateway=GATEWAY,
                    operation=operation,
                    code="authentication_failed",
                    http_status=401,
                    provider_code=exc.provider_code,
                    latency_ms=exc.latency_ms,
                ) from exc
            return response, latency + spent
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self.http.aclose()
