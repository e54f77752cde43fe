"""HTTP to an API Pix: the mTLS client certificate, the OAuth2 token and one retry on a 401.

The Central Bank's security manual asks for mutual TLS on every call to a PSP's API Pix, the
token call included, and OAuth2 client credentials (RFC 6749 §4.4) for authorisation: a bearer
token from the PSP's token URL — often on another host or path than the API itself — cached
until a minute before it expires, behind one lock so that a burst of calls shares one token
request. A 401 means the token was revoked or rotated early: it is dropped, a new one fetched
and the call repeated once. That repeat is safe because every call a connector makes is
idempotent by its own id (txid, devolução id).
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
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import httpx
from pydantic import ValidationError

from pixwave.gateways.errors import GatewayError, GatewayUnavailable
from pixwave.gateways.http import ErrorMapper, GatewayHTTP, Timeouts, elapsed_ms
from pixwave.gateways.pixapi.schemas import Token

#: Refresh this long before the token's stated expiry, so a call never carries a token that
#: expires in flight.
TOKEN_REFRESH_MARGIN: Final = timedelta(seconds=60)

OAUTH_OPERATION: Final = "oauth.token"


class TokenRequestBody(StrEnum):
    """How the token request carries ``grant_type``."""

    FORM = "form"  # RFC 6749: application/x-www-form-urlencoded, with the scopes asked for
    JSON = "json"  # Efí's SDK: {"grant_type": "client_credentials"}, no scope


@dataclass(frozen=True, slots=True)
class CertificateRules:
    """Who the certificate is for, for the errors that name the setting to fix."""

    provider: str  # "Efí", "bancoa"
    setting: str  # the environment variable holding the path


def resolve_certificate(
    rules: CertificateRules, certificate_path: str | None, *urls: str
) -> str | None:
    """The certificate to present, or None when every URL is plain HTTP (a local simulator).

    Checked at construction so a wrong path fails at start-up, not on the first payment.
    """
    if certificate_path is not None and not Path(certificate_path).is_file():
        raise ValueError(
            f"the {rules.provider} client certificate {certificate_path!r} does not exist or is "
            f"not a file; set {rules.setting} to the account's PEM certificate (convert the "
            "downloaded .p12 with openssl pkcs12 -nodes)"
        )
    secure = [url for url in urls if url.lower().startswith("https://")]
    if not secure:
        return None
    if certificate_path is None:
        raise ValueError(
            f"{rules.provider} requires the account's client certificate (mTLS) on every call "
            f"to {secure[0]}; set {rules.setting}"
        )
    plain = [url for url in urls if url.lower().startswith("http://")]
    if plain:
        # Half over TLS means client credentials or bearer tokens in clear on the other half
        # (a relative token path shares the API's scheme).
        raise ValueError(
            f"{rules.provider} is configured with {secure[0]} over https but {plain[0]} over plain "
            "http: the token and the API must both use https (or both http, for a local "
            "simulator)"
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
        token_url: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], datetime],
        scopes: str | None = None,
        body: TokenRequestBody = TokenRequestBody.FORM,
    ) -> None:
        self._http = http
        self._token_url = token_url
        credentials = f"{client_id}:{client_secret}".encode()
        self._basic = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._clock = clock
        self._scopes = scopes
        self._body = body
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
        try:
            response, latency = await self._request_token()
        except GatewayUnavailable:
            raise
        except GatewayError as exc:
            # An OAuth error (invalid_client, invalid_scope …) is our configuration, not the
            # payment's fault: this gateway cannot be used until an operator acts, and counts
            # as down so routing moves on — never a refusal that fails every payment.
            raise GatewayUnavailable(
                f"{exc.gateway} {OAUTH_OPERATION}: the token endpoint refused our credentials "
                f"or scopes: {exc.message}",
                gateway=exc.gateway,
                operation=OAUTH_OPERATION,
                code="authentication_failed",
                http_status=exc.http_status,
                provider_code=exc.provider_code,
                latency_ms=exc.latency_ms,
            ) from exc
        return self._token(response, latency)

    async def _request_token(self) -> tuple[httpx.Response, int]:
        headers = {"Authorization": self._basic}
        if self._body is TokenRequestBody.JSON:
            return await self._http.request(
                OAUTH_OPERATION,
                "POST",
                self._token_url,
                mutates=False,
                json={"grant_type": "client_credentials"},
                headers=headers,
            )
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = self._scopes
        return await self._http.request(
            OAUTH_OPERATION,
            "POST",
            self._token_url,
            mutates=False,
            content=urlencode(form).encode("ascii"),
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )

    def _token(self, response: httpx.Response, latency: int) -> _CachedToken:
        gateway = self._http.gateway
        try:
            token = Token.model_validate(parse_json(response))
        except (ValueError, ValidationError) as exc:
            raise GatewayUnavailable(
                f"{gateway} {OAUTH_OPERATION}: unreadable token response: {exc}",
                gateway=gateway,
                operation=OAUTH_OPERATION,
                code="invalid_response",
                http_status=response.status_code,
                latency_ms=latency,
            ) from exc
        lifetime = timedelta(seconds=token.expires_in)
        return _CachedToken(token.access_token, self._clock() + lifetime - TOKEN_REFRESH_MARGIN)


class PixApiClient:
    """Authenticated calls to one PSP account; raises only GatewayError subclasses."""

    def __init__(
        self,
        *,
        gateway: str,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        certificate_path: str | None,
        certificate: CertificateRules,
        timeouts: Timeouts,
        clock: Callable[[], datetime],
        map_error: ErrorMapper,
        scopes: str | None = None,
        token_body: TokenRequestBody = TokenRequestBody.FORM,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.gateway = gateway
        #: The PEM path presented on every call, or None over plain HTTP.
        self.cert = resolve_certificate(certificate, certificate_path, base_url, token_url)
        try:
            self.http = GatewayHTTP(
                gateway=gateway,
                base_url=base_url,
                timeouts=timeouts,
                map_error=map_error,
                transport=transport,
                cert=self.cert,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"the {certificate.provider} client certificate {certificate_path!r} could not "
                f"be loaded: {exc}"
            ) from exc
        self.tokens = TokenManager(
            http=self.http,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            clock=clock,
            scopes=scopes,
            body=token_body,
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
        params: Mapping[str, str] | None = None,
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
                    params=params,
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
                    f"{self.gateway} {operation}: a freshly issued token was refused (HTTP 401); "
                    "check the client credentials and the certificate's account",
                    gateway=self.gateway,
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
