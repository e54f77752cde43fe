"""Helpers every test directory may use: free ports, the embedded server's start, and the
payments engine on fakes (a clock moved by hand, gateways in memory) for fast decisions.

Test modules import from here, never each other's private helpers.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import select

from pixwave.config import Settings
from pixwave.db import utcnow
from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    ChargeStatus,
    InboundWebhook,
    Refund,
    RefundRequest,
    RefundStatus,
    Send,
    SendRequest,
    SendStatus,
    WebhookEvent,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pixwave.gateways.fees import FeeSchedule
from pixwave.gateways.health import HealthConfig, MemoryHealthStore
from pixwave.gateways.router import Router
from pixwave.ledger import service as ledger
from pixwave.notifications.models import OutboxEvent
from pixwave.payments import flows, repository
from pixwave.payments.engine import Engine, EngineSettings
from pixwave.payments.lease import MemoryLeases
from pixwave.payments.repository import TransactionRow
from pixwave.payments.schemas import DepositCreate, RefundCreate, WithdrawalCreate
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import JobQueue
from tests.factories import Actor, create_actor

#: The `pixwave` command of the interpreter running the tests.
PIXWAVE = shutil.which("pixwave", path=str(Path(sys.executable).parent)) or "pixwave"

#: Settings that would take a run off the embedded default and its demo gateways.
_NOT_EMBEDDED = (
    "DB_",
    "DATABASE_",
    "REDIS_",
    "MERCADOPAGO_",
    "GERENCIANET_",
    "EFI_",
    "PIXAPI_",
    "SANDBOX_",
)


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_listening_port() -> int:
    """A free loopback port below the kernel's ephemeral range, for a server that closes and
    reopens its port (a simulator's refuse outage): the kernel never gives such a port to an
    outgoing connection meanwhile, which a port picked by :func:`free_port` it may."""
    low = 32768
    with contextlib.suppress(OSError, ValueError, IndexError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


def embedded_env() -> dict[str, str]:
    """The caller's environment without any database, Redis or gateway setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_NOT_EMBEDDED)}


def admin_token_once_serving(
    process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 30
) -> str:
    """Wait until the server on ``port`` answers, then the admin token its first start printed
    (fails the test with the server's log otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, "the server exited:\n" + log.read_text()
        assert time.monotonic() < deadline, "the server did not answer:\n" + log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    match = re.search(r"pxw_[A-Za-z0-9_-]{20,}", log.read_text())
    assert match, "the first start must print an admin token:\n" + log.read_text()
    return match.group(0)


# --- the payments engine on fakes ---------------------------------------------------------------

T = TypeVar("T")


class FakeTime:
    """A clock a test moves by hand: wall time for the engine and its leases, epoch seconds for
    gateway health, and a ``sleep`` that moves the clock (and notes the wait) instead of
    waiting. It starts at the real now, so rows stamped by the database code line up."""

    def __init__(self) -> None:
        self.current = utcnow()
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    def seconds(self) -> float:
        return self.current.timestamp()

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


@dataclass(frozen=True, slots=True)
class Fault:
    """How one scripted call fails; ``acted``: the provider did the work before the failure
    (a send that went out, its answer lost)."""

    kind: type[GatewayError]
    code: str
    retry_after: float | None = None
    acted: bool = False


def unavailable(retry_after: float | None = None) -> Fault:
    return Fault(GatewayUnavailable, "provider_unavailable", retry_after)


def rejected(code: str = "payment_denied") -> Fault:
    return Fault(GatewayRejected, code)


def ambiguous(*, acted: bool) -> Fault:
    return Fault(GatewayAmbiguous, "read_timeout", acted=acted)


ALL_CAPABILITIES = frozenset(Capability)


class FakeProvider:
    """A gateway in memory: it keeps what it received (charges, sends and refunds by our
    reference, so a repeat finds the first) and fails the way a test scripts it, call by call.
    ``calls`` lists every method called, in order."""

    def __init__(self, name: str, now: Callable[[], datetime]) -> None:
        self.name = name
        self.capabilities = ALL_CAPABILITIES
        self.now = now
        self.calls: list[str] = []
        self.faults: dict[str, list[Fault | None]] = {}
        #: Run inside the next call of a method (before it acts): another worker, say.
        self.during: dict[str, Callable[[], Awaitable[None]]] = {}
        self.charges: dict[str, Charge] = {}
        self.sends: dict[str, Send] = {}
        self.refunds: dict[str, Refund] = {}
        #: What a new send or refund is, as first answered.
        self.send_status = SendStatus.SUCCEEDED
        self.refund_status = RefundStatus.SUCCEEDED

    def script(self, method: str, *faults: Fault | None) -> None:
        """The next calls of ``method`` fail so, one fault per call (None: that call works);
        later calls work."""
        self.faults.setdefault(method, []).extend(faults)

    def count(self, method: str) -> int:
        return self.calls.count(method)

    async def _call(self, method: str, act: Callable[[], T]) -> T:
        self.calls.append(method)
        hook = self.during.pop(method, None)
        if hook is not None:
            await hook()
        queue = self.faults.get(method)
        fault = queue.pop(0) if queue else None
        if fault is not None and not fault.acted:
            raise self._error(fault, method)
        result = act()
        if fault is not None:
            raise self._error(fault, method)
        return result

    def _error(self, fault: Fault, method: str) -> GatewayError:
        return fault.kind(
            f"{self.name} {method}: {fault.code}",
            gateway=self.name,
            operation=method,
            code=fault.code,
            retry_after=fault.retry_after,
        )

    def _missing(self, method: str, what: str) -> GatewayNotFound:
        return GatewayNotFound(
            f"{self.name} has no {what}", gateway=self.name, operation=method, code="not_found"
        )

    # --- charges -------------------------------------------------------------------------------

    async def create_charge(self, request: ChargeRequest) -> Charge:
        def act() -> Charge:
            charge_id = f"ch_{request.reference}"
            if charge_id not in self.charges:
                self.charges[charge_id] = Charge(
                    gateway=self.name,
                    charge_id=charge_id,
                    reference=request.reference,
                    status=ChargeStatus.ACTIVE,
                    provider_status="ACTIVE",
                    amount=request.amount,
                    brcode=f"000201{request.reference}",
                    qr_png_base64=None,
                    created_at=self.now(),
                    expires_at=self.now() + timedelta(seconds=request.expires_in),
                    txid=request.reference.replace("_", ""),
                )
            return self.charges[charge_id]

        return await self._call("create_charge", act)

    def _charge(self, method: str, charge_id: str) -> Charge:
        if charge_id not in self.charges:
            raise self._missing(method, f"charge {charge_id}")
        return self.charges[charge_id]

    async def get_charge(self, charge_id: str) -> Charge:
        return await self._call("get_charge", lambda: self._charge("get_charge", charge_id))

    async def cancel_charge(self, charge_id: str) -> Charge:
        def act() -> Charge:
            charge = self._charge("cancel_charge", charge_id)
            if charge.status is ChargeStatus.PAID:
                raise GatewayRejected(
                    "paid", gateway=self.name, operation="cancel_charge", code="conflict"
                )
            cancelled = replace(charge, status=ChargeStatus.CANCELLED, provider_status="CANCELLED")
            self.charges[charge_id] = cancelled
            return cancelled

        return await self._call("cancel_charge", act)

    def pay(self, charge_id: str, amount: int | None = None) -> None:
        """The payer pays the charge (the whole amount unless said)."""
        charge = self.charges[charge_id]
        self.charges[charge_id] = replace(
            charge,
            status=ChargeStatus.PAID,
            provider_status="PAID",
            paid_amount=charge.amount if amount is None else amount,
            paid_at=self.now(),
            end_to_end_id=f"E{self.name[:4]}{charge_id[-26:]}",
        )

    # --- sends ---------------------------------------------------------------------------------

    async def send_pix(self, request: SendRequest) -> Send:
        def act() -> Send:
            if request.reference not in self.sends:
                self.sends[request.reference] = Send(
                    gateway=self.name,
                    send_id=f"snd_{request.reference}",
                    reference=request.reference,
                    status=self.send_status,
                    provider_status=self.send_status.value.upper(),
                    amount=request.amount,
                    end_to_end_id=f"E{self.name[:4]}{request.reference[-26:]}",
                    failure_code="AC03" if self.send_status is SendStatus.FAILED else None,
                )
            return self.sends[request.reference]

        return await self._call("send_pix", act)

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        def act() -> Send:
            if reference not in self.sends:
                raise self._missing("get_send", f"send {reference}")
            return self.sends[reference]

        return await self._call("get_send", act)

    def settle_send(self, reference: str, status: SendStatus) -> None:
        failure = "AC03" if status is SendStatus.FAILED else None
        self.sends[reference] = replace(self.sends[reference], status=status, failure_code=failure)

    # --- refunds -------------------------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> Refund:
        def act() -> Refund:
            if request.reference not in self.refunds:
                self.refunds[request.reference] = Refund(
                    gateway=self.name,
                    refund_id=f"rf_{request.reference}",
                    reference=request.reference,
                    status=self.refund_status,
                    provider_status=self.refund_status.value.upper(),
                    amount=request.amount,
                    return_id=f"D{self.name[:4]}{request.reference[-26:]}",
                )
            return self.refunds[request.reference]

        return await self._call("refund", act)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        def act() -> Refund:
            if reference not in self.refunds:
                raise self._missing("get_refund", f"refund {reference}")
            return self.refunds[reference]

        return await self._call("get_refund", act)

    def settle_refund(self, reference: str, status: RefundStatus) -> None:
        self.refunds[reference] = replace(self.refunds[reference], status=status)

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        raise AssertionError("the engine never verifies webhooks")

    async def aclose(self) -> None:
        return None


class EngineBench:
    """The payments engine over a test database, with :class:`FakeProvider` gateways,
    in-memory health and leases and a :class:`FakeTime`: a payment decided in milliseconds.

    Payments are accepted through the same code as the API (``payments.flows``); the jobs
    that would follow are only noted in ``kicked`` — the test runs :meth:`advance` itself.
    """

    def __init__(
        self,
        resources: Resources,
        *gateways: str,
        settings: EngineSettings | None = None,
        health: HealthConfig | None = None,
        fees: Mapping[str, str] | None = None,
    ) -> None:
        self.resources = resources
        self.time = FakeTime()
        self.providers = {name: FakeProvider(name, self.time.now) for name in gateways}
        self.health = MemoryHealthStore(health, gateways=gateways, now=self.time.seconds)
        self.router = Router(
            dict(self.providers),
            self.health,
            fees={name: FeeSchedule.parse(text) for name, text in (fees or {}).items()},
        )
        self.leases = MemoryLeases(self.time.seconds)
        self.settings = settings or EngineSettings.from_settings(Settings(_env_file=None))
        self.engine = Engine(
            sessionmaker=resources.sessionmaker,
            gateways=self.providers,
            router=self.router,
            leases=self.leases,
            settings=self.settings,
            clock=self.time.now,
            monotonic=self.time.seconds,
            sleep=self.time.sleep,
            rng=random.Random(20261126),
        )
        self.kicked: list[str] = []
        resources.jobs = JobQueue(self._kick)

    async def _kick(self, name: str, argument: str) -> None:
        self.kicked.append(argument)

    def __getitem__(self, gateway: str) -> FakeProvider:
        return self.providers[gateway]

    # --- accepting payments, as the API does -----------------------------------------------

    async def actor(self, balance: int = 0) -> Actor:
        return await create_actor(self.resources, balance=balance)

    async def withdraw(self, actor: Actor, amount: int, pix_key: str = "pix@bcb.gov.br") -> str:
        data = WithdrawalCreate(amount=amount, pix_key=pix_key)
        async with self.resources.sessionmaker() as session:
            created = await flows.create_withdrawal(session, self.resources, actor.principal, data)
            await flush_and_commit(session)
        return created.id

    async def deposit(self, actor: Actor, amount: int) -> str:
        data = DepositCreate(amount=amount)
        async with self.resources.sessionmaker() as session:
            created = await flows.create_deposit(session, self.resources, actor.principal, data)
            await flush_and_commit(session)
        return created.id

    async def received(self, actor: Actor, amount: int) -> str:
        """A deposit paid and credited, through the engine."""
        deposit_id = await self.deposit(actor, amount)
        await self.advance(deposit_id)
        row = await self.row(deposit_id)
        if row["gateway"] is None or row["gateway_payment_id"] is None:
            raise AssertionError(f"no charge was created: {row}")
        self.providers[row["gateway"]].pay(row["gateway_payment_id"])
        await self.advance(deposit_id)
        if (await self.row(deposit_id))["status"] != "succeeded":
            raise AssertionError("the paid deposit was not credited")
        return deposit_id

    async def refund(self, actor: Actor, deposit_id: str, amount: int | None = None) -> str:
        data = RefundCreate(amount=amount)
        async with self.resources.sessionmaker() as session:
            created = await flows.create_refund(
                session, self.resources, actor.principal, deposit_id, data
            )
            await flush_and_commit(session)
        return created.id

    # --- running and looking ---------------------------------------------------------------

    async def advance(self, transaction_id: str, *, poke: bool = False) -> TransactionRow:
        """One ``payments.advance`` job; the row as it left it."""
        await self.engine.advance(transaction_id, poke=poke)
        return await self.row(transaction_id)

    async def row(self, transaction_id: str) -> TransactionRow:
        async with self.resources.sessionmaker() as session:
            row = await repository.get(session, transaction_id)
        if row is None:
            raise AssertionError(f"no transaction {transaction_id}")
        return row

    async def attempts(self, transaction_id: str) -> list[tuple[str, str, int, str]]:
        """(gateway, operation, try number, outcome) of every call, in order."""
        async with self.resources.sessionmaker() as session:
            rows = await repository.list_attempts(session, transaction_id)
        return [(a["gateway"], a["operation"], a["try_number"], a["outcome"]) for a in rows]

    async def fees(self, transaction_id: str) -> list[tuple[str, str, int | None]]:
        """(gateway, operation, expected fee) of every call, in order."""
        async with self.resources.sessionmaker() as session:
            rows = await repository.list_attempts(session, transaction_id)
        return [(a["gateway"], a["operation"], a["expected_fee"]) for a in rows]

    async def alerts(self, transaction_id: str) -> list[str]:
        async with self.resources.sessionmaker() as session:
            rows = await session.scalars(
                select(OutboxEvent.event_type).where(
                    OutboxEvent.aggregate_id == transaction_id,
                    OutboxEvent.event_type.like("alert.%"),
                )
            )
            return list(rows)

    async def balance(self, actor: Actor) -> tuple[int, int]:
        """(posted, held) of the actor's wallet."""
        async with self.resources.sessionmaker() as session:
            balance = await ledger.get_balance(session, actor.wallet_id)
        return balance.posted, balance.held
