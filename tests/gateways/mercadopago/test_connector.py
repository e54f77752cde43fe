"""MercadoPagoConnector over httpx.MockTransport: requests on the wire, responses mapped back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
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
from pixwave.gateways.errors import (
    TRANSPORT_CODES,
    TRANSPORT_OUTCOMES,
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    TransportFailure,
    UnsupportedOperation,
)
from pixwave.gateways.mercadopago import MercadoPagoConnector
from pixwave.gateways.mercadopago.schemas import encode_json

TOKEN = "APP_USR-1234567890123456-053012-abcdef"
SECRET = "whsec-mp-test"
NOW = datetime(2025, 5, 30, 12, 0, 0, tzinfo=UTC)
BRCODE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
QR_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
CPF = "12345678909"
CNPJ = "11222333000181"
EVP = "123e4567-e89b-12d3-a456-426655440000"

Item = httpx.Response | Exception


class FakeMercadoPago:
    """Records every request and answers with the canned items in order (the last repeats)."""

    def __init__(self, *items: Item) -> None:
        self.items = list(items)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        return item

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1, f"expected one request, got {len(self.requests)}"
        return self.requests[0]

    def json(self) -> Any:
        return json.loads(self.request.content, parse_float=Decimal)


Connect = Callable[..., tuple[MercadoPagoConnector, FakeMercadoPago]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Build connectors over a fake MP; all are closed after the test."""
    made: list[MercadoPagoConnector] = []

    def factory(*items: Item, **options: Any) -> tuple[MercadoPagoConnector, FakeMercadoPago]:
        fake = FakeMercadoPago(*(items or (httpx.Response(200, json={}),)))
        options.setdefault("webhook_secret", SECRET)
        connector = MercadoPagoConnector(
            access_token=TOKEN,
            transport=httpx.MockTransport(fake),
            clock=lambda: NOW,
            **options,
        )
        made.append(connector)
        return connector, fake

    yield factory
    for connector in made:
        await connector.aclose()


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """A response whose JSON numbers are written exactly as the given Decimals."""
    return httpx.Response(
        status,
        content=encode_json(body),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def payment(**overrides: Any) -> dict[str, Any]:
    """A Pix payment shaped like MP's (reference §1.2)."""
    body: dict[str, Any] = {
        "id": 5466310457,
        "status": "pending",
        "status_detail": "pending_waiting_transfer",
        "currency_id": "BRL",
        "payment_method_id": "pix",
        "payment_type_id": "bank_transfer",
        "description": "Pedido 123",
        "transaction_amount": Decimal("100.50"),
        "transaction_amount_refunded": 0,
        "date_created": "2025-05-30T09:00:00.000-03:00",
        "date_approved": None,
        "date_last_updated": "2025-05-30T09:00:00.000-03:00",
        "date_of_expiration": "2025-05-31T09:00:00.000-03:00",
        "external_reference": "txn_01",
        "live_mode": False,
        "transaction_details": {
            "net_received_amount": 0,
            "total_paid_amount": Decimal("100.50"),
            "overpaid_amount": 0,
            "external_resource_url": None,
            "installment_amount": 0,
            "financial_institution": None,
        },
        "point_of_interaction": {
            "type": "PIX",
            "sub_type": None,
            "application_data": {"name": None, "version": None},
            "transaction_data": {
                "qr_code": BRCODE,
                "qr_code_base64": QR_PNG,
                "ticket_url": "https://www.mercadopago.com.br/payments/5466310457/ticket",
            },
        },
        "refunds": [],
    }
    body.update(overrides)
    return body


def refund_resource(**overrides: Any) -> dict[str, Any]:
    """A refund object shaped like MP's (reference §1.5)."""
    body: dict[str, Any] = {
        "id": 1245678901,
        "payment_id": 5466310457,
        "amount": Decimal("10.10"),
        "metadata": {},
        "source": {"id": "123456", "name": "Loja", "type": "collector"},
        "date_created": "2025-05-30T10:00:00.000-03:00",
        "unique_sequence_number": None,
        "refund_mode": "standard",
        "adjustment_amount": 0,
        "status": "approved",
        "reason": None,
        "amount_refunded_to_payer": Decimal("10.10"),
    }
    body.update(overrides)
    return body


def intent(**overrides: Any) -> dict[str, Any]:
    """A transaction intent as PixWave and its simulator assume it (reference §1.8)."""
    body: dict[str, Any] = {
        "id": "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f",
        "external_reference": "txn_send_01",
        "status": "pending",
        "status_detail": "pending",
        "end_to_end_id": None,
        "transaction": {
            "from": {"accounts": [{"amount": Decimal("25.00")}]},
            "to": {
                "accounts": [
                    {
                        "type": "current",
                        "amount": Decimal("25.00"),
                        "chave": {"type": "EMAIL", "value": "ana@example.com"},
                    }
                ]
            },
            "total_amount": Decimal("25.00"),
        },
    }
    body.update(overrides)
    return body


def charge_request(**overrides: Any) -> ChargeRequest:
    values: dict[str, Any] = {"reference": "txn_01", "amount": 10050, "expires_in": 3600}
    values.update(overrides)
    return ChargeRequest(**values)


def send_request(**overrides: Any) -> SendRequest:
    values: dict[str, Any] = {
        "reference": "txn_send_01",
        "amount": 2500,
        "pix_key": "ana@example.com",
    }
    values.update(overrides)
    return SendRequest(**values)


def refund_request(**overrides: Any) -> RefundRequest:
    values: dict[str, Any] = {
        "reference": "txn_refund_01",
        "charge_id": "5466310457",
        "end_to_end_id": None,
        "amount": 1010,
    }
    values.update(overrides)
    return RefundRequest(**values)


class TestConstruction:
    async def test_is_a_pix_gateway(self, connect: Connect) -> None:
        """The connector satisfies the PixGateway protocol under the name 'mercadopago'."""
        connector, _ = connect()
        assert isinstance(connector, PixGateway)
        assert connector.name == "mercadopago"

    async def test_default_capabilities(self, connect: Connect) -> None:
        """Without pay-outs enabled the account charges, refunds and takes webhooks only."""
        connector, _ = connect()
        assert connector.capabilities == {
            Capability.CHARGE,
            Capability.REFUND,
            Capability.WEBHOOK,
        }

    async def test_payouts_add_send(self, connect: Connect) -> None:
        """payouts_enabled adds SEND."""
        connector, _ = connect(payouts_enabled=True)
        assert Capability.SEND in connector.capabilities


class TestCapabilityGating:
    async def test_send_pix_without_payouts(self, connect: Connect) -> None:
        """send_pix on an account without pay-outs raises UnsupportedOperation and sends nothing."""
        connector, fake = connect()
        with pytest.raises(UnsupportedOperation) as caught:
            await connector.send_pix(send_request())
        assert caught.value.operation == "send_pix"
        assert fake.requests == []

    async def test_get_send_without_payouts(self, connect: Connect) -> None:
        """get_send on an account without pay-outs raises UnsupportedOperation."""
        connector, fake = connect()
        with pytest.raises(UnsupportedOperation):
            await connector.get_send("txn_send_01")
        assert fake.requests == []


class TestCreateChargeRequest:
    async def test_method_path_and_headers(self, connect: Connect) -> None:
        """POST /v1/payments with the Bearer token, JSON and a deterministic idempotency key."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(charge_request())
        request = fake.request
        assert request.method == "POST"
        assert request.url == "https://api.mercadopago.com/v1/payments"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-idempotency-key"] == "pixwave-charge-txn_01"
        assert request.headers["content-type"] == "application/json"

    async def test_full_body_bytes(self, connect: Connect) -> None:
        """Every optional field is sent with MP's names, and the amount as exact number text."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(
            charge_request(
                amount=1010,
                description="Pedido 123",
                payer_email="ana@example.com",
                payer_name="Ana Souza",
                payer_document="123.456.789-09",
                notification_url="https://hooks.pixwave.app/mp",
            )
        )
        assert fake.request.content == (
            b'{"transaction_amount":10.10,"payment_method_id":"pix",'
            b'"external_reference":"txn_01","date_of_expiration":"2025-05-30T10:00:00.000-03:00",'
            b'"payer":{"email":"ana@example.com","first_name":"Ana Souza",'
            b'"identification":{"type":"CPF","number":"12345678909"}},'
            b'"description":"Pedido 123",'
            b'"notification_url":"https://hooks.pixwave.app/mp?source_news=webhooks"}'
        )

    async def test_minimal_body(self, connect: Connect) -> None:
        """Without payer data the configured e-mail is the payer and optional keys are absent."""
        connector, fake = connect(respond(201, payment()), payer_email="caixa@pixwave.app")
        await connector.create_charge(charge_request())
        body = fake.json()
        assert body["payer"] == {"email": "caixa@pixwave.app"}
        assert "description" not in body
        assert "notification_url" not in body

    async def test_default_payer_email(self, connect: Connect) -> None:
        """The default payer e-mail is pagador@pixwave.app."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(charge_request())
        assert fake.json()["payer"]["email"] == "pagador@pixwave.app"

    async def test_cnpj_payer(self, connect: Connect) -> None:
        """A 14-character document is sent as a CNPJ identification."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(charge_request(payer_document=CNPJ))
        assert fake.json()["payer"]["identification"] == {"type": "CNPJ", "number": CNPJ}

    async def test_notification_url_with_query(self, connect: Connect) -> None:
        """A notification URL that already has a query gets source_news with '&'."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(
            charge_request(notification_url="https://hooks.pixwave.app/mp?tenant=7")
        )
        assert (
            fake.json()["notification_url"]
            == "https://hooks.pixwave.app/mp?tenant=7&source_news=webhooks"
        )

    @pytest.mark.parametrize(
        ("expires_in", "expected"),
        [
            (3600, "2025-05-30T10:00:00.000-03:00"),
            (60, "2025-05-30T09:31:00.000-03:00"),  # under 30 min: raised into the window
            (90 * 86400, "2025-06-29T08:59:00.000-03:00"),  # over 30 days: lowered
        ],
    )
    async def test_expiry_window(self, connect: Connect, expires_in: int, expected: str) -> None:
        """date_of_expiration is now + expires_in in -03:00, clamped into MP's 30 min..30 days."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(charge_request(expires_in=expires_in))
        assert fake.json()["date_of_expiration"] == expected

    @pytest.mark.parametrize(
        ("centavos", "text"),
        [(10, b"0.10"), (1010, b"10.10"), (123456789, b"1234567.89"), (100, b"1.00")],
    )
    async def test_amount_text_is_exact(self, connect: Connect, centavos: int, text: bytes) -> None:
        """The amount goes out as the exact decimal text, never through a float."""
        connector, fake = connect(respond(201, payment()))
        await connector.create_charge(charge_request(amount=centavos))
        assert b'"transaction_amount":' + text + b"," in fake.request.content

    async def test_invalid_document_is_rejected_locally(self, connect: Connect) -> None:
        """A payer document with bad check digits is refused without calling MP."""
        connector, fake = connect(respond(201, payment()))
        with pytest.raises(GatewayRejected) as caught:
            await connector.create_charge(charge_request(payer_document="12345678900"))
        assert caught.value.code == "invalid_document"
        assert fake.requests == []


class TestCreateChargeResponse:
    async def test_pending_payment(self, connect: Connect) -> None:
        """A new Pix payment maps to an ACTIVE charge with its BR Code and QR image."""
        connector, _ = connect(respond(201, payment()))
        charge = await connector.create_charge(charge_request())
        assert charge.gateway == "mercadopago"
        assert charge.charge_id == "5466310457"
        assert charge.reference == "txn_01"
        assert charge.status is ChargeStatus.ACTIVE
        assert charge.provider_status == "pending"
        assert charge.amount == 10050
        assert charge.brcode == BRCODE
        assert charge.qr_png_base64 == QR_PNG
        assert charge.txid is None
        assert charge.end_to_end_id is None
        assert charge.paid_amount is None
        assert charge.refunded_amount == 0

    async def test_dates_in_utc(self, connect: Connect) -> None:
        """MP's -03:00 timestamps come back as UTC."""
        connector, _ = connect(respond(201, payment()))
        charge = await connector.create_charge(charge_request())
        assert charge.created_at == datetime(2025, 5, 30, 12, 0, tzinfo=UTC)
        assert charge.expires_at == datetime(2025, 5, 31, 12, 0, tzinfo=UTC)
        assert charge.expires_at.utcoffset() is not None

    async def test_latency_is_reported(
        self, connect: Connect, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The call's measured latency is set on the result."""
        monkeypatch.setattr("pixwave.gateways.http.elapsed_ms", lambda _started: 42)
        connector, _ = connect(respond(201, payment()))
        charge = await connector.create_charge(charge_request())
        assert charge.latency_ms == 42

    @pytest.mark.parametrize(
        ("text", "centavos"),
        [("0.10", 10), ("10.10", 1010), ("1234567.89", 123456789), ("100", 10000)],
    )
    async def test_amount_parsed_exactly(self, connect: Connect, text: str, centavos: int) -> None:
        """JSON numbers from MP become exact centavos."""
        raw = encode_json(payment(transaction_amount=Decimal(text)))
        assert f'"transaction_amount":{text},'.encode() in raw
        connector, _ = connect(httpx.Response(201, content=raw))
        charge = await connector.create_charge(charge_request())
        assert charge.amount == centavos

    async def test_three_decimals_is_unreadable(self, connect: Connect) -> None:
        """An amount with three significant decimals is not money: the outcome is ambiguous."""
        connector, _ = connect(respond(201, payment(transaction_amount=Decimal("10.005"))))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.create_charge(charge_request())
        assert caught.value.code == "invalid_response"

    async def test_non_json_success_is_ambiguous(self, connect: Connect) -> None:
        """A 201 that is not JSON leaves the creation's outcome unknown."""
        connector, _ = connect(httpx.Response(201, content=b"<html>ok</html>"))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.create_charge(charge_request())
        assert caught.value.code == "invalid_response"

    async def test_missing_qr_code(self, connect: Connect) -> None:
        """A created payment without a BR Code is unusable and reported as unreadable."""
        body = payment(point_of_interaction={"type": "PIX", "transaction_data": {}})
        connector, _ = connect(respond(201, body))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.create_charge(charge_request())
        assert caught.value.code == "invalid_response"


class TestGetCharge:
    async def test_request(self, connect: Connect) -> None:
        """GET /v1/payments/{id} with the Bearer token and no idempotency key."""
        connector, fake = connect(respond(200, payment()))
        await connector.get_charge("5466310457")
        request = fake.request
        assert request.method == "GET"
        assert request.url.path == "/v1/payments/5466310457"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert "x-idempotency-key" not in request.headers
        assert request.content == b""

    async def test_id_cannot_escape_its_segment(self, connect: Connect) -> None:
        """A charge id with slashes stays one path segment."""
        connector, fake = connect(respond(200, payment()))
        await connector.get_charge("1/../../v1/users/me")
        assert fake.request.url.raw_path == b"/v1/payments/1%2F..%2F..%2Fv1%2Fusers%2Fme"

    @pytest.mark.parametrize(
        ("status", "detail", "expected"),
        [
            ("pending", "pending_waiting_transfer", ChargeStatus.ACTIVE),
            ("in_process", "pending_review_manual", ChargeStatus.ACTIVE),
            ("authorized", "pending_capture", ChargeStatus.ACTIVE),
            ("approved", "accredited", ChargeStatus.PAID),
            ("approved", "partially_refunded", ChargeStatus.PAID),
            ("refunded", "refunded", ChargeStatus.PAID),
            ("charged_back", "settled", ChargeStatus.PAID),
            ("in_mediation", None, ChargeStatus.PAID),
            ("cancelled", "expired", ChargeStatus.EXPIRED),
            ("cancelled", "by_collector", ChargeStatus.CANCELLED),
            ("cancelled", "by_payer", ChargeStatus.CANCELLED),
            ("rejected", "rejected_by_bank", ChargeStatus.CANCELLED),
            ("something_new", "whatever", ChargeStatus.ACTIVE),
        ],
    )
    async def test_status(
        self, connect: Connect, status: str, detail: str | None, expected: ChargeStatus
    ) -> None:
        """MP's status (and detail, for expiry) maps to our charge status."""
        connector, _ = connect(respond(200, payment(status=status, status_detail=detail)))
        charge = await connector.get_charge("5466310457")
        assert charge.status is expected
        assert charge.provider_status == status

    async def test_approved_is_paid(self, connect: Connect) -> None:
        """An approved payment carries the paid amount and date_approved in UTC."""
        body = payment(
            status="approved",
            status_detail="accredited",
            date_approved="2025-05-30T09:05:00.000-03:00",
        )
        connector, _ = connect(respond(200, body))
        charge = await connector.get_charge("5466310457")
        assert charge.paid_amount == 10050
        assert charge.paid_at == datetime(2025, 5, 30, 12, 5, tzinfo=UTC)
        assert charge.end_to_end_id is None

    async def test_refunded_amount(self, connect: Connect) -> None:
        """transaction_amount_refunded becomes refunded_amount; the charge stays PAID."""
        body = payment(
            status="approved",
            status_detail="partially_refunded",
            date_approved="2025-05-30T09:05:00.000-03:00",
            transaction_amount_refunded=Decimal("10.10"),
        )
        connector, _ = connect(respond(200, body))
        charge = await connector.get_charge("5466310457")
        assert charge.status is ChargeStatus.PAID
        assert charge.refunded_amount == 1010

    async def test_not_found(self, connect: Connect) -> None:
        """MP's 404 body becomes GatewayNotFound."""
        error = {
            "message": "Payment not found",
            "error": "not_found",
            "status": 404,
            "cause": [{"code": 2000, "description": "Payment not found", "data": None}],
        }
        connector, _ = connect(respond(404, error))
        with pytest.raises(GatewayNotFound) as caught:
            await connector.get_charge("1")
        assert caught.value.code == "not_found"
        assert caught.value.provider_code == "2000"

    async def test_unreadable_get_is_unavailable(self, connect: Connect) -> None:
        """An unreadable 200 to a read is safe to repeat: unavailable, not ambiguous."""
        connector, _ = connect(httpx.Response(200, content=b"{"))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge("1")
        assert caught.value.code == "invalid_response"


class TestCancelCharge:
    async def test_request(self, connect: Connect) -> None:
        """PUT /v1/payments/{id} with exactly {"status":"cancelled"}."""
        body = payment(status="cancelled", status_detail="by_collector")
        connector, fake = connect(respond(200, body))
        await connector.cancel_charge("5466310457")
        request = fake.request
        assert request.method == "PUT"
        assert request.url.path == "/v1/payments/5466310457"
        assert request.content == b'{"status":"cancelled"}'
        assert request.headers["authorization"] == f"Bearer {TOKEN}"

    async def test_cancelled(self, connect: Connect) -> None:
        """The cancelled payment maps to a CANCELLED charge."""
        body = payment(status="cancelled", status_detail="by_collector")
        connector, _ = connect(respond(200, body))
        charge = await connector.cancel_charge("5466310457")
        assert charge.status is ChargeStatus.CANCELLED

    async def test_not_cancellable(self, connect: Connect) -> None:
        """MP's 400 for an approved payment is charge_not_cancellable."""
        error = {"message": "Invalid status", "error": "bad_request", "status": 400, "cause": []}
        connector, _ = connect(respond(400, error))
        with pytest.raises(GatewayRejected) as caught:
            await connector.cancel_charge("5466310457")
        assert caught.value.code == "charge_not_cancellable"


class TestRefund:
    async def test_request(self, connect: Connect) -> None:
        """POST /v1/payments/{id}/refunds with an explicit exact amount and the refund key."""
        connector, fake = connect(respond(201, refund_resource()))
        await connector.refund(refund_request())
        request = fake.request
        assert request.method == "POST"
        assert request.url.path == "/v1/payments/5466310457/refunds"
        assert request.headers["x-idempotency-key"] == "pixwave-refund-txn_refund_01"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.content == b'{"amount":10.10}'

    @pytest.mark.parametrize(
        ("centavos", "text"), [(10, b"0.10"), (1010, b"10.10"), (123456789, b"1234567.89")]
    )
    async def test_amount_both_ways(self, connect: Connect, centavos: int, text: bytes) -> None:
        """The refund amount is exact on the way out and on the way back."""
        answer = refund_resource(amount=Decimal(text.decode()))
        connector, fake = connect(respond(201, answer))
        refund = await connector.refund(refund_request(amount=centavos))
        assert fake.request.content == b'{"amount":' + text + b"}"
        assert refund.amount == centavos

    async def test_response(self, connect: Connect) -> None:
        """The refund object maps to a Refund under our reference."""
        connector, _ = connect(respond(201, refund_resource()))
        refund = await connector.refund(refund_request())
        assert refund.gateway == "mercadopago"
        assert refund.refund_id == "1245678901"
        assert refund.reference == "txn_refund_01"
        assert refund.status is RefundStatus.SUCCEEDED
        assert refund.provider_status == "approved"
        assert refund.failure_message is None

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("approved", RefundStatus.SUCCEEDED),
            ("in_process", RefundStatus.PROCESSING),
            ("pending", RefundStatus.PROCESSING),
            ("rejected", RefundStatus.FAILED),
            ("cancelled", RefundStatus.FAILED),
            ("brand_new", RefundStatus.PROCESSING),
        ],
    )
    async def test_status(self, connect: Connect, status: str, expected: RefundStatus) -> None:
        """Refund statuses map through the table; unknown ones stay PROCESSING."""
        connector, _ = connect(respond(201, refund_resource(status=status)))
        refund = await connector.refund(refund_request())
        assert refund.status is expected

    async def test_failed_has_message(self, connect: Connect) -> None:
        """A rejected refund carries a failure message."""
        connector, _ = connect(respond(201, refund_resource(status="rejected")))
        refund = await connector.refund(refund_request())
        assert refund.failure_message == "Mercado Pago refund rejected"

    async def test_insufficient_balance(self, connect: Connect) -> None:
        """A 400 for lack of balance is insufficient_balance."""
        error = {
            "message": "Insufficient amount",
            "error": "insufficient_amount",
            "status": 400,
            "cause": [],
        }
        connector, _ = connect(respond(400, error))
        with pytest.raises(GatewayRejected) as caught:
            await connector.refund(refund_request())
        assert caught.value.code == "insufficient_balance"

    async def test_server_error_is_ambiguous(self, connect: Connect) -> None:
        """A 500 on a refund may have moved money."""
        connector, _ = connect(httpx.Response(500, content=b""))
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.refund(refund_request())
        assert caught.value.code == "provider_error"


class TestGetRefund:
    async def test_by_id(self, connect: Connect) -> None:
        """With a refund id it is GET /v1/payments/{id}/refunds/{refund_id}."""
        connector, fake = connect(respond(200, refund_resource()))
        refund = await connector.get_refund(
            reference="txn_refund_01",
            charge_id="5466310457",
            end_to_end_id=None,
            refund_id="1245678901",
        )
        assert fake.request.method == "GET"
        assert fake.request.url.path == "/v1/payments/5466310457/refunds/1245678901"
        assert refund.refund_id == "1245678901"
        assert refund.reference == "txn_refund_01"
        assert refund.amount == 1010

    async def test_without_id_replays_the_post(self, connect: Connect) -> None:
        """Without an id the refund POST is repeated under the same key, with a zero amount."""
        connector, fake = connect(respond(201, refund_resource()))
        refund = await connector.get_refund(
            reference="txn_refund_01",
            charge_id="5466310457",
            end_to_end_id=None,
            refund_id=None,
        )
        request = fake.request
        assert request.method == "POST"
        assert request.url.path == "/v1/payments/5466310457/refunds"
        assert request.headers["x-idempotency-key"] == "pixwave-refund-txn_refund_01"
        assert request.content == b'{"amount":0.00}'
        assert refund.refund_id == "1245678901"
        assert refund.amount == 1010

    async def test_without_id_nothing_to_replay(self, connect: Connect) -> None:
        """When MP refuses the zero-amount lookup, no refund exists: GatewayNotFound."""
        error = {"message": "Invalid amount", "error": "bad_request", "status": 400, "cause": []}
        connector, _ = connect(respond(400, error))
        with pytest.raises(GatewayNotFound):
            await connector.get_refund(
                reference="txn_refund_01",
                charge_id="5466310457",
                end_to_end_id=None,
                refund_id=None,
            )

    async def test_lookup_timeout_is_unavailable(self, connect: Connect) -> None:
        """A timeout on the lookup POST is safe to repeat: it cannot move money."""
        connector, _ = connect(httpx.ReadTimeout("timed out"))
        with pytest.raises(GatewayUnavailable):
            await connector.get_refund(
                reference="txn_refund_01",
                charge_id="5466310457",
                end_to_end_id=None,
                refund_id=None,
            )


class TestSendPixRequest:
    async def test_method_path_and_headers(self, connect: Connect) -> None:
        """POST /v1/transaction-intents/process with the send key and signature not enforced."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        await connector.send_pix(send_request())
        request = fake.request
        assert request.method == "POST"
        assert request.url.path == "/v1/transaction-intents/process"
        assert request.headers["x-idempotency-key"] == "pixwave-send-txn_send_01"
        assert request.headers["x-enforce-signature"] == "false"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"

    async def test_full_body_bytes(self, connect: Connect) -> None:
        """The body follows §1.8, with the owner and notification URL, amounts exact."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        await connector.send_pix(
            send_request(
                amount=123456789,
                recipient_document=CPF,
                recipient_name="Ana Souza",
                notification_url="https://hooks.pixwave.app/mp",
            )
        )
        assert fake.request.content == (
            b'{"external_reference":"txn_send_01","point_of_interaction":{"type":"PSP_TRANSFER"},'
            b'"transaction":{"from":{"accounts":[{"amount":1234567.89}]},'
            b'"to":{"accounts":[{"type":"current","amount":1234567.89,'
            b'"chave":{"type":"EMAIL","value":"ana@example.com"},'
            b'"owner":{"identification":{"type":"CPF","number":"12345678909"},'
            b'"name":"Ana Souza"}}]},"total_amount":1234567.89},'
            b'"seller_configuration":{"notification_info":'
            b'{"notification_url":"https://hooks.pixwave.app/mp"}}}'
        )

    async def test_no_owner_without_document(self, connect: Connect) -> None:
        """Without a recipient document no owner and no seller_configuration are sent."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        await connector.send_pix(send_request(recipient_name="Ana Souza"))
        body = fake.json()
        assert "owner" not in body["transaction"]["to"]["accounts"][0]
        assert "seller_configuration" not in body

    async def test_cnpj_owner(self, connect: Connect) -> None:
        """A CNPJ recipient is identified as CNPJ."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        await connector.send_pix(send_request(recipient_document=CNPJ))
        owner = fake.json()["transaction"]["to"]["accounts"][0]["owner"]
        assert owner == {"identification": {"type": "CNPJ", "number": CNPJ}}

    @pytest.mark.parametrize(
        ("key", "chave"),
        [
            (CPF, {"type": "CPF", "value": CPF}),
            ("11.222.333/0001-81", {"type": "CNPJ", "value": CNPJ}),
            ("Ana@Example.com", {"type": "EMAIL", "value": "ana@example.com"}),
            ("+55 11 98765-4321", {"type": "PHONE", "value": "+5511987654321"}),
            (EVP.upper(), {"type": "EVP", "value": EVP}),
        ],
    )
    async def test_key_types(self, connect: Connect, key: str, chave: dict[str, str]) -> None:
        """The key's type and canonical value go in chave."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        await connector.send_pix(send_request(pix_key=key))
        assert fake.json()["transaction"]["to"]["accounts"][0]["chave"] == chave

    async def test_invalid_key(self, connect: Connect) -> None:
        """An invalid key is refused without calling MP."""
        connector, fake = connect(respond(201, intent()), payouts_enabled=True)
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(send_request(pix_key="not a key"))
        assert caught.value.code == "invalid_pix_key"
        assert fake.requests == []

    async def test_forbidden_is_payouts_not_enabled(self, connect: Connect) -> None:
        """MP's 403 on a pay-out means the product is not enabled for this account."""
        error = {"message": "Forbidden", "error": "forbidden", "status": 403, "cause": []}
        connector, _ = connect(respond(403, error), payouts_enabled=True)
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(send_request())
        assert caught.value.code == "payouts_not_enabled"


class TestSendPixResponse:
    async def test_pending(self, connect: Connect) -> None:
        """A pending intent is a PROCESSING send under MP's intent id."""
        connector, _ = connect(respond(201, intent()), payouts_enabled=True)
        send = await connector.send_pix(send_request())
        assert send.gateway == "mercadopago"
        assert send.send_id == "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f"
        assert send.reference == "txn_send_01"
        assert send.status is SendStatus.PROCESSING
        assert send.provider_status == "pending"
        assert send.amount == 2500
        assert send.failure_code is None

    async def test_approved(self, connect: Connect) -> None:
        """An approved intent SUCCEEDED and carries the end-to-end id."""
        e2e = "E10573521202505301200abcdefghijk"
        body = intent(status="approved", status_detail="approved", end_to_end_id=e2e)
        connector, _ = connect(respond(201, body), payouts_enabled=True)
        send = await connector.send_pix(send_request())
        assert send.status is SendStatus.SUCCEEDED
        assert send.end_to_end_id == e2e

    @pytest.mark.parametrize("status", ["rejected", "cancelled"])
    async def test_failed(self, connect: Connect, status: str) -> None:
        """A rejected or cancelled intent FAILED, with status_detail as the failure code."""
        body = intent(status=status, status_detail="invalid_destination_account")
        connector, _ = connect(respond(201, body), payouts_enabled=True)
        send = await connector.send_pix(send_request())
        assert send.status is SendStatus.FAILED
        assert send.failure_code == "invalid_destination_account"
        assert send.failure_message is not None
        assert "invalid_destination_account" in send.failure_message

    async def test_unknown_status(self, connect: Connect) -> None:
        """An unknown intent status stays PROCESSING."""
        connector, _ = connect(respond(201, intent(status="on_hold")), payouts_enabled=True)
        send = await connector.send_pix(send_request())
        assert send.status is SendStatus.PROCESSING

    async def test_amount_exact(self, connect: Connect) -> None:
        """The intent's total_amount is read exactly."""
        body = intent()
        body["transaction"]["total_amount"] = Decimal("1234567.89")
        connector, _ = connect(respond(201, body), payouts_enabled=True)
        send = await connector.send_pix(send_request(amount=123456789))
        assert send.amount == 123456789

    async def test_reference_falls_back_to_ours(self, connect: Connect) -> None:
        """An answer without external_reference is attributed to the request's reference."""
        connector, _ = connect(respond(201, intent(external_reference=None)), payouts_enabled=True)
        send = await connector.send_pix(send_request())
        assert send.reference == "txn_send_01"

    async def test_unreadable_is_ambiguous(self, connect: Connect) -> None:
        """A 201 to a pay-out that cannot be read leaves the send's outcome unknown."""
        connector, _ = connect(respond(201, {"unexpected": True}), payouts_enabled=True)
        with pytest.raises(GatewayAmbiguous) as caught:
            await connector.send_pix(send_request())
        assert caught.value.code == "invalid_response"

    async def test_insufficient_funds(self, connect: Connect) -> None:
        """A pay-out refused for lack of balance is insufficient_balance."""
        error = {
            "message": "Insufficient funds",
            "error": "bad_request",
            "status": 400,
            "cause": [{"code": "insufficient_funds", "description": "Not enough balance"}],
        }
        connector, _ = connect(respond(400, error), payouts_enabled=True)
        with pytest.raises(GatewayRejected) as caught:
            await connector.send_pix(send_request())
        assert caught.value.code == "insufficient_balance"
        assert caught.value.provider_code == "insufficient_funds"


class TestGetSend:
    async def test_by_id(self, connect: Connect) -> None:
        """With the intent id it is GET /v1/transaction-intents/{id}."""
        body = intent(status="approved", end_to_end_id="E10573521202505301200abcdefghijk")
        connector, fake = connect(respond(200, body), payouts_enabled=True)
        send = await connector.get_send("txn_send_01", "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f")
        assert fake.request.method == "GET"
        assert fake.request.url.path == (
            "/v1/transaction-intents/3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f"
        )
        assert send.status is SendStatus.SUCCEEDED
        assert send.amount == 2500

    async def test_by_reference(self, connect: Connect) -> None:
        """Without the id it searches by external_reference."""
        search = {"paging": {"total": 1, "limit": 30, "offset": 0}, "results": [intent()]}
        connector, fake = connect(respond(200, search), payouts_enabled=True)
        send = await connector.get_send("txn_send_01")
        request = fake.request
        assert request.method == "GET"
        assert request.url.path == "/v1/transaction-intents/search"
        assert request.url.params["external_reference"] == "txn_send_01"
        assert send.send_id == "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f"

    async def test_search_empty(self, connect: Connect) -> None:
        """An empty search means MP never received the send: GatewayNotFound."""
        search = {"paging": {"total": 0, "limit": 30, "offset": 0}, "results": []}
        connector, _ = connect(respond(200, search), payouts_enabled=True)
        with pytest.raises(GatewayNotFound):
            await connector.get_send("txn_send_01")

    async def test_search_other_reference(self, connect: Connect) -> None:
        """A result for another reference is not ours."""
        search = {"paging": {"total": 1}, "results": [intent(external_reference="txn_other")]}
        connector, _ = connect(respond(200, search), payouts_enabled=True)
        with pytest.raises(GatewayNotFound):
            await connector.get_send("txn_send_01")

    async def test_not_found_by_id(self, connect: Connect) -> None:
        """MP's 404 for an intent id is GatewayNotFound."""
        error = {"message": "not found", "error": "not_found", "status": 404, "cause": []}
        connector, _ = connect(respond(404, error), payouts_enabled=True)
        with pytest.raises(GatewayNotFound):
            await connector.get_send("txn_send_01", "nope")


Operation = Callable[[MercadoPagoConnector], Any]

#: (name, call, mutates) for every call the connector makes.
OPERATIONS: list[tuple[str, Operation, bool]] = [
    ("create_charge", lambda c: c.create_charge(charge_request()), True),
    ("get_charge", lambda c: c.get_charge("5466310457"), False),
    ("cancel_charge", lambda c: c.cancel_charge("5466310457"), True),
    ("refund", lambda c: c.refund(refund_request()), True),
    (
        "get_refund",
        lambda c: c.get_refund(
            reference="r", charge_id="5466310457", end_to_end_id=None, refund_id="9"
        ),
        False,
    ),
    (
        "get_refund",
        lambda c: c.get_refund(
            reference="r", charge_id="5466310457", end_to_end_id=None, refund_id=None
        ),
        False,
    ),
    ("send_pix", lambda c: c.send_pix(send_request()), True),
    ("get_send", lambda c: c.get_send("txn_send_01", "abc"), False),
    ("get_send", lambda c: c.get_send("txn_send_01"), False),
]

TRANSPORT_ERRORS: list[tuple[type[httpx.TransportError], TransportFailure]] = [
    (httpx.ConnectError, TransportFailure.CONNECT),
    (httpx.ReadTimeout, TransportFailure.READ_TIMEOUT),
    (httpx.RemoteProtocolError, TransportFailure.READ),
    (httpx.WriteTimeout, TransportFailure.WRITE),
    (httpx.PoolTimeout, TransportFailure.POOL),
]


class TestTransportFailures:
    @pytest.mark.parametrize(("exc_type", "failure"), TRANSPORT_ERRORS)
    @pytest.mark.parametrize(("operation", "call", "mutates"), OPERATIONS)
    async def test_classified(
        self,
        connect: Connect,
        exc_type: type[httpx.TransportError],
        failure: TransportFailure,
        operation: str,
        call: Operation,
        mutates: bool,
    ) -> None:
        """Each transport failure becomes the TRANSPORT_OUTCOMES class for the call's flags."""
        connector, _ = connect(exc_type("boom"), payouts_enabled=True)
        with pytest.raises(GatewayError) as caught:
            await call(connector)
        assert type(caught.value) is TRANSPORT_OUTCOMES[(failure, mutates)]
        assert caught.value.code == TRANSPORT_CODES[failure]
        assert caught.value.operation == operation
        assert caught.value.gateway == "mercadopago"


class TestHttpErrors:
    @pytest.mark.parametrize(("operation", "call", "mutates"), OPERATIONS)
    async def test_rate_limited(
        self, connect: Connect, operation: str, call: Operation, mutates: bool
    ) -> None:
        """429 is rate_limited on every operation, with Retry-After in seconds."""
        error = {"message": "Too many requests", "error": "too_many_requests", "status": 429}
        connector, _ = connect(respond(429, error, {"Retry-After": "7"}), payouts_enabled=True)
        with pytest.raises(GatewayUnavailable) as caught:
            await call(connector)
        assert caught.value.code == "rate_limited"
        assert caught.value.retry_after == 7.0
        assert caught.value.http_status == 429

    async def test_html_bad_gateway_on_read(self, connect: Connect) -> None:
        """An HTML 502 on a read is classified by its status alone."""
        response = httpx.Response(502, content=b"<html><body>Bad Gateway</body></html>")
        connector, _ = connect(response)
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.get_charge("1")
        assert caught.value.code == "provider_unavailable"

    async def test_server_error_on_send_is_ambiguous(self, connect: Connect) -> None:
        """A 500 on a pay-out may have moved money: ambiguous."""
        connector, _ = connect(httpx.Response(500, content=b""), payouts_enabled=True)
        with pytest.raises(GatewayAmbiguous):
            await connector.send_pix(send_request())

    async def test_503_on_send_is_unavailable(self, connect: Connect) -> None:
        """A 503 refuses the request outright: nothing was sent, safe to go elsewhere."""
        connector, _ = connect(httpx.Response(503, content=b""), payouts_enabled=True)
        with pytest.raises(GatewayUnavailable):
            await connector.send_pix(send_request())

    async def test_authentication_failed(self, connect: Connect) -> None:
        """401 takes the gateway out: authentication_failed, unavailable."""
        error = {
            "message": "Unauthorized use of live credentials",
            "error": "unauthorized",
            "status": 401,
            "cause": [{"code": 7, "description": "Unauthorized use of live credentials"}],
        }
        connector, _ = connect(respond(401, error))
        with pytest.raises(GatewayUnavailable) as caught:
            await connector.create_charge(charge_request())
        assert caught.value.code == "authentication_failed"
