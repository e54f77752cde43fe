"""`Engine.advance_many`: many payments looked at together, the paid deposits credited in one
database transaction — on MariaDB and SQLite, over fake gateways and a clock moved by hand.

Each test checks what batching must never change (every payment treated by its own rules,
one credit per deposit, the ledger balanced — audited after each test) and what it does
change (one COMMIT for the credits).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from pymysql.err import OperationalError as MySQLOperationalError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.gateways.base import Charge
from pixwave.kit.ids import new_id
from pixwave.ledger import service as ledger
from pixwave.ledger.models import LedgerTransaction
from pixwave.notifications.models import OutboxEvent
from pixwave.payments import repository
from pixwave.payments.engine import batch, cash_in
from pixwave.payments.engine.batch import Notified
from pixwave.payments.engine.run import Run
from pixwave.payments.models import GatewayAttempt
from pixwave.payments.repository import TransactionRow
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from tests.factories import Actor
from tests.support import EngineBench, ambiguous, unavailable


@pytest.fixture
async def engine(any_resources: Resources) -> EngineBench:
    return EngineBench(any_resources, "primary", "secondary")


async def ready(engine: EngineBench, actor: Actor, amount: int) -> str:
    """A deposit whose charge awaits its payer."""
    deposit = await engine.deposit(actor, amount)
    row = await engine.advance(deposit)
    assert row["status"] == "awaiting_payment"
    return deposit


async def paid(engine: EngineBench, actor: Actor, amount: int) -> str:
    deposit = await ready(engine, actor, amount)
    row = await engine.row(deposit)
    assert row["gateway"] is not None
    assert row["gateway_payment_id"] is not None
    engine[row["gateway"]].pay(row["gateway_payment_id"])
    return deposit


async def clearing(engine: EngineBench, gateway: str) -> int:
    async with engine.resources.sessionmaker() as session:
        account = await ledger.system_account(session, f"gateway:{gateway}")
        return (await ledger.get_balance(session, account)).posted


async def count(engine: EngineBench, model: Any, *where: Any) -> int:
    async with engine.resources.sessionmaker() as session:
        found = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(found or 0)


class Commits:
    """Counts the batch's COMMITs and the credits each wrote."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commits = 0
        self.written: list[int] = []
        real_together = batch.credit_together

        async def commit(session: AsyncSession) -> None:
            self.commits += 1
            await flush_and_commit(session)

        async def together(use: Any, credits: Any) -> set[Run]:
            written = await real_together(use, credits)
            self.written.append(len(written))
            return written

        monkeypatch.setattr(batch, "flush_and_commit", commit)
        monkeypatch.setattr(batch, "credit_together", together)


class TestCredits:
    async def test_paid_deposits_are_credited_in_one_commit(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Six paid deposits — two wallets, two gateways — credited by one transaction per
        gateway: one ledger transaction and one `transaction.succeeded` event each, the attempt
        of each gateway read on record, each clearing account debited by its own gateway's
        sum."""
        alice, bob = await engine.actor(), await engine.actor()
        ids = [
            await paid(engine, alice, 10_00),
            await paid(engine, alice, 20_00),
            await paid(engine, bob, 30_00),
            await paid(engine, bob, 40_00),
        ]
        for amount in (2_00, 3_00):
            engine["primary"].script("create_charge", unavailable(), unavailable(), unavailable())
            elsewhere = await paid(engine, alice, amount)
            assert (await engine.row(elsewhere))["gateway"] == "secondary"
            ids.append(elsewhere)
        commits = Commits(monkeypatch)

        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert outcomes == dict.fromkeys(ids)
        assert sorted(commits.written) == [2, 4]
        assert commits.commits == 2
        for deposit in ids:
            row = await engine.row(deposit)
            assert row["status"] == "succeeded"
            assert row["ledger_transaction_id"] is not None
            assert row["next_attempt_at"] is None
            attempts = await engine.attempts(deposit)
            assert attempts[-1] == (row["gateway"], "query", 0, "succeeded")
            assert await count(engine, OutboxEvent, OutboxEvent.aggregate_id == deposit,
                               OutboxEvent.event_type == "transaction.succeeded") == 1  # fmt: skip
        assert await engine.balance(alice) == (35_00, 0)
        assert await engine.balance(bob) == (70_00, 0)
        assert await clearing(engine, "primary") == -100_00
        assert await clearing(engine, "secondary") == -5_00
        assert await count(engine, LedgerTransaction, LedgerTransaction.kind == "cash_in") == 6

    async def test_a_slow_gateway_delays_only_its_own_credits(self, engine: EngineBench) -> None:
        """The primary's read hangs until the secondary's deposit is credited and reported:
        each gateway's credits commit as soon as its own reads are in."""
        actor = await engine.actor()
        slow = await paid(engine, actor, 10_00)
        engine["primary"].script("create_charge", unavailable(), unavailable(), unavailable())
        fast = await paid(engine, actor, 20_00)
        assert (await engine.row(fast))["gateway"] == "secondary"
        fast_done = asyncio.Event()

        async def held_back() -> None:
            await fast_done.wait()

        engine["primary"].during["get_charge"] = held_back
        told: list[str] = []

        def settled(transaction_id: str, outcome: BaseException | None) -> None:
            told.append(transaction_id)
            if transaction_id == fast:
                fast_done.set()

        both = engine.engine.advance_many([slow, fast], settled=settled)
        await asyncio.wait_for(both, timeout=10)
        assert told == [fast, slow]
        assert await engine.balance(actor) == (30_00, 0)

    async def test_the_reads_count_for_the_gateways_health(self, engine: EngineBench) -> None:
        """A batch sends its reads' health samples together, once the reads are in: the router
        sees each of them, as if they had been recorded one by one."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00, 3_00)]
        before = (await engine.health.snapshot("primary", "query")).samples
        await engine.engine.advance_many(ids, poke=True)
        health = await engine.health.snapshot("primary", "query")
        assert health.samples == before + 3
        assert health.success_rate == 1.0

    async def test_looking_again_or_twice_in_one_batch_credits_once(
        self, engine: EngineBench
    ) -> None:
        actor = await engine.actor()
        first, second = await paid(engine, actor, 7_00), await paid(engine, actor, 8_00)
        outcomes = await engine.engine.advance_many([first, second, first, second], poke=True)
        assert outcomes == {first: None, second: None}
        await engine.engine.advance_many([first, second], poke=True)
        assert await engine.balance(actor) == (15_00, 0)
        assert await count(engine, LedgerTransaction, LedgerTransaction.kind == "cash_in") == 2


class TestEachByItsOwnRules:
    async def test_every_other_payment_goes_the_ordinary_way(self, engine: EngineBench) -> None:
        """Beside a paid deposit: an unpaid one is scheduled for its next look, a new one gets
        its charge, a withdrawal is sent, one owned by another runner is left a note and not
        touched, an unknown id is nothing."""
        actor = await engine.actor(balance=50_00)
        credited = await paid(engine, actor, 10_00)
        unpaid = await ready(engine, actor, 11_00)
        new = await engine.deposit(actor, 12_00)
        withdrawal = await engine.withdraw(actor, 13_00)
        owned = await paid(engine, actor, 14_00)
        token = await engine.leases.enter(owned, 60, note=False)
        assert token is not None
        reads_before = engine["primary"].count("get_charge")

        ids = [credited, unpaid, new, withdrawal, owned, "txn_unknown"]
        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert outcomes == dict.fromkeys(ids)
        assert (await engine.row(credited))["status"] == "succeeded"
        unpaid_row = await engine.row(unpaid)
        assert unpaid_row["status"] == "awaiting_payment"
        assert unpaid_row["next_attempt_at"] is not None
        assert unpaid_row["next_attempt_at"] > engine.time.now()
        assert (await engine.row(new))["status"] == "awaiting_payment"
        assert (await engine.row(withdrawal))["status"] == "succeeded"
        assert (await engine.row(owned))["status"] == "awaiting_payment"
        assert engine["primary"].count("get_charge") == reads_before + 2  # credited, unpaid
        assert await engine.leases.leave(owned, token)  # the note waits for its owner
        assert await engine.balance(actor) == (50_00 + 10_00 - 13_00, 0)

    async def test_the_tries_so_far_are_read_once_for_the_batch(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two new deposits, one with an earlier failed call at the gateway: each goes on from
        its own count (try 2, try 1), read for the whole batch in its one read, not each in a
        session of its own."""
        actor = await engine.actor()
        tried, fresh = await engine.deposit(actor, 10_00), await engine.deposit(actor, 11_00)
        async with engine.resources.sessionmaker() as session, session.begin():
            session.add(
                GatewayAttempt(
                    id=new_id("att"),
                    transaction_id=tried,
                    gateway="primary",
                    operation="charge",
                    try_number=1,
                    outcome="unavailable",
                    latency_ms=3,
                )
            )
        alone = 0
        real = repository.attempts_by_operation

        async def counted(session: AsyncSession, transaction_id: str) -> Any:
            nonlocal alone
            alone += 1
            return await real(session, transaction_id)

        monkeypatch.setattr(repository, "attempts_by_operation", counted)

        outcomes = await engine.engine.advance_many([tried, fresh], poke=True)

        assert outcomes == dict.fromkeys([tried, fresh])
        assert (await engine.attempts(tried))[-1] == ("primary", "charge", 2, "succeeded")
        assert await engine.attempts(fresh) == [("primary", "charge", 1, "succeeded")]
        assert alone == 0

    async def test_a_payment_done_is_told_before_a_slow_neighbour_ends(
        self, engine: EngineBench
    ) -> None:
        """A job ends with its own payment's look, not the batch's slowest: here the send of
        a withdrawal waits until the deposit beside it was reported done."""
        actor = await engine.actor(balance=50_00)
        deposit = await paid(engine, actor, 10_00)
        withdrawal = await engine.withdraw(actor, 5_00)
        deposit_told = asyncio.Event()

        async def held_back() -> None:
            await deposit_told.wait()

        engine["primary"].during["send_pix"] = held_back
        told: list[tuple[str, BaseException | None]] = []

        def settled(transaction_id: str, outcome: BaseException | None) -> None:
            told.append((transaction_id, outcome))
            if transaction_id == deposit:
                deposit_told.set()

        batch_done = engine.engine.advance_many([deposit, withdrawal], settled=settled)
        await asyncio.wait_for(batch_done, timeout=10)

        assert told == [(deposit, None), (withdrawal, None)]
        assert (await engine.row(withdrawal))["status"] == "succeeded"

    async def test_a_payment_that_raises_fails_alone(self, engine: EngineBench) -> None:
        """One gateway read raises something unexpected: that payment's outcome is the error
        (its job fails and is retried), its neighbours are credited."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00, 3_00)]
        raised: list[int] = []

        async def boom() -> None:
            if not raised:
                raised.append(1)
                raise RuntimeError("the connector broke")

        engine["primary"].during["get_charge"] = boom
        outcomes = await engine.engine.advance_many(ids, poke=True)

        failed = [i for i, outcome in outcomes.items() if outcome is not None]
        assert len(failed) == 1
        assert isinstance(outcomes[failed[0]], RuntimeError)
        statuses = {i: (await engine.row(i))["status"] for i in ids}
        assert statuses[failed[0]] == "awaiting_payment"
        assert sorted(s for i, s in statuses.items() if i != failed[0]) == ["succeeded"] * 2


class TestWhenRedisFails:
    async def test_leases_not_taken_fail_every_payment_and_move_nothing(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redis refuses the batch's leases: each payment's outcome is that error (its job is
        retried), and nothing was read, written or asked of a gateway."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00)]
        reads = engine["primary"].count("get_charge")

        async def refused(*_: Any, **__: Any) -> list[str | None]:
            raise ConnectionError("Redis is gone")

        monkeypatch.setattr(engine.leases, "enter_many", refused)
        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert all(isinstance(outcomes[i], ConnectionError) for i in ids)
        assert engine["primary"].count("get_charge") == reads
        assert [(await engine.row(i))["status"] for i in ids] == ["awaiting_payment"] * 2
        assert await engine.balance(actor) == (0, 0)

    async def test_leases_not_let_go_lose_no_credit(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redis fails as the batch lets go: the credits stand (the leases expire on their
        own), and no payment is reported failed."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00)]

        async def refused(*_: Any, **__: Any) -> list[bool]:
            raise ConnectionError("Redis is gone")

        monkeypatch.setattr(engine.leases, "leave_many", refused)
        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert outcomes == dict.fromkeys(ids)
        assert await engine.balance(actor) == (3_00, 0)


class TestWhenTheBatchCannotTakeACredit:
    async def test_a_batch_that_fails_as_a_whole_looks_at_each_payment_again(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The batch read one deposit before another runner credited it: its compare-and-set
        misses, the whole batch rolls back, and each payment is looked at again from a fresh
        read — the stale one is not credited twice, the others are credited once."""
        actor = await engine.actor()
        stale, *others = [await paid(engine, actor, amount) for amount in (4_00, 5_00, 6_00)]
        before = await engine.row(stale)
        await engine.advance(stale)  # credited by another runner, after the batch's read
        real_get_many = repository.get_many

        async def read_before(session: AsyncSession, ids: Any) -> Any:
            rows = await real_get_many(session, ids)
            rows[stale] = cast(TransactionRow, dict(before))
            return rows

        monkeypatch.setattr(repository, "get_many", read_before)
        fallbacks = batch._FALLBACKS._value.get()
        commits = Commits(monkeypatch)

        outcomes = await engine.engine.advance_many([stale, *others], poke=True)

        assert outcomes == dict.fromkeys([stale, *others])
        assert commits.written == []  # the batch raised: nothing of it was written
        assert batch._FALLBACKS._value.get() == fallbacks + 3
        assert [(await engine.row(i))["status"] for i in others] == ["succeeded"] * 2
        assert await engine.balance(actor) == (15_00, 0)
        assert await count(engine, LedgerTransaction, LedgerTransaction.kind == "cash_in") == 3

    async def test_a_commit_whose_answer_is_lost_credits_nothing_twice(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The batch's COMMIT lands but its answer is lost: the batch counts as failed, and each
        payment is looked at again from a fresh read — where each is found credited, so
        nothing is read from the gateway or written twice, and no job fails."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00, 3_00)]
        lost: list[bool] = []

        async def commit_then_lose_the_answer(session: AsyncSession) -> None:
            await flush_and_commit(session)
            if not lost:
                lost.append(True)
                raise OperationalError("COMMIT", {}, MySQLOperationalError(2013, "Lost"))

        monkeypatch.setattr(batch, "flush_and_commit", commit_then_lose_the_answer)
        fallbacks = batch._FALLBACKS._value.get()
        reads = engine["primary"].count("get_charge")

        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert lost == [True]
        assert engine["primary"].count("get_charge") == reads + 3  # the batch's reads only
        assert outcomes == dict.fromkeys(ids)
        assert batch._FALLBACKS._value.get() == fallbacks + 3
        assert [(await engine.row(i))["status"] for i in ids] == ["succeeded"] * 3
        assert await engine.balance(actor) == (6_00, 0)
        assert await count(engine, LedgerTransaction, LedgerTransaction.kind == "cash_in") == 3

    async def test_a_gateway_read_that_fails_leaves_that_deposit_for_its_next_look(
        self, engine: EngineBench
    ) -> None:
        """One read times out: that deposit keeps waiting, with its next look written and the
        failed read on record; the others are credited together."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00, 3_00)]
        engine["primary"].script("get_charge", ambiguous(acted=False))

        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert outcomes == dict.fromkeys(ids)
        rows = [await engine.row(i) for i in ids]
        waiting = [r for r in rows if r["status"] == "awaiting_payment"]
        assert len(waiting) == 1
        assert waiting[0]["next_attempt_at"] is not None
        assert waiting[0]["next_attempt_at"] > engine.time.now()
        assert ("primary", "query", 0, "ambiguous") in await engine.attempts(waiting[0]["id"])
        assert sorted(r["status"] for r in rows if r is not waiting[0]) == ["succeeded"] * 2
        assert await engine.balance(actor) == (6_00 - waiting[0]["amount"], 0)

    async def test_a_credit_left_out_is_written_alone_and_the_rest_commit(
        self, engine: EngineBench, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One credit cannot be decided in the batch: it is rewound (nothing of it is
        written there) and written alone after; the others commit together."""
        actor = await engine.actor()
        ids = [await paid(engine, actor, amount) for amount in (1_00, 2_00, 3_00)]
        left_out = ids[1]
        real = cash_in.crediting

        def crediting(
            run: Run, charge: Charge, locked: Any = None, source: str | None = None
        ) -> Callable[[AsyncSession], Awaitable[None]]:
            work = real(run, charge, locked, source)
            if locked is None or run.id != left_out:
                return work

            async def half_then_refuse(session: AsyncSession) -> None:
                await work(session)  # its posting and transition are queued …
                raise RuntimeError("… then refused")

            return half_then_refuse

        monkeypatch.setattr(cash_in, "crediting", crediting)
        commits = Commits(monkeypatch)

        outcomes = await engine.engine.advance_many(ids, poke=True)

        assert outcomes == dict.fromkeys(ids)
        assert commits.written == [2]
        assert [(await engine.row(i))["status"] for i in ids] == ["succeeded"] * 3
        assert await engine.balance(actor) == (6_00, 0)
        assert await count(engine, LedgerTransaction, LedgerTransaction.kind == "cash_in") == 3
        assert await clearing(engine, "primary") == -6_00


class TestTrustedNotifications:
    """``EFI_WEBHOOK_TRUST_MTLS``: a deposit a trusted notification says was paid is credited
    from it, without reading the charge back — when its txid and amount are the charge's."""

    async def test_a_matching_notification_is_credited_without_a_gateway_read(
        self, engine: EngineBench
    ) -> None:
        actor = await engine.actor()
        deposit = await ready(engine, actor, 25_00)
        row = await engine.row(deposit)
        assert row["txid"] is not None
        reads = engine["primary"].count("get_charge")
        told = Notified(row["txid"], 25_00, "E00000000202612061400abcdefghijk")

        outcomes = await engine.engine.advance_many([deposit], notified={deposit: told})

        assert outcomes == {deposit: None}
        done = await engine.row(deposit)
        assert done["status"] == "succeeded"
        assert done["end_to_end_id"] == "E00000000202612061400abcdefghijk"
        assert engine["primary"].count("get_charge") == reads
        assert await engine.balance(actor) == (25_00, 0)

    @pytest.mark.parametrize("wrong", ["amount", "txid", "end_to_end_id", "no_end_to_end_id"])
    async def test_a_notification_that_disagrees_is_read_back(
        self, engine: EngineBench, wrong: str
    ) -> None:
        """A notification naming another amount or txid than the charge's, or without a
        well-formed endToEndId (35 characters pass the lenient parser, 32 fit the column), is
        not believed: the charge is read from its gateway, and an unpaid one is not credited."""
        actor = await engine.actor()
        deposit = await ready(engine, actor, 25_00)
        row = await engine.row(deposit)
        assert row["txid"] is not None
        e2e = {"end_to_end_id": "E00000000202612061400abcdefghijk123", "no_end_to_end_id": None}
        told = Notified(
            "another-txid" if wrong == "txid" else row["txid"],
            99_00 if wrong == "amount" else 25_00,
            e2e.get(wrong, "E00000000202612061400abcdefghijk"),
        )
        reads = engine["primary"].count("get_charge")

        await engine.engine.advance_many([deposit], notified={deposit: told})

        assert engine["primary"].count("get_charge") == reads + 1
        assert (await engine.row(deposit))["status"] == "awaiting_payment"
        assert await engine.balance(actor) == (0, 0)
