"""Transitions on the database: allowed ones write the row and one outbox event; others nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pixwave.notifications.models import OutboxEvent
from pixwave.payments import repository
from pixwave.payments import service as transactions
from pixwave.payments.models import Transaction
from pixwave.payments.status import (
    IllegalTransition,
    StatusMoved,
    TransactionStatus,
    TransactionType,
)
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from tests.factories import create_user


async def _pending(resources: Resources) -> str:
    user = await create_user(resources)
    assert user.wallet_id is not None
    async with resources.sessionmaker() as session, session.begin():
        created = await transactions.create(
            session,
            type_=TransactionType.CASH_IN,
            status=TransactionStatus.PENDING,
            amount=1_000,
            user_id=user.id,
            wallet_id=user.wallet_id,
        )
    return created.id


async def _events(resources: Resources, transaction_id: str) -> list[str]:
    async with resources.sessionmaker() as session:
        rows = await session.execute(
            select(OutboxEvent.event_type)
            .where(OutboxEvent.aggregate_id == transaction_id)
            .order_by(OutboxEvent.id)
        )
        return list(rows.scalars())


class TestTransition:
    async def test_allowed_transition_updates_row_and_appends_event(
        self, any_resources: Resources
    ) -> None:
        """pending → awaiting_payment → succeeded: the row follows and each step is an event."""
        txn = await _pending(any_resources)
        async with any_resources.sessionmaker() as session, session.begin():
            await transactions.transition(
                session, txn, TransactionStatus.AWAITING_PAYMENT, gateway="efi", txid="a" * 26
            )
        async with any_resources.sessionmaker() as session, session.begin():
            done = await transactions.transition(session, txn, TransactionStatus.SUCCEEDED)
        assert done.status is TransactionStatus.SUCCEEDED
        assert done.gateway == "efi"
        assert await _events(any_resources, txn) == [
            "transaction.pending",
            "transaction.awaiting_payment",
            "transaction.succeeded",
        ]

    async def test_illegal_transition_raises_and_writes_nothing(
        self, any_resources: Resources
    ) -> None:
        """pending → refunded is refused; the row and the outbox are untouched."""
        txn = await _pending(any_resources)
        async with any_resources.sessionmaker() as session:
            with pytest.raises(IllegalTransition) as caught:
                async with session.begin():
                    await transactions.transition(
                        session, txn, TransactionStatus.REFUNDED, failure_code="nope"
                    )
        assert caught.value.code == "illegal_transition"
        async with any_resources.sessionmaker() as session:
            row = (
                await session.execute(select(Transaction).where(Transaction.id == txn))
            ).scalar_one()
        assert row.status == "pending"
        assert row.failure_code is None
        assert await _events(any_resources, txn) == ["transaction.pending"]

    async def test_terminal_status_is_final(self, any_resources: Resources) -> None:
        """A failed transaction cannot be revived by a late success."""
        txn = await _pending(any_resources)
        async with any_resources.sessionmaker() as session, session.begin():
            await transactions.transition(session, txn, TransactionStatus.FAILED, failure_code="x")
        async with any_resources.sessionmaker() as session:
            with pytest.raises(IllegalTransition):
                async with session.begin():
                    await transactions.transition(session, txn, TransactionStatus.SUCCEEDED)

    async def test_unknown_transaction_is_not_found(self, any_resources: Resources) -> None:
        """Transitions on a missing id fail cleanly."""
        async with any_resources.sessionmaker() as session:
            with pytest.raises(transactions.TransactionNotFound):
                await transactions.transition(session, "txn_missing", TransactionStatus.FAILED)


class TestTransitionFromWhatWasSeen:
    async def test_writes_like_the_locking_path(self, any_resources: Resources) -> None:
        """With the row the caller read, the move is queued with the other writes and lands the
        same: row fields, status and one event."""
        txn = await _pending(any_resources)
        async with any_resources.sessionmaker() as session:
            seen = await repository.get(session, txn)
        assert seen is not None
        async with any_resources.sessionmaker() as session:
            moved = await transactions.transition(
                session, txn, TransactionStatus.AWAITING_PAYMENT, seen=seen, gateway="efi"
            )
            await flush_and_commit(session)
        assert moved.status is TransactionStatus.AWAITING_PAYMENT
        async with any_resources.sessionmaker() as session:
            row = await repository.get(session, txn)
        assert row is not None
        assert (row["status"], row["gateway"]) == ("awaiting_payment", "efi")
        assert await _events(any_resources, txn) == [
            "transaction.pending",
            "transaction.awaiting_payment",
        ]

    async def test_a_status_that_moved_meanwhile_writes_nothing(
        self, any_resources: Resources
    ) -> None:
        """Someone moved the row after the caller read it: StatusMoved (a concurrency signal,
        not the HTTP IllegalTransition) before COMMIT, and
        none of the unit of work's writes (the event included) lands."""
        txn = await _pending(any_resources)
        async with any_resources.sessionmaker() as session:
            stale = await repository.get(session, txn)
        assert stale is not None
        async with any_resources.sessionmaker() as session, session.begin():
            await transactions.transition(session, txn, TransactionStatus.FAILED)
        async with any_resources.sessionmaker() as session:
            await transactions.transition(
                session, txn, TransactionStatus.AWAITING_PAYMENT, seen=stale, gateway="efi"
            )
            with pytest.raises(StatusMoved):
                await flush_and_commit(session)
            await session.rollback()
        async with any_resources.sessionmaker() as session:
            row = await repository.get(session, txn)
        assert row is not None
        assert (row["status"], row["gateway"]) == ("failed", None)
        assert await _events(any_resources, txn) == ["transaction.pending", "transaction.failed"]


async def test_set_fields_never_moves_the_status(any_resources: Resources) -> None:
    """Statuses move only through `transition` (table check and event): a field update that
    names the status is refused before anything is written — an explicit check, not an
    assert that `python -O` would drop."""
    txn = await _pending(any_resources)
    async with any_resources.sessionmaker() as session:
        with pytest.raises(ValueError, match="never changes the status"):
            await repository.set_fields(
                session, txn, current="pending", values={"status": "succeeded"}
            )
        await session.rollback()
    async with any_resources.sessionmaker() as session:
        row = await repository.get(session, txn)
    assert row is not None
    assert row["status"] == "pending"
