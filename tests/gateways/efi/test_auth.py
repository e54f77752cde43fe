"""Efí's OAuth2 token (cache, refresh, one retry on 401) and the mTLS client certificate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixwave.gateways.base import SendRequest
from pixwave.gateways.efi import HOMOLOGATION_URL, PRODUCTION_URL, EfiConnector, EfiWebhookAuth
from pixwave.gateways.errors import GatewayUnavailable
from pixwave.gateways.http import GatewayHTTP
from pixwave.gateways.pixapi import client as pixapi_client
from tests.certificates import self_signed_pem
from tests.gateways.efi import (
    CLIENT_ID,
    CLIENT_SECRET,
    PIX_KEY,
    REFERENCE_ID,
    FakeClock,
    FakeEfi,
    cob,
    make_connector,
)
from tests.gateways.scripted import body_of

COB_PATH = f"/v2/cob/{REFERENCE_ID}"


@pytest.fixture
def fake() -> FakeEfi:
    efi = FakeEfi()
    efi.on("GET", COB_PATH, httpx.Response(200, json=cob()))
    return efi


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def connector(fake: FakeEfi, clock: FakeClock) -> AsyncIterator[EfiConnector]:
    efi = make_connector(fake, clock=clock)
    yield efi
    await efi.aclose()


@pytest.fixture(scope="module")
def real_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away self-signed certificate and its key in one PEM, as Efí's is converted."""
    return self_signed_pem(tmp_path_factory.mktemp("efi-cert"))


class TestTokenRequest:
    async def test_token_call_uses_basic_credentials(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """The token call sends HTTP Basic base64(client_id:client_secret), byte for byte."""
        await connector.get_charge(REFERENCE_ID)
        expected = (
            "Basic Q2xpZW50X0lkXzRlNDMyN2UwNDVjZWIyNzdlZDVmNjJkYjhjNDZjMzk5YzMwOWUwYmY6"
            "Q2xpZW50X1NlY3JldF9iYjJhZTQxZTlmM2I1ZDNiOWU1ZDZiMWQxZjZjYmQwZWQxZjBlMmM3"
        )
        assert fake.token_requests[0].headers["authorization"] == expected

    async def test_token_call_posts_the_client_credentials_grant(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """The token call is POST /oauth/token with JSON {"grant_type":"client_credentials"}."""
        await connector.get_charge(REFERENCE_ID)
        request = fake.token_requests[0]
        assert (request.method, request.url.path) == ("POST", "/oauth/token")
        assert request.headers["content-type"] == "application/json"
        assert body_of(request) == {"grant_type": "client_credentials"}

    async def test_api_calls_carry_the_bearer_token(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """API calls present the issued token as a Bearer credential."""
        await connector.get_charge(REFERENCE_ID)
        assert fake.last().headers["authorization"] == "Bearer token-1"

    async def test_token_call_failure_is_classified_as_its_own_operation(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 5xx from the token call is Unavailable under operation oauth.token."""
        fake.token_replies = [httpx.Response(503, text="down")]
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert (caught.value.operation, caught.value.code) == (
            "oauth.token",
            "provider_unavailable",
        )
        assert fake.requests == []

    async def test_token_call_refused_credentials(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 401 from the token call is authentication_failed, without an API call."""
        fake.token_replies = [httpx.Response(401, json={"error": "invalid_client"})]
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert (caught.value.operation, caught.value.code) == (
            "oauth.token",
            "authentication_failed",
        )
        assert fake.requests == []

    async def test_token_call_transport_failure(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A connect error on the token call is Unavailable connect_failed, even for a send."""
        fake.token_replies = [httpx.ConnectError("connection refused")]
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_send("txn_1", "txn1")
        assert (caught.value.operation, caught.value.code) == ("oauth.token", "connect_failed")

    async def test_unreadable_token_response(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A 200 without an access_token is Unavailable invalid_response."""
        fake.token_replies = [httpx.Response(200, json={"token_type": "Bearer"})]
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert caught.value.code == "invalid_response"


class TestTokenCache:
    async def test_token_is_reused_by_later_calls(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Three calls in a row share one token request."""
        for _ in range(3):
            await connector.get_charge(REFERENCE_ID)
        assert len(fake.token_requests) == 1
        assert {r.headers["authorization"] for r in fake.requests} == {"Bearer token-1"}

    async def test_concurrent_calls_share_one_token_request(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Twenty concurrent first calls trigger a single token request."""
        await asyncio.gather(*(connector.get_charge(REFERENCE_ID) for _ in range(20)))
        assert len(fake.token_requests) == 1
        assert len(fake.requests) == 20

    async def test_token_is_kept_until_a_minute_before_expiry(
        self, connector: EfiConnector, fake: FakeEfi, clock: FakeClock
    ) -> None:
        """At 3539 s into a 3600 s token, the cached token is still used."""
        await connector.get_charge(REFERENCE_ID)
        clock.advance(3539)
        await connector.get_charge(REFERENCE_ID)
        assert len(fake.token_requests) == 1

    async def test_token_is_refreshed_a_minute_before_expiry(
        self, connector: EfiConnector, fake: FakeEfi, clock: FakeClock
    ) -> None:
        """At 3540 s into a 3600 s token, a new token is fetched and used."""
        await connector.get_charge(REFERENCE_ID)
        clock.advance(3540)
        await connector.get_charge(REFERENCE_ID)
        assert len(fake.token_requests) == 2
        assert fake.last().headers["authorization"] == "Bearer token-2"


class TestUnauthorizedRetry:
    async def test_401_refreshes_the_token_and_repeats_once(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 401 drops the token, fetches a new one and repeats the call with it."""
        fake.on(
            "GET",
            COB_PATH,
            httpx.Response(401, json={"nome": "nao_autorizado", "mensagem": "token expirado"}),
            httpx.Response(200, json=cob()),
        )
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.charge_id == REFERENCE_ID
        assert len(fake.token_requests) == 2
        assert [r.headers["authorization"] for r in fake.requests] == [
            "Bearer token-1",
            "Bearer token-2",
        ]

    async def test_second_401_is_authentication_failed(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 401 with a freshly issued token is Unavailable authentication_failed."""
        fake.on("GET", COB_PATH, httpx.Response(401))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert caught.value.code == "authentication_failed"
        assert caught.value.http_status == 401
        assert len(fake.requests) == 2
        assert len(fake.token_requests) == 2

    async def test_send_is_repeated_with_the_same_id_after_401(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """The repeat of a send after a 401 goes to the same idEnvio with the same body."""
        sent = {
            "idEnvio": "txn1",
            "e2eId": "E09089356202405011226APIff82f2e5",
            "valor": "12.34",
            "horario": {"solicitacao": "2024-05-01T12:26:42.905Z"},
            "status": "EM_PROCESSAMENTO",
        }
        fake.on("PUT", "/v3/gn/pix/txn1", httpx.Response(401), httpx.Response(201, json=sent))
        await connector.send_pix(SendRequest(reference="txn_1", amount=1234, pix_key="a@b.com"))
        first, second = fake.requests
        assert first.url.path == second.url.path == "/v3/gn/pix/txn1"
        assert first.content == second.content

    async def test_token_latency_counts_in_the_operation(
        self, connector: EfiConnector, fake: FakeEfi, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The token call's latency is added to the operation's latency_ms."""
        now = [0.0]
        monkeypatch.setattr("pixwave.gateways.http.time.perf_counter", lambda: now[0])

        def slow(
            seconds: float, reply: httpx.Response
        ) -> Callable[[httpx.Request], httpx.Response]:
            def answer(request: httpx.Request) -> httpx.Response:
                now[0] += seconds
                return reply

            return answer

        token = {"access_token": "token-1", "token_type": "Bearer", "expires_in": 3600}
        fake.token_replies = [slow(0.25, httpx.Response(200, json=token))]
        fake.on("GET", COB_PATH, slow(0.125, httpx.Response(200, json=cob())))
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.latency_ms == 375


class TestCertificate:
    def _build(self, **kwargs: Any) -> EfiConnector:
        params: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "pix_key": PIX_KEY,
            "webhook_auth": EfiWebhookAuth(),
            "transport": FakeEfi().transport(),
        }
        params.update(kwargs)
        return EfiConnector(**params)

    def test_environment_urls(self) -> None:
        """The production and homologation hosts are Efí's documented ones."""
        assert PRODUCTION_URL == "https://pix.api.efipay.com.br"
        assert HOMOLOGATION_URL == "https://pix-h.api.efipay.com.br"

    def test_https_presents_the_certificate(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Over https the PEM path is handed to the HTTP client as its cert."""
        pem = self_signed_pem(tmp_path)
        seen: dict[str, Any] = {}

        def spy(**kwargs: Any) -> GatewayHTTP:
            seen.update(kwargs)
            return GatewayHTTP(**kwargs)

        monkeypatch.setattr(pixapi_client, "GatewayHTTP", spy)
        connector = self._build(base_url=HOMOLOGATION_URL, certificate_path=str(pem))
        assert seen["cert"] == str(pem)
        assert connector.client.cert == str(pem)

    def test_an_unreadable_certificate_fails_at_construction(self, tmp_path: Path) -> None:
        """A file that is not a PEM certificate with its key fails at start-up, clearly."""
        pem = tmp_path / "efi.pem"
        pem.write_text("-----BEGIN CERTIFICATE-----\n")
        with pytest.raises(ValueError, match="could not be loaded"):
            self._build(base_url=HOMOLOGATION_URL, certificate_path=str(pem))

    def test_plain_http_presents_no_certificate(self, tmp_path: Path) -> None:
        """Over plain HTTP (a local simulator) no certificate is presented, even if configured."""
        pem = tmp_path / "efi.pem"
        pem.write_text("-----BEGIN CERTIFICATE-----\n")
        connector = self._build(base_url="http://127.0.0.1:8080", certificate_path=str(pem))
        assert connector.client.cert is None

    def test_plain_http_needs_no_certificate(self) -> None:
        """A plain-HTTP simulator URL works without any certificate configured."""
        connector = self._build(base_url="http://127.0.0.1:8080")
        assert connector.client.cert is None

    def test_https_without_certificate_raises(self) -> None:
        """Efí over https without a certificate fails at construction, naming the setting."""
        with pytest.raises(ValueError, match="GERENCIANET_CERTIFICATE_PATH"):
            self._build(base_url=PRODUCTION_URL)

    def test_missing_certificate_file_raises(self, tmp_path: Path) -> None:
        """A configured certificate path that does not exist raises ValueError."""
        missing = tmp_path / "nope.pem"
        with pytest.raises(ValueError, match=r"nope\.pem.*does not exist"):
            self._build(base_url=PRODUCTION_URL, certificate_path=str(missing))

    def test_missing_certificate_file_raises_for_http_too(self, tmp_path: Path) -> None:
        """A wrong path is a configuration error even when plain HTTP would not use it."""
        with pytest.raises(ValueError, match="does not exist"):
            self._build(base_url="http://127.0.0.1:8080", certificate_path=str(tmp_path / "x"))

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_unloadable_certificate_raises(self, tmp_path: Path) -> None:
        """A file that is not a PEM certificate raises ValueError when the client is built."""
        pem = tmp_path / "broken.pem"
        pem.write_text("not a certificate")
        with pytest.raises(ValueError, match="could not be loaded"):
            self._build(base_url=PRODUCTION_URL, certificate_path=str(pem), transport=None)

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    async def test_real_certificate_loads(self, real_pem: Path) -> None:
        """A real PEM certificate and key load into the https client without error."""
        connector = self._build(
            base_url=PRODUCTION_URL, certificate_path=str(real_pem), transport=None
        )
        assert connector.client.cert == str(real_pem)
        await connector.aclose()
