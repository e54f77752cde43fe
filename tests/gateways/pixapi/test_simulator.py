"""The standard API Pix connector against its simulator, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

import httpx
import pytest

from pixwave.gateways.base import (
    ChargeRequest,
    ChargeStatus,
    InboundWebhook,
    RefundRequest,
    RefundStatus,
    WebhookKind,
)
from pixwave.gateways.errors import GatewayAmbiguous, GatewayRejected, GatewayUnavailable
from pixwave.gateways.http import Timeouts
from pixwave.gateways.pixapi import DEFAULT_SCOPES, PixApiConnector, WebhookAuth
from pixwave.kit.ids import new_id
from pixwave.sandbox.pixapi import PixApiSimConfig, PixApiSimulator
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink

PIX_KEY = "bancoa@example.com"
SECRET = "hook-secret"


@dataclass
class Served:
    simulator: PixApiSimulator
    thread: ServerThread
    sink: WebhookSink
    sink_url: str


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    sink = WebhookSink()
    config = PixApiSimConfig(
        gateway="bancoa", client_id="id", client_secret="secret", pix_key=PIX_KEY
    )
    simulator = PixApiSimulator(config)
    with run_sink(sink) as sink_thread, run_simulator(simulator) as thread:
        yield Served(simulator, thread, sink, f"{sink_thread.base_url}/webhooks/bancoa")


def connector(served: Served, scopes: str = DEFAULT_SCOPES) -> PixApiConnector:
    """A connector of the simulated bank: API under /v2, the token route beside it."""
    base = served.thread.base_url
    return PixApiConnector(
        name="bancoa",
        client_id="id",
        client_secret="secret",
        pix_key=PIX_KEY,
        base_url=f"{base}/v2",
        token_url=f"{base}/oauth/token",
        scopes=scopes,
        timeouts=Timeouts(connect=0.5, read=0.5),
        webhook_auth=WebhookAuth(hmac_secret=SECRET),
        clock=served.simulator.clock.now,
    )


@dataclass
class Env:
    gateway: PixApiConnector
    admin: httpx.AsyncClient
    served: Served

    async def pay(self, brcode: str) -> None:
        response = await self.admin.post("/_sandbox/pay", json={"brcode": brcode})
        assert response.status_code == 200, response.text

    async def advance(self, seconds: float) -> None:
        response = await self.admin.post("/_sandbox/clock/advance", json={"seconds": seconds})
        assert response.is_success


@pytest.fixture
async def env(served: Served) -> AsyncIterator[Env]:
    async with httpx.AsyncClient(base_url=served.thread.base_url, timeout=5) as admin:
        await admin.patch("/_sandbox/config", json={"time_scale": 0.001, "webhook_url": None})
        await admin.post("/_sandbox/reset")
        served.sink.received.clear()
        environment = Env(connector(served), admin, served)
        yield environment
        await environment.gateway.aclose()
        await admin.delete("/_sandbox/faults")


def charge_request(reference: str | None = None, amount: int = 100_00) -> ChargeRequest:
    return ChargeRequest(reference=reference or new_id("txn"), amount=amount, expires_in=3600)


class TestJourney:
    async def test_charge_pay_refund(self, env: Env) -> None:
        """Create, pay, read paid, refund part, watch it settle and count on the charge."""
        charge = await env.gateway.create_charge(charge_request())
        assert charge.status is ChargeStatus.ACTIVE
        await env.pay(charge.brcode)
        paid = await env.gateway.get_charge(charge.charge_id)
        assert (paid.status, paid.paid_amount) == (ChargeStatus.PAID, 100_00)
        assert paid.end_to_end_id is not None
        request = RefundRequest(
            reference=new_id("txn"),
            charge_id=paid.charge_id,
            end_to_end_id=paid.end_to_end_id,
            amount=30_00,
        )
        refund = await env.gateway.refund(request)
        assert refund.status is RefundStatus.PROCESSING
        await env.advance(2)
        settled = await env.gateway.get_refund(
            reference=request.reference,
            charge_id=paid.charge_id,
            end_to_end_id=paid.end_to_end_id,
            refund_id=None,
        )
        assert settled.status is RefundStatus.SUCCEEDED
        assert (await env.gateway.get_charge(paid.charge_id)).refunded_amount == 30_00

    async def test_the_same_reference_is_one_charge(self, env: Env) -> None:
        """Creating twice (a lost answer) finds the same cob; the bank holds one."""
        request = charge_request()
        first = await env.gateway.create_charge(request)
        second = await env.gateway.create_charge(request)
        assert second.charge_id == first.charge_id
        assert (await env.admin.get("/_sandbox")).json()["resources"]["cobs"] == 1

    async def test_creating_again_after_payment_reports_the_payment(self, env: Env) -> None:
        """The cob was paid before our repeat: the bank's 400 resolves to the paid charge."""
        request = charge_request()
        charge = await env.gateway.create_charge(request)
        await env.pay(charge.brcode)
        again = await env.gateway.create_charge(request)
        assert (again.charge_id, again.status) == (charge.charge_id, ChargeStatus.PAID)

    async def test_cancel_and_expiry(self, env: Env) -> None:
        """An unpaid charge cancels; another past its expiry reads expired."""
        cancelled = await env.gateway.cancel_charge(
            (await env.gateway.create_charge(charge_request())).charge_id
        )
        assert cancelled.status is ChargeStatus.CANCELLED
        later = await env.gateway.create_charge(charge_request())
        await env.advance(3601)
        assert (await env.gateway.get_charge(later.charge_id)).status is ChargeStatus.EXPIRED

    async def test_a_paid_charge_is_not_cancelled(self, env: Env) -> None:
        """Cancelling after payment is a rejection."""
        charge = await env.gateway.create_charge(charge_request())
        await env.pay(charge.brcode)
        with pytest.raises(GatewayRejected):
            await env.gateway.cancel_charge(charge.charge_id)

    async def test_refunds_are_idempotent_and_bounded(self, env: Env) -> None:
        """A repeated refund reference returns the first; more than was paid is refused."""
        charge = await env.gateway.create_charge(charge_request(amount=10_00))
        await env.pay(charge.brcode)
        e2e = (await env.gateway.get_charge(charge.charge_id)).end_to_end_id
        request = RefundRequest(
            reference=new_id("txn"), charge_id=charge.charge_id, end_to_end_id=e2e, amount=4_00
        )
        first = await env.gateway.refund(request)
        again = await env.gateway.refund(request)
        assert again.refund_id == first.refund_id
        too_much = RefundRequest(
            reference=new_id("txn"), charge_id=charge.charge_id, end_to_end_id=e2e, amount=6_01
        )
        with pytest.raises(GatewayRejected):
            await env.gateway.refund(too_much)


class TestNotifications:
    async def test_the_banks_callback_verifies(self, env: Env) -> None:
        """Registered with ?hmac=…&ignorar=, the callback lands on /pix and verifies."""
        await env.gateway.register_webhook(f"{env.served.sink_url}?hmac={SECRET}&ignorar=")
        assert await env.gateway.get_webhook() == f"{env.served.sink_url}?hmac={SECRET}&ignorar="
        charge = await env.gateway.create_charge(charge_request())
        await env.pay(charge.brcode)
        for _ in range(250):
            if env.served.sink.received:
                break
            await asyncio.sleep(0.02)
        received = env.served.sink.received[-1]
        query = dict(parse_qsl(received.query, keep_blank_values=True))
        assert query["ignorar"] == "/pix"
        inbound = InboundWebhook(
            body=received.body, headers=received.headers, query=query, client_ip="127.0.0.1"
        )
        (event,) = env.gateway.verify_webhook(inbound)
        assert (event.kind, event.resource_id) == (WebhookKind.CHARGE, charge.charge_id)


class TestFailures:
    async def test_a_processed_charge_without_an_answer_is_ambiguous_then_found(
        self, env: Env
    ) -> None:
        """cob.put done but unanswered: ambiguous; the repeat finds the one charge."""
        rule = {"timeout_rate": 1, "hang_seconds": 2}
        assert (await env.admin.put("/_sandbox/faults/cob.put", json=rule)).is_success
        request = charge_request()
        with pytest.raises(GatewayAmbiguous):
            await env.gateway.create_charge(request)
        await env.admin.delete("/_sandbox/faults")
        found = await env.gateway.create_charge(request)
        assert found.amount == request.amount
        assert (await env.admin.get("/_sandbox")).json()["resources"]["cobs"] == 1

    async def test_a_missing_scope_is_access_denied(self, env: Env) -> None:
        """A token without cob.write: the bank's 403 AcessoNegado is our configuration."""
        reader = connector(env.served, scopes="cob.read")
        try:
            with pytest.raises(GatewayUnavailable) as caught:
                await reader.create_charge(charge_request())
            assert caught.value.code == "access_denied"
        finally:
            await reader.aclose()

    async def test_revoked_tokens_are_replaced(self, env: Env) -> None:
        """After the bank drops every token, the next call fetches a new one and works."""
        charge = await env.gateway.create_charge(charge_request())
        assert (await env.admin.post("/_sandbox/tokens/revoke")).json()["revoked"] == 1
        assert (await env.gateway.get_charge(charge.charge_id)).charge_id == charge.charge_id
