"""The inbox job: matching a notification to its payment, retrying, giving up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from pixwave.db import table, utcnow
from pixwave.gateways.base import TRUSTED_PAYMENT
from pixwave.gateways.efi.spec import EFI
from pixwave.inbox import repository
from pixwave.inbox.repository import TABLE as INBOX
from pixwave.inbox.service import HANDLE
from pixwave.inbox.tasks import (
    ABANDONED_ALERT,
    GIVE_UP_AFTER,
    abandon_overdue,
    drain,
    handle,
    notified,
    retry_once,
)
from pixwave.kit.ids import new_id
from pixwave.notifications.models import OutboxEvent
from pixwave.payments import flows
from pixwave.payments.engine.batch import Notified
from pixwave.payments.models import Transaction
from pixwave.payments.schemas import WithdrawalCreate
from pixwave.resources import Resources
from pixwave.worker.jobs import JobQueue
from tests.factories import Actor, create_actor

OUTBOX = table(OutboxEvent)
PAYMENTS = table(Transaction)


class TestReferenceMapping:
    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            ("txn01JD3Q2ZV8K9M4N6P7R8S9T0VW", "txn_01JD3Q2ZV8K9M4N6P7R8S9T0VW"),
            ("txn_01JD3Q2ZV8K9M4N6P7R8S9T0VW", None),
            ("191606489519", None),
            ("E09089356202611260000abcdefghij", None),
        ],
    )
    def test_efi_ids_lead_back_to_the_transaction(
        self, reference: str, expected: str | None
    ) -> None:
        """idEnvio / devolução ids we derived from `txn_…` map back; anything else does not."""
        assert EFI.transaction_id(reference) == expected


async def event_for(
    resources: Resources,
    gateway: str,
    transaction_id: str,
    *,
    kind: str = "send",
    data: dict[str, str] | None = None,
) -> str:
    row_id = new_id("inb")
    async with resources.sessionmaker() as session:
        assert await repository.store(
            session,
            {
                "id": row_id,
                "gateway": gateway,
                "event_id": f"E{row_id}",
                "kind": kind,
                "resource_id": transaction_id.replace("_", ""),
                "data": data or {},
                "received_at": utcnow(),
            },
        )
        await session.commit()
    return row_id


async def withdrawal_at(resources: Resources, actor: Actor, gateway: str) -> str:
    """A withdrawal the engine sent through ``gateway`` (as far as its row says)."""
    async with resources.sessionmaker() as session:
        created = await flows.create_withdrawal(
            session,
            resources,
            actor.principal,
            WithdrawalCreate(amount=1_00, pix_key="pix@bcb.gov.br"),
        )
        await session.execute(
            update(PAYMENTS).where(PAYMENTS.c.id == created.id).values(gateway=gateway)
        )
        await session.commit()
    return created.id


class RecordingEngine:
    """The engine as the inbox sees it: records what it is asked, fails the ``failing``."""

    def __init__(self, failing: Mapping[str, BaseException] | None = None) -> None:
        self.failing = failing or {}
        self.advanced: list[str] = []
        self.batches: list[list[str]] = []
        self.notified: list[Any] = []

    async def advance(self, transaction_id: str, *, poke: bool = False) -> None:
        self.advanced.append(transaction_id)

    async def advance_many(
        self, transaction_ids: list[str], *, poke: bool = False, notified: Any = None
    ) -> dict[str, BaseException | None]:
        self.advanced.extend(transaction_ids)
        self.batches.append(list(transaction_ids))
        self.notified.append(notified)
        return {t: self.failing.get(t) for t in transaction_ids}


class TestMatching:
    """A notification whose resource id spells a transaction id pokes that payment only when
    the payment is the notifying gateway's: one gateway's notification never pokes another's."""

    @pytest.mark.parametrize("batched", [True, False], ids=["batched", "alone"])
    @pytest.mark.parametrize(("owner", "poked"), [("efi", True), ("mercadopago", False)])
    async def test_only_the_payments_own_gateway_pokes_it(
        self,
        any_resources: Resources,
        monkeypatch: pytest.MonkeyPatch,
        owner: str,
        poked: bool,
        batched: bool,
    ) -> None:
        actor = await create_actor(any_resources, balance=10_00)
        created_id = await withdrawal_at(any_resources, actor, owner)
        engine = RecordingEngine()
        monkeypatch.setattr(any_resources, "payments", engine)
        if not batched:
            monkeypatch.setattr(any_resources, "inbox_batch", None)
        assert (any_resources.inbox_batch is not None) is batched
        monkeypatch.setattr(any_resources, "specs", {"efi": EFI})
        await handle(any_resources, await event_for(any_resources, "efi", created_id))
        assert engine.advanced == ([created_id] if poked else [])


class TestDrain:
    """`drain`: the events a worker holds handled together; an event is marked handled only
    when its payment's look succeeded."""

    async def test_an_event_whose_payment_failed_stays_unhandled(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        actor = await create_actor(any_resources, balance=10_00)
        payments = [await withdrawal_at(any_resources, actor, "efi") for _ in range(3)]
        events = [await event_for(any_resources, "efi", p) for p in payments]
        events.append(events[0])  # the same event twice in one batch
        broken = RuntimeError("the database blinked")
        engine = RecordingEngine({payments[1]: broken})
        monkeypatch.setattr(any_resources, "payments", engine)
        monkeypatch.setattr(any_resources, "specs", {"efi": EFI})
        outcomes = await drain(any_resources, [*events, "evt_unknown"])

        assert outcomes == [None, broken, None, None, None]
        assert [sorted(batch) for batch in engine.batches] == [sorted(payments)]
        async with any_resources.sessionmaker() as session:
            handled = dict((await session.execute(select(INBOX.c.id, INBOX.c.processed_at))).all())
        assert [handled[e] is not None for e in events[:3]] == [True, False, True]


class TestDrainTrusted:
    async def test_a_trusted_event_hands_its_payment_to_the_engine(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The engine is told what the trusted notification said; an untrusted one is not."""
        actor = await create_actor(any_resources, balance=10_00)
        trusted, plain = [await withdrawal_at(any_resources, actor, "efi") for _ in range(2)]
        said = {"amount": "100", "end_to_end_id": "E1", TRUSTED_PAYMENT: "mtls"}
        events = [
            await event_for(any_resources, "efi", trusted, kind="charge", data=said),
            await event_for(any_resources, "efi", plain, kind="charge", data={"amount": "100"}),
        ]
        engine = RecordingEngine()
        monkeypatch.setattr(any_resources, "payments", engine)
        monkeypatch.setattr(any_resources, "specs", {"efi": EFI})
        await drain(any_resources, events)
        txid = trusted.replace("_", "")
        assert engine.notified == [{trusted: Notified(txid, 100, "E1")}]


class TestTrustedEvents:
    """Only a charge event the connector marked trusted is credited from what it says."""

    def event(self, kind: str, **data: str) -> dict[str, Any]:
        return {"kind": kind, "resource_id": "txid123", "data": data}

    def test_a_trusted_charge_event_states_the_payment(self) -> None:
        event = self.event("charge", amount="2500", end_to_end_id="E1", **{TRUSTED_PAYMENT: "mtls"})
        assert notified(event) == Notified("txid123", 2500, "E1")

    @pytest.mark.parametrize(
        "event",
        [
            {"kind": "charge", "resource_id": "t", "data": {"amount": "2500"}},
            {
                "kind": "refund",
                "resource_id": "t",
                "data": {"amount": "1", TRUSTED_PAYMENT: "mtls"},
            },
            {"kind": "charge", "resource_id": "t", "data": {TRUSTED_PAYMENT: "mtls"}},
            {"kind": "charge", "resource_id": "t", "data": {"amount": "x", TRUSTED_PAYMENT: "m"}},
            {"kind": "charge", "resource_id": "t", "data": None},
        ],
        ids=["untrusted", "not-a-charge", "no-amount", "bad-amount", "no-data"],
    )
    def test_anything_else_is_read_back(self, event: dict[str, Any]) -> None:
        assert notified(event) is None


class TestRetryAndAbandon:
    """`inbox.retry`: a stored notification whose job did not finish is handed to a job again;
    one unhandled for a day is left for a human with exactly one alert."""

    @pytest.fixture
    def kicked(self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        kicks: list[str] = []

        async def record(name: str, argument: str) -> None:
            assert name == HANDLE
            kicks.append(argument)

        monkeypatch.setattr(any_resources, "jobs", JobQueue(record))
        return kicks

    async def store(self, resources: Resources, age: timedelta, *, processed: bool = False) -> str:
        row_id = new_id("inb")
        received_at = utcnow() - age
        async with resources.sessionmaker() as session:
            assert await repository.store(
                session,
                {
                    "id": row_id,
                    "gateway": "efi",
                    "event_id": f"E{row_id}",
                    "kind": "pix",
                    "resource_id": f"E{row_id}"[:32],
                    "data": {"pix": []},
                    "received_at": received_at,
                    "processed_at": received_at if processed else None,
                },
            )
            await session.commit()
        return row_id

    async def alerts(self, resources: Resources) -> list[tuple[str, dict[str, Any]]]:
        async with resources.sessionmaker() as session:
            rows = await session.execute(
                select(OUTBOX.c.aggregate_id, OUTBOX.c.payload).where(
                    OUTBOX.c.event_type == ABANDONED_ALERT
                )
            )
            return [(str(row[0]), dict(row[1])) for row in rows]

    async def test_an_unfinished_event_is_handed_to_a_job_again(
        self, any_resources: Resources, kicked: list[str]
    ) -> None:
        waiting = await self.store(any_resources, timedelta(minutes=5))
        await self.store(any_resources, timedelta(minutes=5), processed=True)
        await self.store(any_resources, timedelta(seconds=0))  # its first job may still run
        assert await retry_once(any_resources) == 1
        assert kicked == [waiting]
        assert await self.alerts(any_resources) == []

    async def test_a_day_old_event_is_abandoned_once_with_an_alert(
        self, any_resources: Resources, kicked: list[str]
    ) -> None:
        stale = await self.store(any_resources, GIVE_UP_AFTER + timedelta(minutes=1))
        await self.store(any_resources, GIVE_UP_AFTER + timedelta(hours=2), processed=True)
        assert await retry_once(any_resources) == 0
        assert kicked == []
        alerts = await self.alerts(any_resources)
        assert [aggregate for aggregate, _ in alerts] == [stale]
        assert alerts[0][1]["gateway"] == "efi"
        assert alerts[0][1]["event_id"] == f"E{stale}"
        async with any_resources.sessionmaker() as session:
            abandoned_at = await session.scalar(
                select(INBOX.c.abandoned_at).where(INBOX.c.id == stale)
            )
        assert abandoned_at is not None
        # The next ticks neither retry it nor announce it again.
        assert await retry_once(any_resources) == 0
        assert await abandon_overdue(any_resources, utcnow()) == 0
        assert len(await self.alerts(any_resources)) == 1
        assert kicked == []
