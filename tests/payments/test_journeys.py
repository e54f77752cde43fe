"""A handful of journeys end to end in one process: a deposit paid by webhook (and, with the
webhook lost, by polling and the sweep), a withdrawal, refunds, operator routing, gateway
notifications, and the alert that reaches SNS.

The real API (uvicorn on a port, its in-process job queue and scheduler), MariaDB, Redis,
and both gateway simulators over HTTP. Each test ends with the ledger audit. The engine's
decisions — retries, fallback, ambiguity, review, leases — are proven fast, on fakes, in
``test_engine.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pymysql.err import OperationalError as MySQLOperationalError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from pixwave.accounts.models import Role
from pixwave.app import create_app
from pixwave.bootstrap import build_resources
from pixwave.gateways.efi import EfiConnector, EfiWebhookAuth
from pixwave.gateways.efi.spec import SANDBOX_WEBHOOK_HMAC as SANDBOX_EFI_WEBHOOK_HMAC
from pixwave.gateways.mercadopago.webhooks import build_manifest, compute_signature
from pixwave.gateways.registry import build_gateway
from pixwave.inbox import repository as inbox_repository
from pixwave.notifications import relay
from pixwave.notifications.sns import SnsPublisher
from pixwave.payments import repository as payments_repository
from pixwave.resources import Resources
from pixwave.sandbox.core import Simulator
from pixwave.sandbox.embedded import build_simulator
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig
from pixwave.sandbox.server import bind
from tests.aws import REGION, Aws
from tests.conftest import assert_ledger_balances, make_settings, migrated_database, wipe
from tests.factories import Actor, create_actor
from tests.servers import ServerThread, run_simulator

ENGINE_SETTINGS: dict[str, Any] = {
    "queue_connection": "sync",
    "sandbox_gateways": False,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "ambiguous_query_delay": 0.05,
    "gateway_read_timeout": 0.5,
    "gateway_connect_timeout": 0.5,
    "charge_poll_seconds": 0.3,
    "charge_poll_max_seconds": 1.0,
    "send_poll_seconds": 0.2,
    "payment_lease_seconds": 3.0,
    "sweep_interval_seconds": 0.1,
    "probe_interval_seconds": 0.2,
    "circuit_open_seconds": 1.0,
    "review_after_seconds": 60.0,
    "inbox_retry_seconds": 0.3,
    "transaction_cache_seconds": 30.0,
}


@dataclass
class Sim:
    name: str
    simulator: Simulator[Any]
    thread: ServerThread


@dataclass
class World:
    api: httpx.AsyncClient
    resources: Resources
    sims: dict[str, Sim]
    admin: dict[str, httpx.AsyncClient]

    async def deposit(self, actor: Actor, amount: int, **extra: Any) -> dict[str, Any]:
        response = await self.api.post(
            "/v1/deposits", json={"amount": amount, **extra}, headers=actor.headers()
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refund(
        self, actor: Actor, transaction_id: str, amount: int | None = None
    ) -> httpx.Response:
        """Ask for a refund of ``amount`` (all that remains when None); the caller checks."""
        body = {} if amount is None else {"amount": amount}
        return await self.api.post(
            f"/v1/transactions/{transaction_id}/refunds", json=body, headers=actor.headers()
        )

    async def refund_accepted(
        self, actor: Actor, transaction_id: str, amount: int | None = None
    ) -> dict[str, Any]:
        """A refund the API accepted (202): its transaction."""
        response = await self.refund(actor, transaction_id, amount)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    async def withdraw(
        self, actor: Actor, amount: int, key: str = "pix@bcb.gov.br"
    ) -> dict[str, Any]:
        response = await self.api.post(
            "/v1/withdrawals", json={"amount": amount, "pix_key": key}, headers=actor.headers()
        )
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    async def get(self, actor: Actor, transaction_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/transactions/{transaction_id}", headers=actor.headers())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def until(
        self, actor: Actor, transaction_id: str, check: Callable[[dict[str, Any]], bool],
        seconds: float = 10.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Poll the API until the transaction satisfies ``check``."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            current = await self.get(actor, transaction_id)
            if check(current):
                return current
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"transaction never got there: {current}")
            await asyncio.sleep(0.05)

    async def status(self, actor: Actor, transaction_id: str, *statuses: str) -> dict[str, Any]:
        return await self.until(actor, transaction_id, lambda t: t["status"] in statuses)

    async def balance(self, actor: Actor) -> dict[str, int]:
        response = await self.api.get("/v1/wallet", headers=actor.headers())
        result: dict[str, int] = response.json()
        return result

    async def pay(self, transaction: dict[str, Any]) -> None:
        response = await self.admin[transaction["gateway"]].post(
            "/_sandbox/pay", json={"brcode": transaction["brcode"]}
        )
        assert response.status_code == 200, response.text

    async def fault(self, gateway: str, operation: str, **rule: Any) -> None:
        response = await self.admin[gateway].put(f"/_sandbox/faults/{operation}", json=rule)
        assert response.status_code == 200, response.text

    async def disable(self, gateway: str, **changes: Any) -> None:
        """Change a gateway's operator settings (the fixture puts every one back after)."""
        await self.resources.health.set_settings(gateway, **changes)


@pytest.fixture(scope="module")
def simulators() -> Iterator[dict[str, Sim]]:
    sims: dict[str, Sim] = {}
    contexts = []
    for name in ("mercadopago", "efi"):
        simulator = build_simulator(name, public_url="http://127.0.0.1", time_scale=0.001)
        context = run_simulator(simulator)
        sims[name] = Sim(name, simulator, context.__enter__())
        contexts.append(context)
    yield sims
    for context in contexts:
        context.__exit__(None, None, None)


@pytest.fixture(params=[True, False], ids=["batched", "alone"])
async def world(
    request: pytest.FixtureRequest,
    simulators: dict[str, Sim],
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    """Every journey twice: with the engine's batches (``ENGINE_BATCH``, the default) and
    with each payment moved alone."""
    url = await migrated_database("mariadb", Path(tmp_path_factory.getbasetemp()))
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        app_url=f"http://127.0.0.1:{port}",
        engine_batch=request.param,
        **ENGINE_SETTINGS,
    )
    gateways = {
        name: build_gateway(name, settings, sandbox_url=sim.thread.base_url,
                            clock=sim.simulator.clock.now)
        for name, sim in simulators.items()
    }  # fmt: skip
    resources = build_resources(settings, gateways=gateways)
    await wipe(resources)
    assert resources.redis is not None
    await resources.redis.flushdb()
    admin = {
        name: httpx.AsyncClient(base_url=sim.thread.base_url, timeout=10)
        for name, sim in simulators.items()
    }
    for client in admin.values():
        await client.post("/_sandbox/reset")
        await client.patch(
            "/_sandbox/config", json={"auto_settle_sends": True, "settle_delay_seconds": 0.05}
        )
    await admin["efi"].patch("/_sandbox/config", json={"magic_amounts": False})
    efi = gateways["efi"]
    assert isinstance(efi, EfiConnector)
    await efi.register_webhook(
        f"http://127.0.0.1:{port}/webhooks/efi?hmac={SANDBOX_EFI_WEBHOOK_HMAC}&ignorar=",
        skip_mtls=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, resources), log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15)
    try:
        yield World(api, resources, simulators, admin)
        await _quiesce(resources)
        await assert_ledger_balances(resources)
    finally:
        for priority, name in enumerate(simulators, start=1):  # as the next test expects them
            await resources.health.set_settings(name, enabled=True, priority=priority)
        await api.aclose()
        server.should_exit = True
        await serving
        for client in admin.values():
            await client.aclose()
        await resources.close()


async def _quiesce(resources: Resources) -> None:
    """Let the jobs in flight finish before the audit (the in-process broker runs them)."""
    wait_all = getattr(resources.broker, "wait_all", None)
    if wait_all is not None:
        await asyncio.wait_for(wait_all(), timeout=10)


class TestDeposit:
    async def test_paid_by_webhook_credits_the_wallet_once(self, world: World) -> None:
        """Deposit → charge → the payer pays → webhook → credited exactly once."""
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 123_45, description="primeiro depósito")
        assert created["status"] == "pending"
        ready = await world.status(actor, created["id"], "awaiting_payment")
        assert ready["brcode"]
        assert ready["qr_png_base64"]
        assert ready["expires_at"]
        assert ready["gateway"] in {"mercadopago", "efi"}
        await world.pay(ready)
        done = await world.status(actor, created["id"], "succeeded")
        assert done["ledger_transaction_id"]
        assert (await world.balance(actor))["posted"] == 123_45
        # More polls and webhooks change nothing.
        await asyncio.sleep(0.5)
        assert (await world.balance(actor))["posted"] == 123_45
        # The reads above went through the Redis cache, and never served a stale status.
        assert world.resources.redis is not None
        assert await world.resources.redis.keys(f"pixwave:txn:{{{created['id']}}}:d:*")
        assert (await world.get(actor, created["id"]))["status"] == "succeeded"

    async def test_prefer_wait_returns_the_ready_charge(self, world: World) -> None:
        """`Prefer: wait=5` answers with the BR Code in the same response."""
        actor = await create_actor(world.resources)
        response = await world.api.post(
            "/v1/deposits",
            json={"amount": 10_00},
            headers={**actor.headers(), "Prefer": "wait=5"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["preference-applied"] == "wait=5"
        assert response.json()["status"] == "awaiting_payment"
        assert response.json()["brcode"].startswith("000201")

    async def test_lost_webhook_is_made_up_by_polling(self, world: World) -> None:
        """Notifications go nowhere: the engine's polling still credits, once."""
        world.resources.webhook_base_urls.update(dict.fromkeys(world.sims, "http://127.0.0.1:9"))
        efi = world.resources.gateways["efi"]
        assert isinstance(efi, EfiConnector)
        await efi.register_webhook("http://127.0.0.1:9/nowhere", skip_mtls=True)
        actor = await create_actor(world.resources)
        for _ in world.sims:
            created = await world.deposit(actor, 50_00)
            ready = await world.status(actor, created["id"], "awaiting_payment")
            await world.pay(ready)
            await world.status(actor, created["id"], "succeeded")
        assert (await world.balance(actor))["posted"] == 2 * 50_00

    async def test_every_gateway_down_fails_with_an_alert(self, world: World, aws: str) -> None:
        """No gateway can create the charge: failed, with an alert event in the outbox — which
        the relay delivers to the SNS alerts topic (an SQS queue subscribed to it receives it),
        and the deposit's events, in order, to the transactions topic."""
        sns = Aws(aws)
        events_topic, alerts_topic = sns.topic("transactions"), sns.topic("alerts")
        events = sns.subscribe(events_topic, "events")
        alerts = sns.subscribe(alerts_topic, "alerts")
        world.resources.sns = SnsPublisher(
            make_settings(
                aws_sns_topic_arn=events_topic,
                aws_sns_alerts_topic_arn=alerts_topic,
                aws_endpoint_url=aws,
                aws_default_region=REGION,
            )
        )
        for name in world.sims:
            await world.fault(name, "*", outage="503")
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 5_00)
        failed = await world.status(actor, created["id"], "failed")
        assert failed["failure_code"] == "all_gateways_unavailable"
        assert failed["gateway"] is None  # no gateway answered; the attempts name them all
        assert {a["outcome"] for a in failed["attempts"]} == {"unavailable"}
        assert len(failed["attempts"]) == 6
        assert await _alerts(world, created["id"]) == ["alert.all_gateways_unavailable"]

        await relay.relay(world.resources)  # whatever the app's own relay has not sent yet

        received = sns.drain(alerts)
        assert {m["type"] for m in received} <= {
            "alert.all_gateways_unavailable",
            "alert.gateway_down",  # the probe job may already have seen the circuits open
        }
        (alert,) = [m for m in received if m["aggregate"]["id"] == created["id"]]
        assert alert["type"] == "alert.all_gateways_unavailable"
        assert alert["attributes"]["transaction_type"] == "cash_in"
        mine = [m["type"] for m in sns.drain(events) if m["aggregate"]["id"] == created["id"]]
        assert mine == ["transaction.pending", "transaction.failed"]


class TestRouting:
    async def test_operator_disable_takes_effect_at_once(self, world: World) -> None:
        """PATCH /v1/gateways/{name} enabled=false: the next payment avoids it."""
        admin = await create_actor(world.resources, role=Role.ADMIN)
        response = await world.api.patch(
            "/v1/gateways/mercadopago", json={"enabled": False}, headers=admin.headers()
        )
        assert response.status_code == 200, response.text
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 3_00)
        assert (await world.status(actor, created["id"], "awaiting_payment"))["gateway"] == "efi"
        listed = (await world.api.get("/v1/gateways", headers=actor.headers())).json()
        assert {g["name"]: g["enabled"] for g in listed} == {"mercadopago": False, "efi": True}


class TestWithdrawal:
    async def test_succeeds_and_posts_the_hold(self, world: World) -> None:
        """Held at once, sent, settled: the wallet pays exactly the amount."""
        actor = await create_actor(world.resources, balance=100_00)
        created = await world.withdraw(actor, 40_00)
        assert (await world.balance(actor))["held"] == 40_00
        done = await world.status(actor, created["id"], "succeeded")
        assert done["end_to_end_id"]
        balance = await world.balance(actor)
        assert (balance["posted"], balance["held"]) == (60_00, 0)

    async def test_insufficient_funds_is_refused_at_once(self, world: World) -> None:
        """More than the available balance: 402 and nothing recorded."""
        actor = await create_actor(world.resources, balance=10_00)
        response = await world.api.post(
            "/v1/withdrawals",
            json={"amount": 10_01, "pix_key": "pix@bcb.gov.br"},
            headers=actor.headers(),
        )
        assert response.status_code == 402
        assert response.json()["code"] == "insufficient_funds"

    async def test_invalid_key_is_422(self, world: World) -> None:
        """A malformed Pix key never reaches a gateway."""
        actor = await create_actor(world.resources, balance=10_00)
        response = await world.api.post(
            "/v1/withdrawals",
            json={"amount": 1_00, "pix_key": "not a key"},
            headers=actor.headers(),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_pix_key"


class TestRefund:
    async def received(self, world: World, actor: Actor, amount: int) -> dict[str, Any]:
        created = await world.deposit(actor, amount)
        ready = await world.status(actor, created["id"], "awaiting_payment")
        await world.pay(ready)
        return await world.status(actor, created["id"], "succeeded")

    async def test_partial_then_full(self, world: World) -> None:
        """Two refunds of one deposit: partially_refunded, then refunded; wallet debited."""
        actor = await create_actor(world.resources)
        deposit = await self.received(world, actor, 100_00)
        first = await world.refund_accepted(actor, deposit["id"], 30_00)
        await world.status(actor, first["id"], "succeeded")
        parent = await world.status(actor, deposit["id"], "partially_refunded")
        assert parent["refunded_amount"] == 30_00
        rest = await world.refund_accepted(actor, deposit["id"])
        assert rest["amount"] == 70_00
        await world.status(actor, rest["id"], "succeeded")
        await world.status(actor, deposit["id"], "refunded")
        assert (await world.balance(actor))["posted"] == 0


class TestWebhooks:
    async def mp_notify(self, world: World, payment_id: str, notification_id: int) -> int:
        """Post a correctly signed Mercado Pago notification; return how many events were new."""
        request_id, ts = str(uuid.uuid4()), str(int(time.time()))
        secret = MercadoPagoSimConfig().webhook_secret
        signature = compute_signature(secret, build_manifest(payment_id, request_id, ts))
        response = await world.api.post(
            f"/webhooks/mercadopago?data.id={payment_id}&type=payment",
            json={"id": notification_id, "type": "payment", "action": "payment.updated",
                  "data": {"id": payment_id}, "live_mode": False},
            headers={"x-signature": f"ts={ts},v1={signature}", "x-request-id": request_id},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        received: int = response.json()["received"]
        return received

    async def test_a_notification_whose_job_failed_is_handled_again(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The inbox job raises (the database blinked): the stored notification is handed to
        a job again after INBOX_RETRY_SECONDS and handled — nothing is left unprocessed."""
        await world.disable("efi", enabled=False)
        real_get = inbox_repository.get_many_with_payment
        failed: list[list[str]] = []

        async def fail_once(session: Any, event_row_ids: list[str]) -> Any:
            if not failed:
                failed.append(event_row_ids)
                raise OperationalError("SELECT …", {}, MySQLOperationalError(2013, "Lost"))
            return await real_get(session, event_row_ids)

        monkeypatch.setattr(inbox_repository, "get_many_with_payment", fail_once)
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 9_00)
        ready = await world.status(actor, created["id"], "awaiting_payment")
        await world.pay(ready)
        await world.status(actor, created["id"], "succeeded")
        assert len(failed) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            async with world.resources.sessionmaker() as session:
                waiting = await session.scalar(
                    text("SELECT COUNT(*) FROM inbox_events WHERE processed_at IS NULL")
                )
            if waiting == 0:
                break
            await asyncio.sleep(0.05)
        assert waiting == 0
        assert (await world.balance(actor))["posted"] == 9_00

    async def test_duplicate_notifications_credit_once(self, world: World) -> None:
        """The same notification three times (and the provider's own): stored once, one credit."""
        await world.disable("efi", enabled=False)
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 12_00)
        ready = await world.status(actor, created["id"], "awaiting_payment")
        await world.pay(ready)
        await world.status(actor, created["id"], "succeeded")
        payment_id = ready["gateway_payment_id"]
        results = await asyncio.gather(*(self.mp_notify(world, payment_id, 777) for _ in range(3)))
        assert sorted(results) == [0, 0, 1]
        await asyncio.sleep(0.3)
        assert (await world.balance(actor))["posted"] == 12_00

    async def test_an_early_notification_changes_nothing_then_the_payment_credits_once(
        self, world: World
    ) -> None:
        """A notification before the payment (out of order): the engine asks, sees it unpaid,
        does nothing; the real payment later credits exactly once."""
        await world.disable("efi", enabled=False)
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 8_00)
        ready = await world.status(actor, created["id"], "awaiting_payment")
        assert await self.mp_notify(world, ready["gateway_payment_id"], 1) == 1
        await asyncio.sleep(0.3)
        assert (await world.get(actor, created["id"]))["status"] == "awaiting_payment"
        await world.pay(ready)
        await world.status(actor, created["id"], "succeeded")
        assert (await world.balance(actor))["posted"] == 8_00

    async def test_efi_batches_are_stored_once(self, world: World) -> None:
        """Efí's notification replayed (shared secret in the URL): accepted, nothing new."""
        await world.disable("mercadopago", enabled=False)
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 9_00)
        ready = await world.status(actor, created["id"], "awaiting_payment")
        await world.pay(ready)
        await world.status(actor, created["id"], "succeeded")
        deliveries = (await world.admin["efi"].get("/_sandbox/webhooks")).json()
        delivered = [d for d in deliveries if d["delivered"]]
        assert delivered
        for delivery in delivered:
            url = delivery["url"].replace(str(world.api.base_url).rstrip("/"), "")
            replay = await world.api.post(
                url, content=delivery["body"], headers={"content-type": "application/json"}
            )
            assert replay.status_code == 200, replay.text
            assert replay.json() == {"received": 0}
        assert (await world.balance(actor))["posted"] == 9_00

    @pytest.mark.parametrize(
        ("headers", "query", "credited"),
        [
            ({"x-ssl-client-verify": "SUCCESS"}, "", True),
            ({}, f"?hmac={SANDBOX_EFI_WEBHOOK_HMAC}&ignorar=", False),
        ],
        ids=["mtls-trusted", "hmac-read-back"],
    )
    async def test_efi_trusted_mtls_notification_credits_without_a_read(
        self,
        world: World,
        monkeypatch: pytest.MonkeyPatch,
        headers: dict[str, str],
        query: str,
        credited: bool,
    ) -> None:
        """EFI_WEBHOOK_TRUST_MTLS: a notification over verified mTLS is believed — the charge
        is credited although Efí (the simulator) has not been paid, with the notification's
        endToEndId. The same notification over the URL secret is read back from Efí, which
        says unpaid: nothing is credited."""
        await world.disable("mercadopago", enabled=False)
        efi = world.resources.gateways["efi"]
        assert isinstance(efi, EfiConnector)
        trusting = EfiWebhookAuth(
            mtls_header="x-ssl-client-verify",
            hmac_secret=SANDBOX_EFI_WEBHOOK_HMAC,
            allowed_ips=frozenset(),
            trust_mtls_payments=True,
        )
        monkeypatch.setattr(efi, "webhook_auth", trusting)
        actor = await create_actor(world.resources)
        created = await world.deposit(actor, 9_00)
        await world.status(actor, created["id"], "awaiting_payment")
        async with world.resources.sessionmaker() as session:
            row = await payments_repository.get(session, created["id"])
        assert row is not None
        assert row["txid"] is not None
        e2e = "E00000000202612061500trustedMTLS"
        body = {"pix": [{"endToEndId": e2e, "txid": row["txid"], "valor": "9.00",
                         "horario": "2026-12-06T15:00:00.000Z"}]}  # fmt: skip
        response = await world.api.post(f"/webhooks/efi/pix{query}", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"received": 1}
        if credited:
            done = await world.status(actor, created["id"], "succeeded")
            assert done["end_to_end_id"] == e2e
            assert (await world.balance(actor))["posted"] == 9_00
        else:
            await asyncio.sleep(1.0)  # the inbox job reads the charge back: still unpaid
            assert (await world.get(actor, created["id"]))["status"] == "awaiting_payment"
            assert (await world.balance(actor))["posted"] == 0

    async def test_a_forged_notification_is_refused(self, world: World) -> None:
        """No signature: 401 problem+json and nothing stored."""
        response = await world.api.post(
            "/webhooks/mercadopago?data.id=1&type=payment",
            json={"id": 1, "type": "payment", "action": "payment.updated", "data": {"id": "1"}},
        )
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "webhook_rejected"


async def _alerts(world: World, transaction_id: str) -> list[str]:
    from sqlalchemy import select

    from pixwave.notifications.models import OutboxEvent

    async with world.resources.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxEvent.event_type).where(
                OutboxEvent.aggregate_id == transaction_id,
                OutboxEvent.event_type.like("alert.%"),
            )
        )
        return list(rows)
