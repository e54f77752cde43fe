"""The ledger on both databases: balanced postings, guarded debits, two-phase holds."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.ledger import service as ledger
from pixwave.ledger.errors import (
    AccountNotFound,
    HoldAlreadyResolved,
    InsufficientFunds,
    UnbalancedPosting,
)
from pixwave.ledger.models import AccountKind, LedgerEntry, LedgerHold, LedgerTransaction
from pixwave.resources import Resources
from pixwave.unit_of_work import flush, flush_and_commit, mark, rewind


async def _wallet(session: AsyncSession, balance: int = 0) -> str:
    wallet = await ledger.open_account(session, kind=AccountKind.WALLET)
    if balance:
        source = await ledger.system_account(session, "system:test")
        await ledger.post(
            session,
            kind="test_funding",
            entries=[ledger.Posting(wallet, balance), ledger.Posting(source, -balance)],
        )
    return wallet


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestPost:
    async def test_moves_balances_of_both_accounts(self, session: AsyncSession) -> None:
        """A balanced posting debits one account and credits the other by the same amount."""
        a = await _wallet(session, 10_000)
        b = await _wallet(session)
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -2_550), ledger.Posting(b, 2_550)]
        )
        await session.commit()
        assert (await ledger.get_balance(session, a)).posted == 7_450
        assert (await ledger.get_balance(session, b)).posted == 2_550

    async def test_unbalanced_entries_write_nothing(self, session: AsyncSession) -> None:
        """Entries that do not sum to zero are refused before any row is written."""
        a = await _wallet(session, 1_000)
        b = await _wallet(session)
        await session.commit()
        before = await _count(session, LedgerEntry)
        with pytest.raises(UnbalancedPosting):
            await ledger.post(
                session, kind="bad", entries=[ledger.Posting(a, -100), ledger.Posting(b, 99)]
            )
        await session.rollback()
        assert await _count(session, LedgerEntry) == before
        assert (await ledger.get_balance(session, a)).posted == 1_000

    @pytest.mark.parametrize("amount", [0, 1.5, True])
    async def test_non_integer_or_zero_amounts_are_refused(
        self, session: AsyncSession, amount: object
    ) -> None:
        """Only non-zero int centavos are postable; floats and bools are programming errors."""
        a = await _wallet(session)
        b = await _wallet(session)
        with pytest.raises(UnbalancedPosting):
            await ledger.post(
                session,
                kind="bad",
                entries=[ledger.Posting(a, amount), ledger.Posting(b, -amount)],  # type: ignore[arg-type, operator]
            )
        await session.rollback()

    async def test_a_single_entry_is_refused(self, session: AsyncSession) -> None:
        """Double entry means at least two entries."""
        a = await _wallet(session)
        with pytest.raises(UnbalancedPosting):
            await ledger.post(session, kind="bad", entries=[ledger.Posting(a, 0)])
        await session.rollback()

    async def test_overdraft_is_refused(self, session: AsyncSession) -> None:
        """A wallet cannot pay more than its available balance; nothing moves."""
        a = await _wallet(session, 500)
        b = await _wallet(session)
        await session.commit()
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -501), ledger.Posting(b, 501)]
        )
        with pytest.raises(InsufficientFunds):
            await flush(session)  # writes are queued; a refusal surfaces when they are sent
        await session.rollback()
        assert (await ledger.get_balance(session, a)).posted == 500
        assert (await ledger.get_balance(session, b)).posted == 0

    async def test_system_accounts_may_go_negative(self, session: AsyncSession) -> None:
        """Clearing and adjustment accounts mirror outside money, so they can be negative."""
        system = await ledger.system_account(session, "clearing:test")
        wallet = await _wallet(session)
        await ledger.post(
            session,
            kind="cash_in",
            entries=[ledger.Posting(system, -1_000), ledger.Posting(wallet, 1_000)],
        )
        await session.commit()
        assert (await ledger.get_balance(session, system)).posted == -1_000

    async def test_unknown_account_is_reported(self, session: AsyncSession) -> None:
        """Posting to an account that does not exist fails as not found."""
        a = await _wallet(session, 100)
        await ledger.post(
            session,
            kind="transfer",
            entries=[ledger.Posting(a, -100), ledger.Posting("wal_missing", 100)],
        )
        with pytest.raises(AccountNotFound):
            await flush(session)
        await session.rollback()

    @pytest.mark.parametrize("missing", ["wal_0000000000000000000000000", "wal_zzzz"])
    async def test_a_missing_account_is_reported_before_missing_money(
        self, session: AsyncSession, missing: str
    ) -> None:
        """Overdrawn and missing at once: not found wins, whichever is locked first."""
        a = await _wallet(session, 100)
        await ledger.post(
            session,
            kind="transfer",
            entries=[ledger.Posting(a, -500), ledger.Posting(missing, 500)],
            wallets_only=True,
        )
        with pytest.raises(AccountNotFound):
            await flush(session)
        await session.rollback()

    async def test_system_account_is_opened_once(self, session: AsyncSession) -> None:
        """The same code always names the same system account."""
        first = await ledger.system_account(session, "system:once")
        second = await ledger.system_account(session, "system:once")
        assert first == second

    async def test_a_committed_id_is_remembered_a_rolled_back_one_is_not(
        self, any_resources: Resources
    ) -> None:
        """After a commit the id costs no query; an account opened in a transaction that rolled
        back was never there, so it is not remembered either."""
        statements: list[str] = []

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        sync_engine = any_resources.engine.sync_engine
        async with any_resources.sessionmaker() as session:
            ledger.forget_system_accounts()
            gone = await ledger.system_account(session, "clearing:rolled-back")
            await session.rollback()
        async with any_resources.sessionmaker() as session:
            opened = await ledger.system_account(session, "clearing:rolled-back")
            await flush_and_commit(session)
        assert opened != gone
        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            async with any_resources.sessionmaker() as session:
                assert await ledger.system_account(session, "clearing:rolled-back") == opened
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
        assert statements == []

    async def test_a_concurrent_opener_that_wins_is_re_read(self, resources: Resources) -> None:
        """Two credits through a new gateway open its account at once: the loser's snapshot,
        taken before the winner committed, must not hide the winner's row."""
        async with resources.sessionmaker() as loser, resources.sessionmaker() as winner:
            assert await loser.scalar(select(func.count()).select_from(LedgerHold)) == 0
            opened = await ledger.system_account(winner, "gateway:race")
            await winner.commit()
            assert await ledger.system_account(loser, "gateway:race") == opened
            await loser.commit()


class TestLockedPostings:
    """Postings of a group commit: guarded in memory against locked accounts."""

    async def test_guards_in_arrival_order_and_moves_net_balances_once(
        self, session: AsyncSession
    ) -> None:
        a = await _wallet(session, 1_000)
        b = await _wallet(session)
        await session.commit()
        locked = await ledger.lock_accounts(session, [b, a, a])
        for _ in range(2):
            await ledger.post(
                session,
                kind="transfer",
                entries=[ledger.Posting(a, -400), ledger.Posting(b, 400)],
                locked=locked,
            )
        with pytest.raises(InsufficientFunds):  # 200 left
            await ledger.post(
                session,
                kind="transfer",
                entries=[ledger.Posting(a, -400), ledger.Posting(b, 400)],
                locked=locked,
            )
        locked.finish(session)
        await flush_and_commit(session)
        assert (await ledger.get_balance(session, a)).posted == 200
        assert (await ledger.get_balance(session, b)).posted == 800
        assert await _count(session, LedgerTransaction) == 1 + 2  # the funding, two transfers

    async def test_a_missing_or_non_wallet_account_is_not_found_before_money(
        self, session: AsyncSession
    ) -> None:
        a = await _wallet(session)  # empty: the debit would also be refused
        system = await ledger.system_account(session, "system:test")
        await session.commit()
        locked = await ledger.lock_accounts(session, [a, system, "wal_absent"])
        for target in ("wal_absent", system):
            with pytest.raises(AccountNotFound):
                await ledger.post(
                    session,
                    kind="transfer",
                    entries=[ledger.Posting(a, -1), ledger.Posting(target, 1)],
                    wallets_only=True,
                    locked=locked,
                )

    async def test_rewind_gives_a_refused_payment_its_money_back(
        self, session: AsyncSession
    ) -> None:
        a = await _wallet(session, 500)
        b = await _wallet(session)
        await session.commit()
        locked = await ledger.lock_accounts(session, [a, b])
        at, queued = locked.mark(), mark(session)
        entries = [ledger.Posting(a, -500), ledger.Posting(b, 500)]
        await ledger.post(session, kind="transfer", entries=entries, locked=locked)
        locked.rewind(at)  # refused after its posting (as the group does): it never happened
        rewind(session, queued)
        # Only a full rewind leaves the 500 to spend again, and moves it once.
        await ledger.post(session, kind="transfer", entries=entries, locked=locked)
        locked.finish(session)
        await flush_and_commit(session)
        assert (await ledger.get_balance(session, a)).posted == 0
        assert (await ledger.get_balance(session, b)).posted == 500

    async def test_holds_are_judged_with_postings_and_rewound_alike(
        self, session: AsyncSession
    ) -> None:
        """A group's holds share the locked balance with its postings, in arrival order; a
        rewound hold frees its money; the net held and posted moves are written once."""
        a = await _wallet(session, 1_000)
        b = await _wallet(session)
        await session.commit()
        locked = await ledger.lock_accounts(session, [a, b])
        await ledger.create_hold(session, account_id=a, amount=300, locked=locked)
        at, queued = locked.mark(), mark(session)
        await ledger.create_hold(session, account_id=a, amount=500, locked=locked)
        entries = [ledger.Posting(a, -400), ledger.Posting(b, 400)]
        with pytest.raises(InsufficientFunds):  # 200 left
            await ledger.post(session, kind="transfer", entries=entries, locked=locked)
        locked.rewind(at)  # the 500 was refused after all: 700 are free again
        rewind(session, queued)
        await ledger.post(session, kind="transfer", entries=entries, locked=locked)
        with pytest.raises(InsufficientFunds):
            await ledger.create_hold(session, account_id=a, amount=301, locked=locked)
        with pytest.raises(AccountNotFound):
            await ledger.create_hold(session, account_id="wal_absent", amount=1, locked=locked)
        locked.finish(session)
        await flush_and_commit(session)
        balance = await ledger.get_balance(session, a)
        assert (balance.posted, balance.held, balance.available) == (600, 300, 300)
        assert await _count(session, LedgerHold) == 1


class TestHolds:
    async def test_hold_reduces_available_not_posted(self, session: AsyncSession) -> None:
        """A hold reserves money: available falls, posted stays."""
        a = await _wallet(session, 1_000)
        await ledger.create_hold(session, account_id=a, amount=300)
        await session.commit()
        balance = await ledger.get_balance(session, a)
        assert (balance.posted, balance.held, balance.available) == (1_000, 300, 700)

    async def test_hold_beyond_available_is_refused(self, session: AsyncSession) -> None:
        """Two holds cannot reserve more than the wallet has."""
        a = await _wallet(session, 1_000)
        await ledger.create_hold(session, account_id=a, amount=700)
        await ledger.create_hold(session, account_id=a, amount=301)
        with pytest.raises(InsufficientFunds):
            await flush(session)
        await session.rollback()

    async def test_posting_a_hold_moves_the_money_once(self, session: AsyncSession) -> None:
        """Post turns the reservation into a debit; a second post is refused."""
        a = await _wallet(session, 1_000)
        clearing = await ledger.system_account(session, "clearing:gw")
        hold = await ledger.create_hold(session, account_id=a, amount=400)
        await ledger.post_hold(session, hold_id=hold, to_account_id=clearing, kind="hold_post")
        await session.commit()
        balance = await ledger.get_balance(session, a)
        assert (balance.posted, balance.held) == (600, 0)
        with pytest.raises(HoldAlreadyResolved):
            await ledger.post_hold(session, hold_id=hold, to_account_id=clearing, kind="hold_post")
        await session.rollback()
        assert await _count(session, LedgerTransaction) == 2  # funding + one hold post

    async def test_voiding_a_hold_releases_it_once(self, session: AsyncSession) -> None:
        """Void gives the reservation back; neither void nor post can follow."""
        a = await _wallet(session, 1_000)
        hold = await ledger.create_hold(session, account_id=a, amount=400)
        await ledger.void_hold(session, hold_id=hold)
        await session.commit()
        assert (await ledger.get_balance(session, a)).available == 1_000
        with pytest.raises(HoldAlreadyResolved):
            await ledger.void_hold(session, hold_id=hold)
        await session.rollback()
        with pytest.raises(HoldAlreadyResolved):
            await ledger.post_hold(session, hold_id=hold, to_account_id=a, kind="hold_post")
        await session.rollback()
        statuses = (await session.execute(select(LedgerHold.status))).scalars().all()
        assert statuses == ["voided"]


class TestDeferredWrites:
    async def test_writes_wait_for_the_next_read(self, session: AsyncSession) -> None:
        """Queued writes are invisible to other connections until sent, then visible to reads."""
        a = await _wallet(session, 1_000)
        b = await _wallet(session)
        await session.commit()
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -10), ledger.Posting(b, 10)]
        )
        assert (await ledger.get_balance(session, a)).posted == 990  # the read flushed first
        await session.commit()

    async def test_refusal_rolls_back_every_queued_write(self, session: AsyncSession) -> None:
        """A guarded debit that misses takes the other queued writes down with it."""
        a = await _wallet(session, 100)
        b = await _wallet(session)
        await session.commit()
        before = await _count(session, LedgerEntry)
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -50), ledger.Posting(b, 50)]
        )
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -51), ledger.Posting(b, 51)]
        )
        with pytest.raises(InsufficientFunds):
            await session.commit()
        await session.rollback()
        assert await _count(session, LedgerEntry) == before
        assert (await ledger.get_balance(session, b)).posted == 0

    async def test_rollback_forgets_queued_writes(self, session: AsyncSession) -> None:
        """Nothing queued survives a rollback into the next transaction."""
        a = await _wallet(session, 100)
        b = await _wallet(session)
        await session.commit()
        await ledger.post(
            session, kind="transfer", entries=[ledger.Posting(a, -50), ledger.Posting(b, 50)]
        )
        await session.rollback()
        await session.commit()
        assert (await ledger.get_balance(session, a)).posted == 100


class TestAudit:
    @pytest.mark.corrupts_ledger
    async def test_audit_reports_a_tampered_balance(self, any_resources: Resources) -> None:
        """A stored balance that disagrees with its entries is named in the report."""
        from sqlalchemy import update

        from pixwave.ledger.audit import run_audit
        from pixwave.ledger.models import LedgerAccount

        async with any_resources.sessionmaker() as session:
            a = await _wallet(session, 1_000)
            await session.execute(
                update(LedgerAccount).where(LedgerAccount.id == a).values(posted=1_001)
            )
            await session.commit()
            report = await run_audit(session)
        assert not report.ok
        assert report.checks["posted_matches_entries"] == 1
        assert any(a in p and "posted=1001" in p for p in report.problems)

    @pytest.mark.corrupts_ledger
    async def test_audit_reports_an_unbalanced_transaction(self, any_resources: Resources) -> None:
        """An entry written behind the ledger's back breaks the zero sum and is reported."""
        from sqlalchemy import insert

        from pixwave.db import utcnow
        from pixwave.ledger.audit import run_audit

        async with any_resources.sessionmaker() as session:
            a = await _wallet(session, 1_000)
            ltx = (await session.execute(select(LedgerTransaction.id))).scalars().first()
            await session.execute(
                insert(LedgerEntry).values(
                    id="len_forged", ledger_transaction_id=ltx, account_id=a, amount=5,
                    created_at=utcnow(),
                )
            )  # fmt: skip
            await session.commit()
            report = await run_audit(session)
        assert report.checks["ledger_sums_to_zero"] == 1
        assert report.checks["transaction_balanced"] == 1
        assert report.checks["posted_matches_entries"] == 1

    async def test_audit_passes_on_a_healthy_ledger(self, any_resources: Resources) -> None:
        """After ordinary postings and holds every check passes."""
        from pixwave.ledger.audit import run_audit

        async with any_resources.sessionmaker() as session:
            a = await _wallet(session, 5_000)
            b = await _wallet(session)
            await ledger.post(
                session, kind="transfer", entries=[ledger.Posting(a, -1), ledger.Posting(b, 1)]
            )
            hold = await ledger.create_hold(session, account_id=a, amount=100)
            await ledger.post_hold(session, hold_id=hold, to_account_id=b, kind="hold_post")
            await ledger.create_hold(session, account_id=a, amount=50)
            await session.commit()
            report = await run_audit(session)
        assert report.ok, report.problems
        assert report.entries == 6


class TestDatabaseConstraints:
    async def test_database_refuses_an_overdrawn_wallet(self, any_resources: Resources) -> None:
        """Even an UPDATE that bypasses the ledger cannot push a wallet below zero."""
        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError, OperationalError

        from pixwave.ledger.models import LedgerAccount

        async with any_resources.sessionmaker() as session:
            wallet = await _wallet(session, 100)
            await session.commit()
            with pytest.raises((IntegrityError, OperationalError)):
                await session.execute(
                    update(LedgerAccount).where(LedgerAccount.id == wallet).values(posted=-1)
                )
            await session.rollback()
            assert (await ledger.get_balance(session, wallet)).posted == 100
