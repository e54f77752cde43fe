"""The ledger under contention on MariaDB, many connections at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from pixwave.ledger import service as ledger
from pixwave.ledger.errors import InsufficientFunds
from pixwave.ledger.models import AccountKind
from pixwave.resources import Resources

CONNECTIONS = 50


@pytest.fixture
async def sessions(resources: Resources) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A pool of 50 real connections, so contention happens in the database, not in a queue."""
    engine = create_async_engine(
        resources.settings.sqlalchemy_url, pool_size=CONNECTIONS, max_overflow=0
    )
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def _funded_wallet(resources: Resources, balance: int) -> tuple[str, str]:
    async with resources.sessionmaker() as session, session.begin():
        wallet = await ledger.open_account(session, kind=AccountKind.WALLET)
        system = await ledger.system_account(session, "system:test")
        await ledger.post(
            session,
            kind="test_funding",
            entries=[ledger.Posting(wallet, balance), ledger.Posting(system, -balance)],
        )
    return wallet, system


async def _debit(session: AsyncSession, wallet: str, system: str) -> None:
    """R$ 1 from the wallet to the system account."""
    await ledger.post(
        session,
        kind="debit",
        entries=[ledger.Posting(wallet, -100), ledger.Posting(system, 100)],
    )


class TestConcurrentDebits:
    async def test_hundred_debits_never_overdraw(
        self, resources: Resources, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """100 simultaneous debits of R$ 1 against R$ 50 on 50 connections: exactly 50 land."""
        wallet, system = await _funded_wallet(resources, 5_000)
        start = asyncio.Event()

        async def debit() -> bool:
            await start.wait()
            async with sessions() as session:
                try:
                    async with session.begin():
                        await _debit(session, wallet, system)
                except InsufficientFunds:
                    return False
            return True

        tasks = [asyncio.create_task(debit()) for _ in range(100)]
        start.set()
        results = await asyncio.gather(*tasks)
        assert results.count(True) == 50
        async with resources.sessionmaker() as session:
            balance = await ledger.get_balance(session, wallet)
        assert balance.posted == 0

    async def test_holds_and_debits_together_never_overdraw(
        self, resources: Resources, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """Holds and debits racing for the same money never reserve more than exists."""
        wallet, system = await _funded_wallet(resources, 3_000)

        async def act(i: int) -> bool:
            async with sessions() as session:
                try:
                    async with session.begin():
                        if i % 2:
                            await ledger.create_hold(session, account_id=wallet, amount=100)
                        else:
                            await _debit(session, wallet, system)
                except InsufficientFunds:
                    return False
            return True

        results = await asyncio.gather(*(act(i) for i in range(80)))
        assert results.count(True) == 30
        async with resources.sessionmaker() as session:
            balance = await ledger.get_balance(session, wallet)
        assert balance.available == 0
        assert balance.posted - balance.held == 0


class TestOppositeTransfers:
    async def test_crossing_transfers_do_not_deadlock(
        self, resources: Resources, sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        """A→B and B→A at the same time all succeed: locks are always taken in id order."""
        a, _ = await _funded_wallet(resources, 10_000)
        b, _ = await _funded_wallet(resources, 10_000)

        async def move(source: str, target: str) -> None:
            session: AsyncSession
            async with sessions() as session, session.begin():
                await ledger.post(
                    session,
                    kind="transfer",
                    entries=[ledger.Posting(source, -10), ledger.Posting(target, 10)],
                )

        await asyncio.gather(*(move(a, b) if i % 2 else move(b, a) for i in range(100)))
        async with resources.sessionmaker() as session:
            assert (await ledger.get_balance(session, a)).posted == 10_000
            assert (await ledger.get_balance(session, b)).posted == 10_000
