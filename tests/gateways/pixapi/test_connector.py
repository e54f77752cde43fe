"""The standard API Pix connector against a scripted bank (httpx.MockTransport)."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixwave.gateways.base import (
    Capability,
    ChargeRequest,
    ChargeStatus,
    PixGateway,
    RefundRequest,
    RefundStatus,
    SendRequest,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    UnsupportedOperation,
)
from pixwave.gateways.pixapi import DEFAULT_SCOPES, PixApiConnector
from tests.certificates import self_signed_pem
from tests.gateways.pixapi import (
    API,
    BRCODE,
    CLIENT_ID,
    CLIENT_SECRET,
    E2E_ID,
    GATEWAY,
    PIX_KEY,
    REFERENCE,
    REFERENCE_ID,
    REFUND_ID,
    REFUND_REFERENCE,
    TOKEN_URL,
    FakeBank,
    FakeClock,
    cob,
    devolucao,
    form_of,
    make_connector,
    pix_received,
    problem,
)
from tests.gateways.scripted import body_of

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COB = f"/cob/{REFERENCE_ID}"
REFUND = f"/pix/{E2E_ID}/devolucao/{REFUND_ID}"


@pytest.fixture
def bank() -> FakeBank:
    return FakeBank()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def connector(bank: FakeBank, clock: FakeClock) -> PixApiConnector:
    return make_connector(bank, clock=clock)


def charge_request(**overrides: Any) -> ChargeRequest:
    return replace(ChargeRequest(reference=REFERENCE, amount=123_45, expires_in=3600), **overrides)


def refund_request(amount: int = 7_89) -> RefundRequest:
    return RefundRequest(
        reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=E2E_ID, amount=amount
    )


class TestIdentity:
    def test_the_name_is_the_instances(self, bank: FakeBank) -> None:
        """Each bank account is its own gateway, named by the constructor."""
        assert make_connector(bank, name="bancob").name == "bancob"

    def test_no_send_capability(self, connector: PixApiConnector) -> None:
        """The standard has no send: charges, refunds and webhooks only."""
        assert connector.capabilities == {
            Capability.CHARGE,
            Capability.REFUND,
            Capability.WEBHOOK,
        }
        assert isinstance(connector, PixGateway)

    async def test_results_carry_the_instance_name(self, bank: FakeBank) -> None:
        """A charge read through bancob says bancob."""
        bank.on("GET", COB, httpx.Response(200, json=cob()))
        charge = await make_connector(bank, name="bancob").get_charge(REFERENCE_ID)
        assert charge.gateway == "bancob"


class TestToken:
    async def test_token_comes_from_its_own_url_as_a_form(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Client credentials go to the token URL (another host) form-encoded, with scopes."""
        bank.on("GET", COB, httpx.Response(200, json=cob()))
        await connector.get_charge(REFERENCE_ID)
        (token,) = bank.token_requests
        assert str(token.url) == TOKEN_URL
        assert token.headers["content-type"] == "application/x-www-form-urlencoded"
        assert form_of(token) == {"grant_type": ["client_credentials"], "scope": [DEFAULT_SCOPES]}
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert token.headers["authorization"] == f"Basic {basic}"
        assert bank.last().headers["authorization"] == "Bearer token-1"
        assert str(bank.last().url).startswith("http://api.bancoa.test/pix/v2/cob/")

    async def test_configured_scopes_are_asked_for(self, bank: FakeBank) -> None:
        """The scopes setting replaces the default in the token request."""
        bank.on("GET", COB, httpx.Response(200, json=cob()))
        await make_connector(bank, scopes="cob.read").get_charge(REFERENCE_ID)
        assert form_of(bank.token_requests[0])["scope"] == ["cob.read"]

    async def test_the_token_is_cached_until_shortly_before_expiry(
        self, connector: PixApiConnector, bank: FakeBank, clock: FakeClock
    ) -> None:
        """One token serves calls until a minute before expires_in, then a new one is fetched."""
        bank.on("GET", COB, httpx.Response(200, json=cob()))
        await connector.get_charge(REFERENCE_ID)
        clock.advance(3600 - 61)
        await connector.get_charge(REFERENCE_ID)
        assert len(bank.token_requests) == 1
        clock.advance(2)
        await connector.get_charge(REFERENCE_ID)
        assert len(bank.token_requests) == 2

    async def test_a_401_refreshes_the_token_once(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A revoked token: one new token, the call repeated, and it succeeds."""
        bank.on("GET", COB, httpx.Response(401), httpx.Response(200, json=cob()))
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.charge_id == REFERENCE_ID
        assert [r.headers["authorization"] for r in bank.requests] == [
            "Bearer token-1",
            "Bearer token-2",
        ]

    async def test_a_second_401_is_an_authentication_failure(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A fresh token refused too: unavailable (our credentials), not rejected."""
        bank.on("GET", COB, httpx.Response(401))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert caught.value.code == "authentication_failed"
        assert len(bank.token_requests) == 2


class TestTokenRefused:
    @pytest.mark.parametrize("error", ["invalid_scope", "invalid_client", "unauthorized_client"])
    async def test_a_refused_token_is_unavailable_not_a_refusal(
        self, connector: PixApiConnector, bank: FakeBank, error: str
    ) -> None:
        """An OAuth error at the token endpoint is our configuration: the gateway counts as
        down, so routing moves on — never a rejection that would fail every payment."""
        bank.token_replies.append(httpx.Response(400, json={"error": error}))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge(REFERENCE_ID)
        assert caught.value.code == "authentication_failed"
        assert bank.calls() == []


class TestCertificate:
    def test_https_without_a_certificate_names_the_setting(self, bank: FakeBank) -> None:
        """mTLS is required over https; the error names this instance's variable."""
        with pytest.raises(ValueError, match="PIXAPI_BANCOA_CERTIFICATE_PATH"):
            make_connector(bank, base_url="https://api.bancoa.test/pix/v2")

    def test_an_https_token_url_needs_it_too(self, bank: FakeBank) -> None:
        """The token call presents the certificate as well."""
        with pytest.raises(ValueError, match="mTLS"):
            make_connector(bank, token_url="https://auth.bancoa.test/oauth2/token")

    def test_https_and_plain_http_together_are_refused(
        self, bank: FakeBank, tmp_path: Path
    ) -> None:
        """A token URL over https beside an API over http would carry bearer tokens in clear."""
        with pytest.raises(ValueError, match="plain http"):
            make_connector(
                bank,
                token_url="https://auth.bancoa.test/oauth2/token",
                certificate_path=str(self_signed_pem(tmp_path)),
            )

    def test_a_missing_file_fails_at_construction(self, bank: FakeBank, tmp_path: Path) -> None:
        """A configured path that does not exist is a start-up error."""
        with pytest.raises(ValueError, match="does not exist"):
            make_connector(bank, certificate_path=str(tmp_path / "nope.pem"))


class TestCreateCharge:
    async def test_put_cob_with_our_txid(self, connector: PixApiConnector, bank: FakeBank) -> None:
        """PUT {base}/cob/{txid} with the standard's body; the charge has its BR Code and QR."""
        bank.on("PUT", COB, httpx.Response(201, json=cob()))
        charge = await connector.create_charge(
            charge_request(description="x" * 200, payer_document="529.982.247-25", payer_name="Ana")
        )
        request = bank.last()
        assert request.url.path == API + COB
        assert body_of(request) == {
            "calendario": {"expiracao": 3600},
            "devedor": {"cpf": "52998224725", "nome": "Ana"},
            "valor": {"original": "123.45"},
            "chave": PIX_KEY,
            "solicitacaoPagador": "x" * 140,
        }
        assert (charge.charge_id, charge.txid, charge.gateway) == (
            REFERENCE_ID,
            REFERENCE_ID,
            GATEWAY,
        )
        assert (charge.status, charge.amount, charge.brcode) == (
            ChargeStatus.ACTIVE,
            123_45,
            BRCODE,
        )
        assert charge.qr_png_base64 is not None
        assert base64.b64decode(charge.qr_png_base64).startswith(PNG_MAGIC)

    async def test_no_devedor_without_a_name(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """The standard allows the payer only with both document and name."""
        bank.on("PUT", COB, httpx.Response(201, json=cob()))
        await connector.create_charge(charge_request(payer_document="52998224725"))
        assert "devedor" not in body_of(bank.last())

    async def test_a_cob_no_longer_active_is_read_back(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """PUT after a lost answer, the cob paid meanwhile: 400, then our cob, read back."""
        bank.on("PUT", COB, problem(400, "CobOperacaoInvalida", "Cobrança inválida.", "Não ATIVA"))
        paid = cob(status="CONCLUIDA", pix=[pix_received()])
        bank.on("GET", COB, httpx.Response(200, json=paid))
        charge = await connector.create_charge(charge_request())
        assert charge.status is ChargeStatus.PAID
        assert charge.reference == REFERENCE

    async def test_the_400_stands_when_there_is_no_such_cob(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A CobOperacaoInvalida about something else (no cob exists) is the rejection."""
        bank.on("PUT", COB, problem(400, "CobOperacaoInvalida", "Cobrança inválida.", "chave"))
        with pytest.raises(GatewayRejected) as caught:
            await connector.create_charge(charge_request())
        assert not isinstance(caught.value, GatewayNotFound)
        assert caught.value.provider_code == "CobOperacaoInvalida"

    async def test_the_400_stands_for_another_amount(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """An existing cob of another amount is not ours to return."""
        bank.on("PUT", COB, problem(400, "CobOperacaoInvalida", "Cobrança inválida.", "x"))
        bank.on("GET", COB, httpx.Response(200, json=cob(valor="1.00", status="CONCLUIDA")))
        with pytest.raises(GatewayRejected, match="x"):
            await connector.create_charge(charge_request())

    async def test_a_cob_without_its_br_code_is_unreadable(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """The standard has no QR route: no pixCopiaECola is an unreadable answer."""
        bank.on("PUT", COB, httpx.Response(201, json=cob(with_brcode=False)))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.create_charge(charge_request())
        assert caught.value.code == "invalid_response"
        assert bank.calls() == [("PUT", COB)]

    async def test_a_read_timeout_is_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Sent, no answer: the charge may exist — ambiguous."""
        bank.on("PUT", COB, httpx.ReadTimeout("slow"))
        with pytest.raises(GatewayAmbiguous):
            await connector.create_charge(charge_request())

    async def test_a_refused_connection_is_unavailable(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Nothing was sent: unavailable."""
        bank.on("PUT", COB, httpx.ConnectError("refused"))
        with pytest.raises(GatewayUnavailable):
            await connector.create_charge(charge_request())


class TestReadCharge:
    async def test_an_active_cob_past_its_expiry_is_expired(
        self, connector: PixApiConnector, bank: FakeBank, clock: FakeClock
    ) -> None:
        """ATIVA never says expired; the connector's clock does."""
        bank.on("GET", COB, httpx.Response(200, json=cob(expiracao=600)))
        clock.advance(3600)
        assert (await connector.get_charge(REFERENCE_ID)).status is ChargeStatus.EXPIRED

    async def test_an_unknown_status_is_active(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A status the table does not know is pending, never paid."""
        bank.on("GET", COB, httpx.Response(200, json=cob(status="EM_ANALISE")))
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.status, charge.provider_status) == (ChargeStatus.ACTIVE, "EM_ANALISE")

    async def test_a_paid_cob_with_its_pix(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """CONCLUIDA with pix[]: paid amount, e2e, and only settled refunds count."""
        refunds = [devolucao(valor="3.00", status="DEVOLVIDO"), devolucao(id="d2", valor="1.00")]
        paid = cob(status="CONCLUIDA", pix=[pix_received(devolucoes=refunds)])
        bank.on("GET", COB, httpx.Response(200, json=paid))
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.status, charge.paid_amount, charge.end_to_end_id) == (
            ChargeStatus.PAID,
            123_45,
            E2E_ID,
        )
        assert charge.refunded_amount == 3_00
        assert bank.calls() == [("GET", COB)]

    async def test_a_paid_cob_without_pix_is_completed_by_txid(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """CONCLUIDA without pix[]: GET /pix?txid= over the cob's life finds the payment."""
        bank.on("GET", COB, httpx.Response(200, json=cob(status="CONCLUIDA")))
        bank.on(
            "GET", "/pix", httpx.Response(200, json={"parametros": {}, "pix": [pix_received()]})
        )
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.end_to_end_id == E2E_ID
        params = bank.last().url.params
        assert params["txid"] == REFERENCE_ID
        assert (params["inicio"], params["fim"]) == ("2024-05-01T11:00:00Z", "2024-05-01T14:00:00Z")

    async def test_a_pix_naming_no_txid_is_not_taken_for_the_charges(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A bank that ignores the txid filter lists a static-key Pix of the same hour: it is
        not this deposit's payment (a refund of the deposit would return it)."""
        stranger = pix_received(e2e="E12345678202405011220stranger0001")
        del stranger["txid"]
        bank.on("GET", COB, httpx.Response(200, json=cob(status="CONCLUIDA")))
        bank.on("GET", "/pix", httpx.Response(200, json={"parametros": {}, "pix": [stranger]}))
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.end_to_end_id != stranger["endToEndId"]

    async def test_an_unknown_cob_is_not_found(self, connector: PixApiConnector) -> None:
        """CobNaoEncontrado → GatewayNotFound."""
        with pytest.raises(GatewayNotFound):
            await connector.get_charge("unknownTxid0000000000000000000")


class TestCancel:
    async def test_patch_removes_it(self, connector: PixApiConnector, bank: FakeBank) -> None:
        """An active cob is removed with PATCH status REMOVIDA_PELO_USUARIO_RECEBEDOR."""
        bank.on("GET", COB, httpx.Response(200, json=cob()))
        removed = cob(status="REMOVIDA_PELO_USUARIO_RECEBEDOR")
        bank.on("PATCH", COB, httpx.Response(200, json=removed))
        charge = await connector.cancel_charge(REFERENCE_ID)
        assert charge.status is ChargeStatus.CANCELLED
        assert body_of(bank.last()) == {"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}

    async def test_a_paid_cob_is_not_cancelled(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Paid: rejected, and no PATCH is sent."""
        bank.on("GET", COB, httpx.Response(200, json=cob(status="CONCLUIDA")))
        with pytest.raises(GatewayRejected) as caught:
            await connector.cancel_charge(REFERENCE_ID)
        assert caught.value.code == "charge_not_cancellable"
        assert ("PATCH", COB) not in bank.calls()


class TestNoSends:
    async def test_send_pix_is_refused_without_a_call(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """send_pix raises a rejection and nothing reaches the bank: no money can move."""
        request = SendRequest(reference=REFERENCE, amount=5_00, pix_key="a@b.com")
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(request)
        assert isinstance(caught.value, UnsupportedOperation)
        assert caught.value.code == "unsupported_operation"
        assert bank.requests == []
        assert bank.token_requests == []

    async def test_get_send_is_refused_too(self, connector: PixApiConnector) -> None:
        """There is no send to read: a rejection, not 'not found'."""
        with pytest.raises(GatewayRejected) as caught:
            await connector.get_send(REFERENCE)
        assert not isinstance(caught.value, GatewayNotFound)


class TestRefund:
    async def test_put_devolucao_with_our_id(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """PUT /pix/{e2eid}/devolucao/{id} with the amount as a string."""
        bank.on("PUT", REFUND, httpx.Response(201, json=devolucao()))
        refund = await connector.refund(refund_request())
        assert body_of(bank.last()) == {"valor": "7.89"}
        assert (refund.refund_id, refund.status, refund.amount, refund.gateway) == (
            REFUND_ID,
            RefundStatus.PROCESSING,
            7_89,
            GATEWAY,
        )

    async def test_without_an_e2e_it_is_refused(self, connector: PixApiConnector) -> None:
        """The standard refunds by endToEndId; none known is a rejection."""
        request = RefundRequest(
            reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=None, amount=1
        )
        with pytest.raises(GatewayRejected, match="endToEndId"):
            await connector.refund(request)

    async def test_an_id_already_used_returns_our_refund(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A repeat answered PixDevolucaoInvalida (id used) finds the first refund."""
        bank.on("PUT", REFUND, problem(400, "PixDevolucaoInvalida", "Devolução inválida.", "id"))
        bank.on("GET", REFUND, httpx.Response(200, json=devolucao(status="DEVOLVIDO")))
        refund = await connector.refund(refund_request())
        assert refund.status is RefundStatus.SUCCEEDED

    async def test_the_400_stands_when_no_refund_has_the_id(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """PixDevolucaoInvalida for another reason (above the Pix's value) is the rejection."""
        bank.on(
            "PUT", REFUND, problem(400, "PixDevolucaoInvalida", "Devolução inválida.", "excede")
        )
        with pytest.raises(GatewayRejected, match="excede") as caught:
            await connector.refund(refund_request())
        assert not isinstance(caught.value, GatewayNotFound)

    async def test_our_refund_id_with_another_amount_is_ambiguous_never_refused(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """The id derives from our refund, so a devolução under it is ours: refusing would
        release the hold while money left. Ambiguous: the engine asks again."""
        bank.on("PUT", REFUND, problem(400, "PixDevolucaoInvalida", "Devolução inválida.", "id"))
        bank.on("GET", REFUND, httpx.Response(200, json=devolucao(valor="5.00")))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.refund(refund_request())
        assert caught.value.code == "refund_amount_mismatch"

    async def test_an_id_used_whose_read_back_fails_is_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """The read-back after "id used" answers 503: the refund may exist — ambiguous, not
        unavailable (which would let the engine give up and release the hold)."""
        bank.on("PUT", REFUND, problem(400, "PixDevolucaoInvalida", "Devolução inválida.", "id"))
        bank.on("GET", REFUND, problem(503, "ServicoIndisponivel", "Indisponível", "tente"))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.refund(refund_request())
        assert caught.value.code == "duplicate_unconfirmed"

    @pytest.mark.parametrize("status", [500, 502, 504])
    async def test_a_5xx_saying_unavailable_is_still_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank, status: int
    ) -> None:
        """On a money-moving call the status decides: a body's code cannot prove the bank
        did not act."""
        bank.on("PUT", REFUND, problem(status, "ServicoIndisponivel", "Indisponível", "tente"))
        with pytest.raises(GatewayAmbiguous):
            await connector.refund(refund_request())

    @pytest.mark.parametrize("status", [500, 502, 504])
    async def test_a_5xx_is_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank, status: int
    ) -> None:
        """A refund moves money: a 5xx other than 503 may have acted."""
        bank.on("PUT", REFUND, problem(status, "ErroInternoDoServidor", "Erro", "erro"))
        with pytest.raises(GatewayAmbiguous):
            await connector.refund(refund_request())

    async def test_a_503_is_unavailable(self, connector: PixApiConnector, bank: FakeBank) -> None:
        """503 refused the request outright: safe to retry elsewhere in time."""
        bank.on("PUT", REFUND, problem(503, "ServicoIndisponivel", "Indisponível", "manutenção"))
        with pytest.raises(GatewayUnavailable):
            await connector.refund(refund_request())

    async def test_a_read_timeout_is_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Sent, no answer: ambiguous."""
        bank.on("PUT", REFUND, httpx.ReadTimeout("slow"))
        with pytest.raises(GatewayAmbiguous):
            await connector.refund(refund_request())

    async def test_an_unreadable_2xx_is_ambiguous(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A 201 we cannot read on a money call may have worked: ambiguous."""
        bank.on("PUT", REFUND, httpx.Response(201, content=b"<html>"))
        with pytest.raises(GatewayAmbiguous):
            await connector.refund(refund_request())

    async def test_get_refund_by_derived_id(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """Without the provider id, the devolução id derives from our refund reference."""
        bank.on("GET", REFUND, httpx.Response(200, json=devolucao(status="NAO_REALIZADO")))
        refund = await connector.get_refund(
            reference=REFUND_REFERENCE,
            charge_id=REFERENCE_ID,
            end_to_end_id=E2E_ID,
            refund_id=None,
        )
        assert refund.status is RefundStatus.FAILED


class TestWebhookRegistration:
    async def test_register_puts_the_url_for_our_key(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """PUT /webhook/{chave} with webhookUrl; the standard answers 200 without a body."""
        bank.on("PUT", f"/webhook/{PIX_KEY}", httpx.Response(200))
        await connector.register_webhook("https://pixwave.example/webhooks/bancoa?hmac=s&ignorar=")
        assert body_of(bank.last()) == {
            "webhookUrl": "https://pixwave.example/webhooks/bancoa?hmac=s&ignorar="
        }

    async def test_no_webhook_reads_none(self, connector: PixApiConnector) -> None:
        """WebhookNaoEncontrado → None."""
        assert await connector.get_webhook() is None


class TestAmounts:
    async def test_a_number_amount_is_read_exactly(
        self, connector: PixApiConnector, bank: FakeBank
    ) -> None:
        """A PSP sending a JSON number never goes through float."""
        bank.on("GET", COB, httpx.Response(200, content=_json_with_number()))
        assert (await connector.get_charge(REFERENCE_ID)).amount == 30


def _json_with_number() -> bytes:
    text = httpx.Response(200, json=cob(valor="0.30")).content
    return text.replace(b'"original":"0.30"', b'"original":0.3')
