"""Fidelity: the official ``mercadopago`` SDK (3.6.0), pointed at the simulator, just works.

The SDK has no base-URL option; its name-mangled class attribute is overridden for the module
and restored afterwards (reference §7). It has no pay-out resource either (``dir(sdk)`` lists
none), so pay-outs go through the SDK's generic ``HttpClient`` with the SDK's own headers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import mercadopago
import pytest
from mercadopago.config import RequestOptions
from mercadopago.config.config import Config

from pixwave.pix import parse_brcode
from pixwave.sandbox.mercadopago import MercadoPagoSimulator
from tests.servers import ServerThread, run_simulator

TOKEN = "TEST-0000000000000000-000000-00000000000000000000000000000000-000000000"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with run_simulator(MercadoPagoSimulator()) as thread:
        # Accepted sockets inherit TCP_NODELAY: no 40 ms delayed-ACK stall per response.
        thread.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield thread


@pytest.fixture(scope="module")
def base_url(server: ServerThread) -> Iterator[str]:
    """Point every SDK instance at the simulator, and put the real URL back afterwards."""
    original = Config._Config__api_base_url
    Config._Config__api_base_url = server.base_url
    try:
        yield server.base_url
    finally:
        Config._Config__api_base_url = original


@pytest.fixture
def sdk(base_url: str) -> mercadopago.SDK:
    """An SDK on an empty simulator."""
    with httpx.Client(base_url=base_url) as admin:
        admin.post("/_sandbox/reset").raise_for_status()
    return mercadopago.SDK(TOKEN)


@pytest.fixture
def admin(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        yield client


PAYMENT = {
    "transaction_amount": 100.5,
    "description": "Pedido 123",
    "payment_method_id": "pix",
    "external_reference": "order-123",
    "payer": {
        "email": "test_user_123456@testuser.com",
        "first_name": "Test",
        "last_name": "User",
        "identification": {"type": "CPF", "number": "19119119100"},
    },
}


def create(sdk: mercadopago.SDK, **changes: Any) -> dict[str, Any]:
    result = sdk.payment().create({**PAYMENT, **changes})
    assert result["status"] == 201, result
    payment: dict[str, Any] = result["response"]
    return payment


def pay(admin: httpx.Client, payment: dict[str, Any]) -> None:
    code = payment["point_of_interaction"]["transaction_data"]["qr_code"]
    admin.post("/_sandbox/pay", json={"brcode": code}).raise_for_status()


class TestPaymentResource:
    def test_create(self, sdk: mercadopago.SDK) -> None:
        """payment().create answers 201 with a pending Pix and a scannable code."""
        result = sdk.payment().create(PAYMENT)
        assert result["status"] == 201
        response = result["response"]
        assert response["status"] == mercadopago.PaymentStatus.PENDING
        assert response["status_detail"] == "pending_waiting_transfer"
        assert response["transaction_amount"] == 100.5
        code = response["point_of_interaction"]["transaction_data"]["qr_code"]
        assert parse_brcode(code).amount_centavos == 10050
        assert response["point_of_interaction"]["transaction_data"]["qr_code_base64"]

    def test_get(self, sdk: mercadopago.SDK) -> None:
        """payment().get reads it back."""
        payment = create(sdk)
        result = sdk.payment().get(payment["id"])
        assert result["status"] == 200
        assert result["response"]["id"] == payment["id"]
        assert result["response"]["external_reference"] == "order-123"

    def test_cancel_with_update(self, sdk: mercadopago.SDK) -> None:
        """payment().update({"status": "cancelled"}) cancels a pending payment."""
        payment = create(sdk)
        result = sdk.payment().update(payment["id"], {"status": "cancelled"})
        assert result["status"] == 200
        assert result["response"]["status"] == mercadopago.PaymentStatus.CANCELLED
        assert result["response"]["status_detail"] == "by_collector"

    def test_cancel_approved_raises_bad_request(
        self, sdk: mercadopago.SDK, admin: httpx.Client
    ) -> None:
        """raise_for_status turns the refusal into MPBadRequestError with MP's causes."""
        payment = create(sdk)
        pay(admin, payment)
        result = sdk.payment().update(payment["id"], {"status": "cancelled"})
        with pytest.raises(mercadopago.MPBadRequestError) as caught:
            result.raise_for_status()
        assert caught.value.causes

    def test_search(self, sdk: mercadopago.SDK) -> None:
        """payment().search filters by external_reference."""
        mine = create(sdk, external_reference="order-777")
        create(sdk, external_reference="order-778")
        result = sdk.payment().search({"external_reference": "order-777"})
        assert result["status"] == 200
        assert [p["id"] for p in result["response"]["results"]] == [mine["id"]]
        assert result["response"]["paging"]["total"] == 1

    def test_search_auto_paging(self, sdk: mercadopago.SDK) -> None:
        """The SDK's paging iterator walks every page the simulator serves."""
        ids = [create(sdk)["id"] for _ in range(3)]
        seen = [p["id"] for p in sdk.payment().search_auto_paging_iter(limit=2)]
        assert seen == ids

    def test_unknown_payment_raises_not_found(self, sdk: mercadopago.SDK) -> None:
        """A 404 is MPNotFoundError with MP's message."""
        result = sdk.payment().get(1)
        with pytest.raises(mercadopago.MPNotFoundError) as caught:
            result.raise_for_status()
        assert caught.value.message == "Payment not found"

    def test_wrong_token_raises_authentication_error(
        self, sdk: mercadopago.SDK, admin: httpx.Client
    ) -> None:
        """With the account's token configured, another one is MPAuthenticationError."""
        admin.patch("/_sandbox/config", json={"access_token": TOKEN}).raise_for_status()
        try:
            result = mercadopago.SDK("APP_USR-not-this-account").payment().get(1)
            assert sdk.payment().get(1)["status"] == 404  # the right token gets through
        finally:
            admin.patch("/_sandbox/config", json={"access_token": None}).raise_for_status()
        with pytest.raises(mercadopago.MPAuthenticationError):
            result.raise_for_status()


class TestRefundResource:
    def test_partial_then_full(self, sdk: mercadopago.SDK, admin: httpx.Client) -> None:
        """refund().create with an amount, then without: partially_refunded, then refunded."""
        payment = create(sdk)
        pay(admin, payment)
        partial = sdk.refund().create(payment["id"], {"amount": 30.25})
        assert partial["status"] == 201
        assert partial["response"]["amount"] == 30.25
        assert partial["response"]["status"] == mercadopago.RefundStatus.APPROVED
        middle = sdk.payment().get(payment["id"])["response"]
        assert (middle["status"], middle["status_detail"]) == ("approved", "partially_refunded")

        full = sdk.refund().create(payment["id"])
        assert full["status"] == 201
        assert full["response"]["amount"] == 70.25
        final = sdk.payment().get(payment["id"])["response"]
        assert final["status"] == mercadopago.PaymentStatus.REFUNDED
        assert final["transaction_amount_refunded"] == 100.5

    def test_list_all_and_get(self, sdk: mercadopago.SDK, admin: httpx.Client) -> None:
        """refund().list_all lists the refunds, refund().get reads one."""
        payment = create(sdk)
        pay(admin, payment)
        first = sdk.refund().create(payment["id"], {"amount": 1})["response"]
        second = sdk.refund().create(payment["id"], {"amount": 2})["response"]
        listed = sdk.refund().list_all(payment["id"])
        assert listed["status"] == 200
        assert [r["id"] for r in listed["response"]] == [first["id"], second["id"]]
        one = sdk.refund().get(payment["id"], second["id"])
        assert one["status"] == 200
        assert one["response"] == second

    def test_refund_of_pending_payment_is_bad_request(self, sdk: mercadopago.SDK) -> None:
        """Refunding an unpaid payment is a 400."""
        payment = create(sdk)
        result = sdk.refund().create(payment["id"])
        assert result["status"] == 400
        with pytest.raises(mercadopago.MPBadRequestError):
            result.raise_for_status()


class TestPayoutsThroughTheHttpClient:
    """The SDK has no transaction-intents resource; its HttpClient carries the calls."""

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = RequestOptions(access_token=TOKEN).get_headers()
        return {**headers, "Content-type": "application/json"}

    def test_sdk_has_no_payout_resource(self, sdk: mercadopago.SDK) -> None:
        """Nothing in the SDK names pay-outs or transaction intents (so the generic client)."""
        names = " ".join(dir(sdk)).lower()
        assert "payout" not in names
        assert "transaction_intent" not in names

    def test_create_and_get(self, sdk: mercadopago.SDK, base_url: str) -> None:
        """POST /v1/transaction-intents/process then GET it, with the SDK's headers."""
        data = (
            '{"external_reference": "send-1", '
            '"point_of_interaction": {"type": "PSP_TRANSFER"}, '
            '"transaction": {"from": {"accounts": [{"amount": 12.34}]}, '
            '"to": {"accounts": [{"type": "current", "amount": 12.34, '
            '"chave": {"type": "CPF", "value": "12345678909"}, '
            '"owner": {"identification": {"type": "CPF", "number": "12345678909"}}}]}, '
            '"total_amount": 12.34}}'
        )
        created = sdk.http_client.post(
            url=f"{base_url}/v1/transaction-intents/process", headers=self.headers(), data=data
        )
        assert created["status"] == 201
        assert created["response"]["status"] == "pending"
        assert created["response"]["transaction"]["total_amount"] == 12.34
        intent_id = created["response"]["id"]
        read = sdk.http_client.get(
            url=f"{base_url}/v1/transaction-intents/{intent_id}", headers=self.headers()
        )
        assert read["status"] == 200
        assert read["response"]["external_reference"] == "send-1"
