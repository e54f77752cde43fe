"""EfiConnector: each operation's request on the wire and the mapping of Efí's answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
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
    SendStatus,
)
from pixwave.gateways.efi import EfiConnector
from pixwave.gateways.efi.connector import devolucao_id_for, id_envio_for, txid_for
from pixwave.gateways.errors import (
    TRANSPORT_CODES,
    TRANSPORT_OUTCOMES,
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    TransportFailure,
)
from pixwave.pix import qr_png_base64
from tests.gateways.efi import (
    BRCODE,
    E2E_ID,
    PIX_KEY,
    PNG_BASE64,
    REFERENCE,
    REFERENCE_ID,
    REFUND_ID,
    REFUND_REFERENCE,
    RTR_ID,
    FakeClock,
    FakeEfi,
    cob,
    devolucao,
    efi_error,
    make_connector,
    pix_received,
    problem,
)
from tests.gateways.scripted import body_of

COB_PATH = f"/v2/cob/{REFERENCE_ID}"
QR_PATH = "/v2/loc/789/qrcode"
SEND_PATH = f"/v3/gn/pix/{REFERENCE_ID}"
SEND_GET_PATH = f"/v2/gn/pix/enviados/id-envio/{REFERENCE_ID}"
REFUND_PATH = f"/v2/pix/{E2E_ID}/devolucao/{REFUND_ID}"
WEBHOOK_PATH = f"/v2/webhook/{PIX_KEY}"
SEND_E2E = "E09089356202405011226APIff82f2e5"

CHARGE = ChargeRequest(reference=REFERENCE, amount=12345, expires_in=3600, description="Pedido 42")
SEND = SendRequest(
    reference=REFERENCE,
    amount=1234,
    pix_key="joão@meuemail.com",
    description="Saque 42",
    recipient_document="58629188090",
)
REFUND = RefundRequest(
    reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=E2E_ID, amount=789
)


def send_created(status: str = "EM_PROCESSAMENTO", valor: str = "12.34") -> dict[str, Any]:
    return {
        "idEnvio": REFERENCE_ID,
        "e2eId": SEND_E2E,
        "valor": valor,
        "horario": {"solicitacao": "2024-05-01T12:26:42.905Z"},
        "status": status,
    }


def pix_enviado(status: str = "REALIZADO", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "endToEndId": SEND_E2E,
        "idEnvio": REFERENCE_ID,
        "valor": "12.34",
        "chave": PIX_KEY,
        "status": status,
        "infoPagador": "Saque 42",
        "horario": {
            "solicitacao": "2024-05-01T12:26:42.905Z",
            "liquidacao": "2024-05-01T12:26:43.112Z",
        },
        "favorecido": {
            "chave": "joão@meuemail.com",
            "identificacao": {"nome": "João Souza", "cpf": "***.291.880-**"},
        },
    }
    body.update(extra)
    return body


@pytest.fixture
def fake() -> FakeEfi:
    return FakeEfi()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def connector(fake: FakeEfi, clock: FakeClock) -> AsyncIterator[EfiConnector]:
    efi = make_connector(fake, clock=clock)
    yield efi
    await efi.aclose()


class TestContract:
    def test_is_a_pix_gateway(self, connector: EfiConnector) -> None:
        """The connector satisfies the PixGateway protocol with every capability."""
        assert isinstance(connector, PixGateway)
        assert connector.name == "efi"
        assert connector.capabilities == {
            Capability.CHARGE,
            Capability.SEND,
            Capability.REFUND,
            Capability.WEBHOOK,
        }


class TestDeterministicIds:
    def test_txid_is_the_reference_alphanumerics(self) -> None:
        """A ULID transaction id gives a 29-character txid of its letters and digits."""
        assert txid_for(REFERENCE) == "txn01JDQ8ZB4E3M5V7X9K2N6P8R0T"

    def test_short_txid_is_padded_to_26(self) -> None:
        """A short reference is right-padded with zeros to the cob minimum of 26."""
        assert txid_for("txn_42") == "txn42" + "0" * 21

    def test_long_txid_is_cut_to_35(self) -> None:
        """A long reference is truncated to the txid maximum of 35."""
        assert txid_for("a-" * 40) == "a" * 35

    def test_id_envio_and_devolucao_id_are_not_padded(self) -> None:
        """idEnvio and the devolução id are the alphanumerics, cut to 35, never padded."""
        assert id_envio_for("txn_42") == "txn42"
        assert devolucao_id_for("r_" + "9" * 40) == "r" + "9" * 34

    def test_reference_without_alphanumerics_is_rejected(self) -> None:
        """A reference with no letters or digits cannot name an Efí resource."""
        with pytest.raises(GatewayRejected) as caught:
            txid_for("___")
        assert caught.value.code == "invalid_reference"


class TestCreateCharge:
    async def test_request_on_the_wire(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """PUT /v2/cob/{txid} with expiry, amount text, our key and the description."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        await connector.create_charge(CHARGE)
        request = fake.last()
        assert (request.method, request.url.path) == ("PUT", COB_PATH)
        assert body_of(request) == {
            "calendario": {"expiracao": 3600},
            "valor": {"original": "123.45"},
            "chave": PIX_KEY,
            "solicitacaoPagador": "Pedido 42",
        }

    @pytest.mark.parametrize(
        ("amount", "text"), [(1, "0.01"), (5, "0.05"), (1000, "10.00"), (123456789, "1234567.89")]
    )
    async def test_amount_text(
        self, connector: EfiConnector, fake: FakeEfi, amount: int, text: str
    ) -> None:
        """Centavos become Efí's two-decimal string exactly."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob(valor=text)))
        charge = await connector.create_charge(
            ChargeRequest(reference=REFERENCE, amount=amount, expires_in=60)
        )
        assert body_of(fake.last())["valor"] == {"original": text}
        assert charge.amount == amount

    async def test_payer_with_cpf_and_name(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A CPF and a name become devedor {cpf, nome}."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        await connector.create_charge(
            ChargeRequest(
                reference=REFERENCE,
                amount=12345,
                expires_in=3600,
                payer_document="123.456.789-09",
                payer_name="Francisco da Silva",
            )
        )
        assert body_of(fake.last())["devedor"] == {
            "cpf": "12345678909",
            "nome": "Francisco da Silva",
        }

    async def test_payer_with_cnpj_and_name(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A CNPJ and a name become devedor {cnpj, nome}."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        await connector.create_charge(
            ChargeRequest(
                reference=REFERENCE,
                amount=12345,
                expires_in=3600,
                payer_document="12345678000195",
                payer_name="Empresa de Serviços SA",
            )
        )
        assert body_of(fake.last())["devedor"] == {
            "cnpj": "12345678000195",
            "nome": "Empresa de Serviços SA",
        }

    async def test_document_without_name_sends_no_payer(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """The BCB wants both document and name; with only one, no devedor is sent."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        await connector.create_charge(
            ChargeRequest(
                reference=REFERENCE, amount=100, expires_in=60, payer_document="12345678909"
            )
        )
        assert body_of(fake.last()) == {
            "calendario": {"expiracao": 60},
            "valor": {"original": "1.00"},
            "chave": PIX_KEY,
        }

    async def test_description_is_cut_to_140(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """solicitacaoPagador is at most 140 characters."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        await connector.create_charge(
            ChargeRequest(reference=REFERENCE, amount=100, expires_in=60, description="x" * 200)
        )
        assert body_of(fake.last())["solicitacaoPagador"] == "x" * 140

    async def test_invalid_payer_document_is_rejected_without_a_call(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A malformed CPF is rejected locally as invalid_document."""
        with pytest.raises(GatewayRejected) as caught:
            await connector.create_charge(
                ChargeRequest(
                    reference=REFERENCE,
                    amount=100,
                    expires_in=60,
                    payer_document="12345678900",
                    payer_name="Fulano",
                )
            )
        assert caught.value.code == "invalid_document"
        assert fake.requests == []

    async def test_response_mapping(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """The created cob becomes an ACTIVE charge keyed by txid, with its BR Code and QR."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
        charge = await connector.create_charge(CHARGE)
        assert charge.gateway == "efi"
        assert charge.charge_id == charge.txid == REFERENCE_ID
        assert charge.reference == REFERENCE
        assert (charge.status, charge.provider_status) == (ChargeStatus.ACTIVE, "ATIVA")
        assert charge.amount == 12345
        assert charge.brcode == BRCODE
        assert charge.qr_png_base64 == qr_png_base64(BRCODE)
        assert charge.created_at == datetime(2024, 5, 1, 12, 0, 0, 358000, tzinfo=UTC)
        assert charge.expires_at == datetime(2024, 5, 1, 13, 0, 0, 358000, tzinfo=UTC)
        assert fake.calls() == [("PUT", COB_PATH)]

    async def test_missing_brcode_is_fetched_from_the_location(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A cob without pixCopiaECola is completed by GET /v2/loc/{id}/qrcode."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob(with_brcode=False)))
        fake.on(
            "GET",
            QR_PATH,
            httpx.Response(
                200,
                json={
                    "qrcode": BRCODE,
                    "imagemQrcode": f"data:image/png;base64,{PNG_BASE64}",
                    "linkVisualizacao": "https://pix.sejaefi.com.br/cob/pagar/9d36b84fc70b",
                },
            ),
        )
        charge = await connector.create_charge(CHARGE)
        assert fake.calls() == [("PUT", COB_PATH), ("GET", QR_PATH)]
        assert charge.brcode == BRCODE
        assert charge.qr_png_base64 == PNG_BASE64

    async def test_non_png_image_is_rendered_instead(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """An SVG imagemQrcode (an older sample) is replaced by our own PNG rendering."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json=cob(with_brcode=False)))
        fake.on(
            "GET",
            QR_PATH,
            httpx.Response(
                200, json={"qrcode": BRCODE, "imagemQrcode": "data:image/svg+xml;base64,PHN2Zz4="}
            ),
        )
        charge = await connector.create_charge(CHARGE)
        assert charge.qr_png_base64 == qr_png_base64(BRCODE)

    async def test_duplicate_txid_returns_the_existing_cob(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """txid_duplicado (a retry after a lost response) reads the cob back and returns it."""
        fake.on(
            "PUT",
            COB_PATH,
            efi_error(409, "txid_duplicado", "Campo txid informado já foi utilizado"),
        )
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        charge = await connector.create_charge(CHARGE)
        assert fake.calls() == [("PUT", COB_PATH), ("GET", COB_PATH)]
        assert (charge.charge_id, charge.amount, charge.brcode) == (REFERENCE_ID, 12345, BRCODE)
        assert charge.reference == REFERENCE

    async def test_duplicate_txid_with_another_amount_is_rejected(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A cob on the same txid with a different amount is not ours: duplicate_reference."""
        fake.on(
            "PUT",
            COB_PATH,
            efi_error(409, "txid_duplicado", "Campo txid informado já foi utilizado"),
        )
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob(valor="99.99")))
        with pytest.raises(GatewayRejected) as caught:
            await connector.create_charge(CHARGE)
        assert (caught.value.code, caught.value.provider_code) == (
            "duplicate_reference",
            "txid_duplicado",
        )

    async def test_provider_rejection(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """An Efí 400 valor_invalido surfaces as GatewayRejected invalid_amount."""
        fake.on(
            "PUT",
            COB_PATH,
            efi_error(400, "valor_invalido", "Campo valor.original deve ser maior que zero"),
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.create_charge(CHARGE)
        assert (caught.value.code, caught.value.operation) == ("invalid_amount", "cob.create")

    async def test_unreadable_success_body(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A 201 whose body is not a cob is Unavailable invalid_response (safe to repeat)."""
        fake.on("PUT", COB_PATH, httpx.Response(201, json={"ok": True}))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.create_charge(CHARGE)
        assert caught.value.code == "invalid_response"


class TestGetCharge:
    async def test_active_charge(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """GET /v2/cob/{txid} of an unexpired ATIVA cob is ACTIVE, with its BR Code."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        charge = await connector.get_charge(REFERENCE_ID)
        assert fake.calls() == [("GET", COB_PATH)]
        assert charge.status is ChargeStatus.ACTIVE
        assert charge.brcode == BRCODE
        assert (charge.paid_amount, charge.end_to_end_id, charge.refunded_amount) == (None, None, 0)

    async def test_expired_ativa_is_expired(
        self, connector: EfiConnector, fake: FakeEfi, clock: FakeClock
    ) -> None:
        """An ATIVA cob past criacao + expiracao is EXPIRED, keeping Efí's own status."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        clock.advance(3600)
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.status, charge.provider_status) == (ChargeStatus.EXPIRED, "ATIVA")

    async def test_ativa_just_before_expiry_is_active(
        self, connector: EfiConnector, fake: FakeEfi, clock: FakeClock
    ) -> None:
        """An ATIVA cob a second before its expiry is still ACTIVE."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        clock.advance(1800)  # 12:30 → 13:00:00, the expiry is 13:00:00.358
        charge = await connector.get_charge(REFERENCE_ID)
        assert charge.status is ChargeStatus.ACTIVE

    async def test_paid_charge_with_refunds(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """CONCLUIDA is PAID with the Pix's amount, time, e2e id and settled refunds only."""
        paid = cob(
            status="CONCLUIDA",
            pix=[
                pix_received(
                    devolucoes=[
                        devolucao(id="r1", valor="7.89", status="DEVOLVIDO"),
                        devolucao(id="r2", valor="10.00", status="EM_PROCESSAMENTO"),
                        devolucao(id="r3", valor="1.00", status="NAO_REALIZADO", motivo="x"),
                        devolucao(id="r4", valor="0.11", status="DEVOLVIDO"),
                    ]
                )
            ],
        )
        fake.on("GET", COB_PATH, httpx.Response(200, json=paid))
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.status, charge.provider_status) == (ChargeStatus.PAID, "CONCLUIDA")
        assert charge.paid_amount == 12345
        assert charge.paid_at == datetime(2024, 5, 1, 12, 15, 42, tzinfo=UTC)
        assert charge.end_to_end_id == E2E_ID
        assert charge.refunded_amount == 800

    async def test_paid_amount_sums_several_pix(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A cob paid by several Pix reports their sum and the first one's e2e id."""
        second = "E00000000202405011216abcdefghijk"
        paid = cob(
            status="CONCLUIDA",
            pix=[pix_received(valor="100.00"), pix_received(e2e=second, valor="23.45")],
        )
        fake.on("GET", COB_PATH, httpx.Response(200, json=paid))
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.paid_amount, charge.end_to_end_id) == (12345, E2E_ID)

    async def test_paid_charge_past_expiry_stays_paid(
        self, connector: EfiConnector, fake: FakeEfi, clock: FakeClock
    ) -> None:
        """Expiry only turns ATIVA into EXPIRED: a paid cob stays PAID."""
        paid = cob(status="CONCLUIDA", pix=[pix_received()])
        fake.on("GET", COB_PATH, httpx.Response(200, json=paid))
        clock.advance(86400)
        assert (await connector.get_charge(REFERENCE_ID)).status is ChargeStatus.PAID

    @pytest.mark.parametrize("status", ["REMOVIDA_PELO_USUARIO_RECEBEDOR", "REMOVIDA_PELO_PSP"])
    async def test_removed_is_cancelled(
        self, connector: EfiConnector, fake: FakeEfi, status: str
    ) -> None:
        """A cob removed by us or by the PSP is CANCELLED."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob(status=status)))
        charge = await connector.get_charge(REFERENCE_ID)
        assert (charge.status, charge.provider_status) == (ChargeStatus.CANCELLED, status)

    async def test_unknown_status_is_active(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A status Efí has not documented is ACTIVE, never paid."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob(status="EM_ANALISE")))
        assert (await connector.get_charge(REFERENCE_ID)).status is ChargeStatus.ACTIVE

    async def test_unknown_cob_is_not_found(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """An RFC 7807 CobNaoEncontrado is GatewayNotFound."""
        fake.on(
            "GET",
            COB_PATH,
            problem(404, "CobNaoEncontrado", "Cobrança não encontrada.", "Cob inexistente."),
        )
        with pytest.raises(GatewayNotFound):
            await connector.get_charge(REFERENCE_ID)


class TestCancelCharge:
    async def test_active_charge_is_removed(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """An ATIVA cob is PATCHed to REMOVIDA_PELO_USUARIO_RECEBEDOR and reported CANCELLED."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        fake.on(
            "PATCH",
            COB_PATH,
            httpx.Response(200, json=cob(status="REMOVIDA_PELO_USUARIO_RECEBEDOR")),
        )
        charge = await connector.cancel_charge(REFERENCE_ID)
        assert fake.calls() == [("GET", COB_PATH), ("PATCH", COB_PATH)]
        assert body_of(fake.last()) == {"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        assert charge.status is ChargeStatus.CANCELLED

    async def test_paid_charge_is_not_cancellable(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A CONCLUIDA cob raises charge_not_cancellable without a PATCH."""
        fake.on(
            "GET", COB_PATH, httpx.Response(200, json=cob(status="CONCLUIDA", pix=[pix_received()]))
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.cancel_charge(REFERENCE_ID)
        assert caught.value.code == "charge_not_cancellable"
        assert fake.calls() == [("GET", COB_PATH)]

    async def test_already_removed_is_returned_as_is(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Cancelling a removed cob again is a no-op reporting CANCELLED."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob(status="REMOVIDA_PELO_PSP")))
        charge = await connector.cancel_charge(REFERENCE_ID)
        assert charge.status is ChargeStatus.CANCELLED
        assert fake.calls() == [("GET", COB_PATH)]

    async def test_paid_between_read_and_patch(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 400 on the PATCH because the cob was just paid is charge_not_cancellable."""
        fake.on(
            "GET",
            COB_PATH,
            httpx.Response(200, json=cob()),
            httpx.Response(200, json=cob(status="CONCLUIDA", pix=[pix_received()])),
        )
        fake.on(
            "PATCH",
            COB_PATH,
            problem(400, "CobOperacaoInvalida", "Cobrança inválida.", "A cobrança já foi paga."),
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.cancel_charge(REFERENCE_ID)
        assert caught.value.code == "charge_not_cancellable"

    async def test_other_patch_rejection_is_kept(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 400 on the PATCH of a still-active cob surfaces as Efí's own rejection."""
        fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
        fake.on(
            "PATCH",
            COB_PATH,
            problem(400, "CobOperacaoInvalida", "Cobrança inválida.", "Status inválido."),
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.cancel_charge(REFERENCE_ID)
        assert (caught.value.code, caught.value.provider_code) == (
            "invalid_request",
            "CobOperacaoInvalida",
        )


class TestSendPix:
    async def test_request_on_the_wire(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """PUT /v3/gn/pix/{idEnvio} with amount text, our key as payer and the recipient."""
        fake.on("PUT", SEND_PATH, httpx.Response(201, json=send_created()))
        await connector.send_pix(SEND)
        request = fake.last()
        assert (request.method, request.url.path) == ("PUT", SEND_PATH)
        assert body_of(request) == {
            "valor": "12.34",
            "pagador": {"chave": PIX_KEY, "infoPagador": "Saque 42"},
            "favorecido": {"chave": "joão@meuemail.com", "cpf": "58629188090"},
        }

    async def test_cnpj_recipient(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A 14-character recipient document is sent as favorecido.cnpj."""
        fake.on("PUT", SEND_PATH, httpx.Response(201, json=send_created()))
        await connector.send_pix(
            SendRequest(
                reference=REFERENCE,
                amount=1234,
                pix_key="11222333000181",
                recipient_document="11.222.333/0001-81",
            )
        )
        assert body_of(fake.last())["favorecido"] == {
            "chave": "11222333000181",
            "cnpj": "11222333000181",
        }

    async def test_minimal_request(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """Without description or document, only the key is sent for each party."""
        fake.on("PUT", SEND_PATH, httpx.Response(201, json=send_created(valor="0.01")))
        await connector.send_pix(
            SendRequest(reference=REFERENCE, amount=1, pix_key="+5511987654321")
        )
        assert body_of(fake.last()) == {
            "valor": "0.01",
            "pagador": {"chave": PIX_KEY},
            "favorecido": {"chave": "+5511987654321"},
        }

    async def test_response_mapping(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """The 201 becomes a PROCESSING send keyed by idEnvio, with the e2e id."""
        fake.on("PUT", SEND_PATH, httpx.Response(201, json=send_created()))
        send = await connector.send_pix(SEND)
        assert (send.gateway, send.send_id, send.reference) == ("efi", REFERENCE_ID, REFERENCE)
        assert (send.status, send.provider_status) == (SendStatus.PROCESSING, "EM_PROCESSAMENTO")
        assert (send.amount, send.end_to_end_id) == (1234, SEND_E2E)

    async def test_duplicate_id_envio_returns_the_first_send(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """id_envio_duplicado reads the earlier send back instead of sending again."""
        fake.on(
            "PUT",
            SEND_PATH,
            efi_error(409, "id_envio_duplicado", "O idEnvio informado já foi utilizado"),
        )
        fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=pix_enviado()))
        send = await connector.send_pix(SEND)
        assert fake.calls() == [("PUT", SEND_PATH), ("GET", SEND_GET_PATH)]
        assert (send.status, send.send_id, send.end_to_end_id) == (
            SendStatus.SUCCEEDED,
            REFERENCE_ID,
            SEND_E2E,
        )
        assert send.reference == REFERENCE

    async def test_duplicate_that_cannot_be_found_is_ambiguous(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A duplicate whose read-back is 404 is ambiguous, never "never arrived"."""
        fake.on(
            "PUT",
            SEND_PATH,
            efi_error(409, "id_envio_duplicado", "O idEnvio informado já foi utilizado"),
        )
        fake.on(
            "GET",
            SEND_GET_PATH,
            problem(404, "PixEnviadoNaoEncontrado", "Não Encontrado", "Pix enviado inexistente."),
        )
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.send_pix(SEND)
        assert caught.value.code == "duplicate_not_visible"

    async def test_duplicate_whose_read_back_fails_is_ambiguous(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """The send exists (409) but reading it back answers 503: ambiguous, so the engine
        asks again — unavailable would let it fall back and send the Pix a second time."""
        fake.on(
            "PUT",
            SEND_PATH,
            efi_error(409, "id_envio_duplicado", "O idEnvio informado já foi utilizado"),
        )
        fake.on("GET", SEND_GET_PATH, efi_error(503, "erro_aplicacao", "Indisponível"))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.send_pix(SEND)
        assert caught.value.code == "duplicate_unconfirmed"

    async def test_denied_payment(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """422 pagamento_negado is GatewayRejected payment_denied."""
        fake.on(
            "PUT", SEND_PATH, efi_error(422, "pagamento_negado", "Pagamento negado por análises")
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(SEND)
        assert caught.value.code == "payment_denied"

    async def test_server_error_on_a_send_is_ambiguous(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """500 erro_aplicacao on a send may have moved money: GatewayAmbiguous."""
        fake.on("PUT", SEND_PATH, efi_error(500, "erro_aplicacao", "Erro ao processar"))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.send_pix(SEND)
        assert (caught.value.operation, caught.value.code) == ("pix.send", "provider_error")

    async def test_unreadable_success_body_is_ambiguous(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A 201 we cannot read on a send is ambiguous: the money may have moved."""
        fake.on("PUT", SEND_PATH, httpx.Response(201, text="<html>ok</html>"))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.send_pix(SEND)
        assert caught.value.code == "invalid_response"

    async def test_invalid_recipient_document_is_rejected_without_a_call(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """A recipient document that is neither CPF nor CNPJ is rejected locally."""
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(
                SendRequest(
                    reference=REFERENCE, amount=1, pix_key="a@b.com", recipient_document="1"
                )
            )
        assert caught.value.code == "invalid_document"
        assert fake.requests == []


class TestGetSend:
    async def test_request_and_mapping(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """GET /v2/gn/pix/enviados/id-envio/{idEnvio}; REALIZADO is SUCCEEDED."""
        fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=pix_enviado()))
        send = await connector.get_send(REFERENCE, REFERENCE_ID)
        assert fake.calls() == [("GET", SEND_GET_PATH)]
        assert (send.status, send.provider_status) == (SendStatus.SUCCEEDED, "REALIZADO")
        assert (send.send_id, send.amount, send.end_to_end_id) == (REFERENCE_ID, 1234, SEND_E2E)

    async def test_id_is_derived_from_the_reference(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Without the provider id, the idEnvio is derived from our reference."""
        fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=pix_enviado()))
        await connector.get_send(REFERENCE)
        assert fake.last().url.path == SEND_GET_PATH

    async def test_failed_send(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """NAO_REALIZADO is FAILED, with gnExtras.erro's code and reason when present."""
        body = pix_enviado(
            "NAO_REALIZADO",
            gnExtras={
                "idEnvio": REFERENCE_ID,
                "erro": {
                    "codigo": "AC03",
                    "origem": "PSP do recebedor",
                    "motivo": "Conta inválida",
                },
            },
        )
        fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=body))
        send = await connector.get_send(REFERENCE, REFERENCE_ID)
        assert send.status is SendStatus.FAILED
        assert (send.failure_code, send.failure_message) == ("AC03", "Conta inválida")

    async def test_processing_send(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """EM_PROCESSAMENTO is PROCESSING."""
        fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=pix_enviado("EM_PROCESSAMENTO")))
        assert (await connector.get_send(REFERENCE)).status is SendStatus.PROCESSING

    async def test_never_received_is_not_found(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """RFC 7807 PixEnviadoNaoEncontrado is GatewayNotFound: the send never arrived."""
        fake.on(
            "GET",
            SEND_GET_PATH,
            problem(404, "PixEnviadoNaoEncontrado", "Não Encontrado", "Pix enviado inexistente."),
        )
        with pytest.raises(GatewayNotFound) as caught:
            await connector.get_send(REFERENCE)
        assert caught.value.provider_code == "PixEnviadoNaoEncontrado"


class TestRefund:
    async def test_missing_end_to_end_id_is_rejected_without_a_call(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Efí refunds by endToEndId; without one the refund is rejected locally."""
        request = RefundRequest(
            reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=None, amount=100
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.refund(request)
        assert caught.value.code == "missing_end_to_end_id"
        assert fake.requests == []
        assert fake.token_requests == []

    async def test_request_on_the_wire(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """PUT /v2/pix/{e2eId}/devolucao/{id} with the amount text only."""
        fake.on("PUT", REFUND_PATH, httpx.Response(201, json=devolucao()))
        await connector.refund(REFUND)
        request = fake.last()
        assert (request.method, request.url.path) == ("PUT", REFUND_PATH)
        assert body_of(request) == {"valor": "7.89"}

    async def test_response_mapping(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """The 201 becomes a PROCESSING refund with the devolução id and rtrId."""
        fake.on("PUT", REFUND_PATH, httpx.Response(201, json=devolucao()))
        refund = await connector.refund(REFUND)
        assert (refund.gateway, refund.refund_id, refund.reference) == (
            "efi",
            REFUND_ID,
            REFUND_REFERENCE,
        )
        assert (refund.status, refund.provider_status) == (
            RefundStatus.PROCESSING,
            "EM_PROCESSAMENTO",
        )
        assert (refund.amount, refund.return_id) == (789, RTR_ID)

    async def test_duplicate_id_returns_the_first_refund(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """devolucao_id_duplicado reads the earlier refund back instead of refunding again."""
        fake.on(
            "PUT",
            REFUND_PATH,
            efi_error(
                409, "devolucao_id_duplicado", "O id informado já foi utilizado em outra devolução"
            ),
        )
        fake.on("GET", REFUND_PATH, httpx.Response(200, json=devolucao(status="DEVOLVIDO")))
        refund = await connector.refund(REFUND)
        assert fake.calls() == [("PUT", REFUND_PATH), ("GET", REFUND_PATH)]
        assert (refund.status, refund.refund_id) == (RefundStatus.SUCCEEDED, REFUND_ID)

    async def test_unknown_pix_is_not_found(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """pix_nao_encontrado is GatewayNotFound."""
        fake.on(
            "PUT",
            REFUND_PATH,
            efi_error(404, "pix_nao_encontrado", "Nenhum pix encontrado para o identificador"),
        )
        with pytest.raises(GatewayNotFound):
            await connector.refund(REFUND)


class TestGetRefund:
    async def test_failed_refund(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """GET the devolução; NAO_REALIZADO is FAILED with motivo as the message."""
        motivo = "Saldo insuficiente para realizar a devolução."
        fake.on(
            "GET",
            REFUND_PATH,
            httpx.Response(200, json=devolucao(status="NAO_REALIZADO", motivo=motivo)),
        )
        refund = await connector.get_refund(
            reference=REFUND_REFERENCE,
            charge_id=REFERENCE_ID,
            end_to_end_id=E2E_ID,
            refund_id=REFUND_ID,
        )
        assert fake.calls() == [("GET", REFUND_PATH)]
        assert (refund.status, refund.failure_message) == (RefundStatus.FAILED, motivo)

    async def test_id_is_derived_from_the_reference(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Without the provider id, the devolução id is derived from our refund reference."""
        fake.on("GET", REFUND_PATH, httpx.Response(200, json=devolucao(status="DEVOLVIDO")))
        refund = await connector.get_refund(
            reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=E2E_ID, refund_id=None
        )
        assert refund.status is RefundStatus.SUCCEEDED
        assert fake.last().url.path == REFUND_PATH

    async def test_missing_end_to_end_id(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A refund query without the endToEndId is rejected locally."""
        with pytest.raises(GatewayRejected) as caught:
            await connector.get_refund(
                reference=REFUND_REFERENCE,
                charge_id=REFERENCE_ID,
                end_to_end_id=None,
                refund_id=None,
            )
        assert caught.value.code == "missing_end_to_end_id"


class TestWebhookRegistration:
    @pytest.mark.parametrize(("skip_mtls", "header"), [(True, "true"), (False, "false")])
    async def test_register(
        self, connector: EfiConnector, fake: FakeEfi, skip_mtls: bool, header: str
    ) -> None:
        """PUT /v2/webhook/{chave} with the URL and x-skip-mtls-checking."""
        url = "https://pixwave.example/webhooks/efi?hmac=s3cr3t&ignorar="
        fake.on(
            "PUT",
            WEBHOOK_PATH,
            httpx.Response(200, json={"webhookUrl": url, "chave": PIX_KEY}),
        )
        await connector.register_webhook(url, skip_mtls=skip_mtls)
        request = fake.last()
        assert (request.method, request.url.path) == ("PUT", WEBHOOK_PATH)
        assert body_of(request) == {"webhookUrl": url}
        assert request.headers["x-skip-mtls-checking"] == header

    async def test_invalid_webhook_is_rejected(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Efí's webhook_invalido (its test call failed) is GatewayRejected invalid_webhook."""
        fake.on(
            "PUT",
            WEBHOOK_PATH,
            efi_error(
                400,
                "webhook_invalido",
                "A autenticação de TLS mútuo não está configurada na URL informada",
            ),
        )
        with pytest.raises(GatewayRejected) as caught:
            await connector.register_webhook("https://x.example/wh", skip_mtls=False)
        assert caught.value.code == "invalid_webhook"

    async def test_get_registered_url(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """GET /v2/webhook/{chave} returns the registered URL."""
        fake.on(
            "GET",
            WEBHOOK_PATH,
            httpx.Response(
                200,
                json={
                    "webhookUrl": "https://pixwave.example/webhooks/efi",
                    "chave": PIX_KEY,
                    "criacao": "2024-05-01T12:00:00.000Z",
                },
            ),
        )
        assert await connector.get_webhook() == "https://pixwave.example/webhooks/efi"

    async def test_no_registered_url(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A 404 for the key's webhook means none is registered."""
        fake.on(
            "GET",
            WEBHOOK_PATH,
            problem(404, "WebhookNaoEncontrado", "Webhook não encontrado.", "Nenhum webhook."),
        )
        assert await connector.get_webhook() is None


def _ok_routes(fake: FakeEfi) -> None:
    """Every route answering as Efí would, so one can then be made to fail."""
    fake.on("PUT", COB_PATH, httpx.Response(201, json=cob()))
    fake.on("GET", COB_PATH, httpx.Response(200, json=cob()))
    fake.on("PATCH", COB_PATH, httpx.Response(200, json=cob(status="REMOVIDA_PELO_PSP")))
    fake.on("PUT", SEND_PATH, httpx.Response(201, json=send_created()))
    fake.on("GET", SEND_GET_PATH, httpx.Response(200, json=pix_enviado()))
    fake.on("PUT", REFUND_PATH, httpx.Response(201, json=devolucao()))
    fake.on("GET", REFUND_PATH, httpx.Response(200, json=devolucao()))
    fake.on("PUT", WEBHOOK_PATH, httpx.Response(200, json={"webhookUrl": "https://x.example"}))
    fake.on("GET", WEBHOOK_PATH, httpx.Response(200, json={"webhookUrl": "https://x.example"}))


Call = Callable[[EfiConnector], Awaitable[object]]

#: (operation name, failing route method and path, mutates, the call)
OPERATIONS: list[tuple[str, str, str, bool, Call]] = [
    ("cob.create", "PUT", COB_PATH, True, lambda c: c.create_charge(CHARGE)),
    ("cob.get", "GET", COB_PATH, False, lambda c: c.get_charge(REFERENCE_ID)),
    ("cob.get", "GET", COB_PATH, False, lambda c: c.cancel_charge(REFERENCE_ID)),
    ("cob.cancel", "PATCH", COB_PATH, True, lambda c: c.cancel_charge(REFERENCE_ID)),
    ("pix.send", "PUT", SEND_PATH, True, lambda c: c.send_pix(SEND)),
    ("pix.send.get", "GET", SEND_GET_PATH, False, lambda c: c.get_send(REFERENCE)),
    ("pix.refund", "PUT", REFUND_PATH, True, lambda c: c.refund(REFUND)),
    (
        "pix.refund.get",
        "GET",
        REFUND_PATH,
        False,
        lambda c: c.get_refund(
            reference=REFUND_REFERENCE, charge_id=REFERENCE_ID, end_to_end_id=E2E_ID, refund_id=None
        ),
    ),
    (
        "webhook.register",
        "PUT",
        WEBHOOK_PATH,
        True,
        lambda c: c.register_webhook("https://x.example", skip_mtls=True),
    ),
    ("webhook.get", "GET", WEBHOOK_PATH, False, lambda c: c.get_webhook()),
]

FAILURES: list[tuple[type[httpx.TransportError], TransportFailure]] = [
    (httpx.ConnectError, TransportFailure.CONNECT),
    (httpx.ReadTimeout, TransportFailure.READ_TIMEOUT),
    (httpx.RemoteProtocolError, TransportFailure.READ),
    (httpx.WriteTimeout, TransportFailure.WRITE),
    (httpx.PoolTimeout, TransportFailure.POOL),
]


class TestTransportFailures:
    @pytest.mark.parametrize(
        ("operation", "method", "path", "mutates", "call"),
        OPERATIONS,
        ids=[f"{op[0]}-{op[1]}" for op in OPERATIONS],
    )
    @pytest.mark.parametrize(
        ("exception", "failure"), FAILURES, ids=[f[0].__name__ for f in FAILURES]
    )
    async def test_failure_is_classified_by_the_call_flags(
        self,
        connector: EfiConnector,
        fake: FakeEfi,
        operation: str,
        method: str,
        path: str,
        mutates: bool,
        call: Call,
        exception: type[httpx.TransportError],
        failure: TransportFailure,
    ) -> None:
        """A transport failure raises the class TRANSPORT_OUTCOMES gives for the call's flags."""
        _ok_routes(fake)
        fake.on(method, path, exception("simulated transport failure"))
        with pytest.raises(GatewayError) as caught:
            await call(connector)
        assert type(caught.value) is TRANSPORT_OUTCOMES[(failure, mutates)]
        assert caught.value.code == TRANSPORT_CODES[failure]
        assert caught.value.operation == operation

    async def test_read_timeout_on_a_send_is_ambiguous(
        self, connector: EfiConnector, fake: FakeEfi
    ) -> None:
        """Spelled out: a send whose answer timed out may have moved money."""
        fake.on("PUT", SEND_PATH, httpx.ReadTimeout("timed out"))
        with pytest.raises(GatewayAmbiguous):
            await connector.send_pix(SEND)


class TestRateLimit:
    async def test_429_carries_retry_after(self, connector: EfiConnector, fake: FakeEfi) -> None:
        """A 429 on a send is Unavailable rate_limited with the Retry-After seconds."""
        fake.on(
            "PUT",
            SEND_PATH,
            httpx.Response(
                429, headers={"Retry-After": "3"}, json={"nome": "limite", "mensagem": "."}
            ),
        )
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.send_pix(SEND)
        assert (caught.value.code, caught.value.retry_after) == ("rate_limited", 3.0)
        assert len(fake.requests) == 1
