"""The conformance suite: every connector, every operation, against its simulator over HTTP.

A new gateway family joins by registering its spec (``gateways/specs.py``); these tests then
hold it to the same contract as the others — the one the payments engine is written against.
Nothing here knows a family: operations to break come from the spec's
``simulator_operations``, sends are tested where the connector has the capability.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from pixwave.config import Settings
from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    ChargeStatus,
    InboundWebhook,
    PixGateway,
    RefundRequest,
    RefundStatus,
    SendRequest,
    SendStatus,
    WebhookEvent,
    WebhookKind,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    WebhookRejected,
)
from pixwave.gateways.spec import Common, GatewaySpec
from pixwave.gateways.specs import SPECS
from pixwave.kit.ids import new_id
from pixwave.pix import parse_brcode
from pixwave.sandbox.core import Simulator
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Env:
    """One gateway under test: its connector, its simulator's admin API and a webhook sink."""

    name: str
    spec: GatewaySpec[Any]
    gateway: PixGateway
    admin: httpx.AsyncClient
    sink: WebhookSink
    sink_url: str

    def operation(self, kind: str) -> str:
        """The simulator's fault-injection name for ``kind`` (``charge``, ``send`` …)."""
        return self.spec.simulator_operations[kind]

    def can_send(self) -> bool:
        return Capability.SEND in self.gateway.capabilities

    async def pay(self, charge: Charge) -> dict[str, Any]:
        response = await self.admin.post("/_sandbox/pay", json={"brcode": charge.brcode})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def fault(self, operation: str, **rule: Any) -> None:
        response = await self.admin.put(f"/_sandbox/faults/{operation}", json=rule)
        assert response.status_code == 200, response.text

    async def counts(self) -> dict[str, int]:
        result: dict[str, int] = (await self.admin.get("/_sandbox")).json()["resources"]
        return result


@dataclass
class Served:
    spec: GatewaySpec[Any]
    simulator: Simulator[Any]
    thread: ServerThread
    sink_thread: ServerThread
    sink: WebhookSink


@pytest.fixture(scope="module", params=SPECS, ids=[spec.family for spec in SPECS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    spec: GatewaySpec[Any] = request.param
    sink = WebhookSink()
    with run_sink(sink) as sink_thread:
        simulator = spec.simulator(public_url="http://127.0.0.1", time_scale=0.001)
        with run_simulator(simulator) as thread:
            yield Served(spec, simulator, thread, sink_thread, sink)


@pytest.fixture
async def env(served: Served) -> AsyncIterator[Env]:
    spec, thread, sink_thread, sink = served.spec, served.thread, served.sink_thread, served.sink
    name = spec.family
    settings = Settings(gateway_read_timeout=0.5, gateway_connect_timeout=0.5)
    common = Common.from_settings(settings, clock=served.simulator.clock.now)
    gateway = spec.build_simulated(spec.sandbox_instance(), common, url=thread.base_url)
    async with httpx.AsyncClient(base_url=thread.base_url, timeout=5) as admin:
        await admin.post("/_sandbox/reset")
        # An account-level webhook (where the family has one) points at the sink.
        account_url = spec.simulator_webhook_url(sink_thread.base_url, name)
        await admin.patch(
            "/_sandbox/config",
            json={
                "auto_settle_sends": False,
                "settle_delay_seconds": 0.01,
                "webhook_url": account_url,
            },
        )
        sink.received.clear()
        sink.status = 200
        sink_url = f"{sink_thread.base_url}/webhooks/{name}"
        yield Env(name, spec, gateway, admin, sink, sink_url)
        await admin.post("/_sandbox/reset")
    await gateway.aclose()


def charge_request(env: Env, amount: int = 123_45, **overrides: Any) -> ChargeRequest:
    values: dict[str, Any] = {
        "reference": new_id("txn"),
        "amount": amount,
        "expires_in": 3600,
        "description": "Depósito PixWave",
        "notification_url": env.sink_url,
    }
    values.update(overrides)
    return ChargeRequest(**values)


def send_request(amount: int = 5_00, key: str = "pix@bcb.gov.br") -> SendRequest:
    return SendRequest(reference=new_id("txn"), amount=amount, pix_key=key, description="Saque")


async def eventually(check: Any, attempts: int = 100) -> Any:
    """Poll an async check until it returns a truthy value (simulated settlement is async)."""
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


class TestCapabilities:
    async def test_every_gateway_declares_the_core_capabilities(self, env: Env) -> None:
        """Charges, refunds and webhooks are what every PixWave gateway must offer."""
        assert {
            Capability.CHARGE,
            Capability.REFUND,
            Capability.WEBHOOK,
        } <= env.gateway.capabilities
        assert env.gateway.name == env.name

    async def test_a_gateway_without_cash_out_refuses_to_send(self, env: Env) -> None:
        """A family without SEND (the routing never sends it a withdrawal) still never moves
        money when asked: the call is rejected, and nothing is sent."""
        if env.can_send():
            pytest.skip(f"{env.name} has cash-out: TestSends covers it")
        with pytest.raises(GatewayRejected):
            await env.gateway.send_pix(send_request())


class TestCharges:
    async def test_create_returns_an_active_charge_with_a_valid_br_code(self, env: Env) -> None:
        """A new charge is active, for the amount, with a CRC-valid code and a PNG QR."""
        charge = await env.gateway.create_charge(charge_request(env))
        assert charge.status is ChargeStatus.ACTIVE
        assert charge.amount == 123_45
        assert charge.gateway == env.name
        parse_brcode(charge.brcode)  # raises on a bad CRC or layout
        assert charge.qr_png_base64 is not None
        assert base64.b64decode(charge.qr_png_base64).startswith(PNG_MAGIC)
        assert charge.expires_at is not None
        assert charge.expires_at > datetime.now(UTC) + timedelta(minutes=29)
        assert charge.latency_ms >= 0

    async def test_the_same_reference_never_makes_a_second_charge(self, env: Env) -> None:
        """Creating again after a lost answer finds the first charge."""
        request = charge_request(env)
        first = await env.gateway.create_charge(request)
        second = await env.gateway.create_charge(request)
        assert second.charge_id == first.charge_id
        assert sum((await env.counts()).values()) >= 1
        assert await env.gateway.get_charge(first.charge_id) is not None

    async def test_a_paid_charge_reads_paid(self, env: Env) -> None:
        """After the payer pays the code, get_charge says paid with the amount."""
        charge = await env.gateway.create_charge(charge_request(env, amount=50_00))
        await env.pay(charge)
        paid = await env.gateway.get_charge(charge.charge_id)
        assert paid.status is ChargeStatus.PAID
        assert paid.paid_amount == 50_00
        assert paid.paid_at is not None

    async def test_cancel_an_active_charge(self, env: Env) -> None:
        """An unpaid charge can be cancelled, and then cannot be paid."""
        charge = await env.gateway.create_charge(charge_request(env))
        cancelled = await env.gateway.cancel_charge(charge.charge_id)
        assert cancelled.status is ChargeStatus.CANCELLED
        response = await env.admin.post("/_sandbox/pay", json={"brcode": charge.brcode})
        assert response.status_code == 409

    async def test_a_paid_charge_cannot_be_cancelled(self, env: Env) -> None:
        """Cancelling after payment is a rejection, not a silent no-op."""
        charge = await env.gateway.create_charge(charge_request(env))
        await env.pay(charge)
        with pytest.raises(GatewayRejected):
            await env.gateway.cancel_charge(charge.charge_id)

    async def test_an_unpaid_charge_expires(self, env: Env) -> None:
        """Past its expiry an unpaid charge reads expired."""
        charge = await env.gateway.create_charge(charge_request(env, expires_in=1800))
        await env.admin.post("/_sandbox/clock/advance", json={"seconds": 3 * 3600})
        expired = await env.gateway.get_charge(charge.charge_id)
        assert expired.status is ChargeStatus.EXPIRED

    async def test_an_unknown_charge_is_not_found(self, env: Env) -> None:
        """Reading a charge the gateway never had (a well-formed id it has forgotten) is
        GatewayNotFound."""
        charge = await env.gateway.create_charge(charge_request(env))
        await env.admin.post("/_sandbox/reset")
        with pytest.raises(GatewayNotFound):
            await env.gateway.get_charge(charge.charge_id)


class TestSends:
    @pytest.fixture(autouse=True)
    def _sends(self, env: Env) -> None:
        if not env.can_send():
            pytest.skip(f"{env.name} has no cash-out (see TestCapabilities)")

    async def test_send_then_settle(self, env: Env) -> None:
        """A send starts processing and reads succeeded once the provider settles it."""
        request = send_request()
        send = await env.gateway.send_pix(request)
        assert send.status is SendStatus.PROCESSING
        assert send.amount == 5_00
        await env.admin.post(f"/_sandbox/sends/{send.send_id}/settle", json={})
        done = await env.gateway.get_send(request.reference, send.send_id)
        assert done.status is SendStatus.SUCCEEDED
        assert done.end_to_end_id is not None

    async def test_send_rejected_by_the_provider_reads_failed(self, env: Env) -> None:
        """A provider-side rejection after acceptance surfaces as failed with a reason."""
        request = send_request()
        send = await env.gateway.send_pix(request)
        await env.admin.post(f"/_sandbox/sends/{send.send_id}/reject", json={"reason": "AC03"})
        failed = await env.gateway.get_send(request.reference, send.send_id)
        assert failed.status is SendStatus.FAILED

    async def test_the_same_reference_never_sends_twice(self, env: Env) -> None:
        """Sending again with the same reference returns the first send."""
        request = send_request()
        first = await env.gateway.send_pix(request)
        second = await env.gateway.send_pix(request)
        assert second.send_id == first.send_id
        assert (await env.counts()).get("sends", (await env.counts()).get("payouts")) == 1

    async def test_a_send_is_found_by_reference_alone(self, env: Env) -> None:
        """After a lost answer the engine knows only its reference; that is enough."""
        request = send_request()
        send = await env.gateway.send_pix(request)
        found = await env.gateway.get_send(request.reference)
        assert found.send_id == send.send_id

    async def test_a_send_that_never_arrived_is_not_found(self, env: Env) -> None:
        """GatewayNotFound is the proof that lets the engine try elsewhere."""
        with pytest.raises(GatewayNotFound):
            await env.gateway.get_send(new_id("txn"))

    async def test_an_invalid_key_is_rejected(self, env: Env) -> None:
        """A malformed destination key is the provider's 'no', terminal."""
        with pytest.raises(GatewayRejected):
            await env.gateway.send_pix(send_request(key="not a key"))


class TestRefunds:
    async def paid_charge(self, env: Env, amount: int = 100_00) -> Charge:
        charge = await env.gateway.create_charge(charge_request(env, amount=amount))
        await env.pay(charge)
        return await env.gateway.get_charge(charge.charge_id)

    def refund_request(self, charge: Charge, amount: int) -> RefundRequest:
        return RefundRequest(
            reference=new_id("txn"),
            charge_id=charge.charge_id,
            end_to_end_id=charge.end_to_end_id,
            amount=amount,
        )

    async def test_partial_then_full_refund(self, env: Env) -> None:
        """Refunds add up on the charge and settle."""
        charge = await self.paid_charge(env)
        first = self.refund_request(charge, 30_00)
        refund = await env.gateway.refund(first)
        assert refund.amount == 30_00
        assert refund.status in {RefundStatus.PROCESSING, RefundStatus.SUCCEEDED}

        async def settled() -> bool:
            current = await env.gateway.get_refund(
                reference=first.reference,
                charge_id=charge.charge_id,
                end_to_end_id=charge.end_to_end_id,
                refund_id=refund.refund_id,
            )
            return current.status is RefundStatus.SUCCEEDED

        await eventually(settled)
        await env.gateway.refund(self.refund_request(charge, 70_00))

        async def fully_refunded() -> bool:
            return (await env.gateway.get_charge(charge.charge_id)).refunded_amount == 100_00

        await eventually(fully_refunded)

    async def test_the_same_reference_never_refunds_twice(self, env: Env) -> None:
        """Repeating a refund request returns the first refund."""
        charge = await self.paid_charge(env)
        request = self.refund_request(charge, 10_00)
        first = await env.gateway.refund(request)
        second = await env.gateway.refund(request)
        assert second.refund_id == first.refund_id

    async def test_refunding_more_than_was_paid_is_rejected(self, env: Env) -> None:
        """The provider refuses a refund above the paid amount."""
        charge = await self.paid_charge(env, amount=10_00)
        with pytest.raises(GatewayRejected):
            await env.gateway.refund(self.refund_request(charge, 10_01))


class TestFaults:
    async def test_injected_5xx_on_a_charge_is_unavailable(self, env: Env) -> None:
        """A 5xx before any effect is safe to retry: unavailable, and nothing was created."""
        await env.fault(env.operation("charge"), error_rate=1, error_status=503)
        with pytest.raises(GatewayUnavailable):
            await env.gateway.create_charge(charge_request(env))

    async def test_refused_connections_are_unavailable(self, env: Env) -> None:
        """A gateway whose port is closed is unavailable (connect error), not ambiguous."""
        await env.fault("*", outage="refuse", outage_seconds=0.3)
        # Let the closed keep-alive connections reach the client's pool: a request written
        # into a connection the server is closing at that instant is (rightly) ambiguous.
        await asyncio.sleep(0.05)
        with pytest.raises(GatewayUnavailable) as caught:
            await env.gateway.get_charge("anything")
        assert caught.value.code == "connect_failed"
        await asyncio.sleep(0.4)

    async def test_rate_limits_carry_retry_after(self, env: Env) -> None:
        """A 429 is unavailable with the provider's Retry-After."""
        await env.fault(env.operation("charge"), rate_limit=0, retry_after=4)
        with pytest.raises(GatewayUnavailable) as caught:
            await env.gateway.create_charge(charge_request(env))
        assert caught.value.retry_after == 4

    async def test_process_then_timeout_on_a_send_is_ambiguous_and_findable(self, env: Env) -> None:
        """The send happened but the answer was lost: ambiguous, then found, never repeated."""
        if not env.can_send():
            pytest.skip(f"{env.name} has no cash-out")
        await env.fault(env.operation("send"), timeout_rate=1, hang_seconds=3)
        request = send_request()
        with pytest.raises(GatewayAmbiguous):
            await env.gateway.send_pix(request)
        await env.admin.delete("/_sandbox/faults")
        found = await env.gateway.get_send(request.reference)
        assert found.amount == request.amount
        again = await env.gateway.send_pix(request)
        assert again.send_id == found.send_id

    async def test_latency_is_measured(self, env: Env) -> None:
        """Added latency shows in the result's latency (what health tracking reads)."""
        await env.fault(env.operation("charge"), latency={"fixed_ms": 120})
        charge = await env.gateway.create_charge(charge_request(env))
        assert charge.latency_ms >= 120


class TestWebhooks:
    def inbound(self, env: Env, index: int = -1) -> InboundWebhook:
        received = env.sink.received[index]
        return InboundWebhook(
            body=received.body,
            headers=received.headers,
            query=dict(parse_qsl(received.query, keep_blank_values=True)),
            client_ip="127.0.0.1",
        )

    async def test_a_payment_notification_verifies_and_names_the_charge(self, env: Env) -> None:
        """The simulator's notification passes the connector's verification."""
        charge = await env.gateway.create_charge(charge_request(env))
        await env.pay(charge)

        async def names_the_charge() -> list[WebhookEvent] | None:
            # Every delivery must verify; the payment's own may follow a creation notice.
            events = [
                event
                for index in range(len(env.sink.received))
                for event in env.gateway.verify_webhook(self.inbound(env, index))
            ]
            found = any(
                e.kind is WebhookKind.CHARGE and e.resource_id in {charge.charge_id, charge.txid}
                for e in events
            )
            return events if found else None

        events = await eventually(names_the_charge)
        assert all(e.gateway == env.name for e in events)

    async def test_a_tampered_notification_is_rejected(self, env: Env) -> None:
        """Changing one byte of the body breaks authentication."""
        charge = await env.gateway.create_charge(charge_request(env))
        await env.pay(charge)
        await eventually(lambda: _has_webhook(env))
        genuine = self.inbound(env)
        assert env.gateway.verify_webhook(genuine) is not None
        # Whatever authenticates it (a signature over the query, a secret in the URL) is in
        # the query or the signature header: change one character of each.
        forged = InboundWebhook(
            body=genuine.body,
            headers={
                name: value + "0" if name.startswith("x-signature") else value
                for name, value in genuine.headers.items()
            },
            query={name: value + "0" for name, value in genuine.query.items()},
            client_ip="127.0.0.1",
        )
        with pytest.raises(WebhookRejected):
            env.gateway.verify_webhook(forged)

    async def test_each_provider_posts_where_the_webhook_route_listens(self, env: Env) -> None:
        """The provider's notification arrives at ``/webhooks/<gateway>`` or one of the paths
        its spec declares (what the one generic route accepts)."""
        charge = await env.gateway.create_charge(charge_request(env))
        await env.pay(charge)
        await eventually(lambda: _has_webhook(env))
        accepted = {f"/webhooks/{env.name}{path}" for path in env.spec.webhook_paths}
        assert {received.path for received in env.sink.received} <= accepted


async def _has_webhook(env: Env) -> bool:
    return bool(env.sink.received)
