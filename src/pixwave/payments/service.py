"""The transaction record: creation, the guarded status transition, and reads.

`transition` is the only way a status changes: it checks the table in `status.py`, updates with
a compare-and-set on the current status, and appends the domain event to the outbox in the same
database transaction, so the history of events and the row can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import Principal
from pixwave.db import utcnow
from pixwave.exceptions import NotFound
from pixwave.kit.ids import new_id
from pixwave.kit.pagination import check_cursor
from pixwave.notifications import outbox
from pixwave.observability.metrics import count_transition
from pixwave.payments import repository
from pixwave.payments.schemas import TransactionRead
from pixwave.payments.status import (
    StatusMoved,
    TransactionStatus,
    TransactionType,
    check_transition,
)


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    title = "No such transaction"


def _event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "amount": row["amount"],
        "currency": row["currency"],
        "wallet_id": row["wallet_id"],
        "gateway": row.get("gateway"),
        "failure_code": row.get("failure_code"),
    }


async def create(
    session: AsyncSession,
    *,
    type_: TransactionType,
    status: TransactionStatus,
    amount: int,
    user_id: str,
    wallet_id: str,
    actor: str | None = None,
    **fields: Any,
) -> TransactionRead:
    """Insert a transaction row and announce it (`transaction.<status>`) in the outbox.

    `actor` (who did it, when not the wallet's owner: an operator) goes into the event only.
    """
    now = utcnow()
    row: dict[str, Any] = {
        "id": fields.pop("id", None) or new_id("txn"),
        "type": type_,
        "status": status,
        "amount": amount,
        "currency": "BRL",
        "user_id": user_id,
        "wallet_id": wallet_id,
        "refunded_amount": 0,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    repository.insert_transaction(session, row)
    count_transition(session, type_, status, row.get("gateway"))
    await outbox.append(
        session,
        event_type=f"transaction.{status.value}",
        aggregate_type="transaction",
        aggregate_id=row["id"],
        payload={**_event_payload(row), "actor": actor or user_id},
    )
    return TransactionRead.model_validate(row)


async def transition(
    session: AsyncSession,
    transaction_id: str,
    target: TransactionStatus,
    *,
    seen: repository.TransactionRow | None = None,
    **fields: Any,
) -> TransactionRead:
    """Move a transaction to `target`, or raise having written nothing: `IllegalTransition`
    when the status table forbids it, `StatusMoved` when the status changed meanwhile.

    ``seen`` is the row as the caller last read it (the payments engine has just done so).
    Then nothing is read here: the compare-and-set on the status the caller saw is queued with
    the unit of work's other writes, and a status that moved meanwhile raises `StatusMoved`
    when they are sent, before COMMIT — one round trip instead of a locking read and an update.
    The event carries ``seen`` and ``fields``, so a field that can change without a status
    change (the gateway of a send) must be passed in ``fields``.
    """
    found = seen
    if found is None:
        found = await repository.get(session, transaction_id, for_update=True)
    if found is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    row: dict[str, Any] = dict(found)
    current = TransactionStatus(row["status"])
    check_transition(current, target)
    values = {**fields, "status": target, "updated_at": utcnow()}
    moved = StatusMoved(f"transaction {transaction_id} changed status concurrently")
    if seen is not None:
        repository.queue_status_update(
            session, transaction_id, current=current, values=values, on_miss=lambda: moved
        )
    elif not await repository.update_status(
        session, transaction_id, current=current, values=values
    ):
        raise moved
    row.update(values)
    count_transition(session, row["type"], target, row.get("gateway"))
    await outbox.append(
        session,
        event_type=f"transaction.{target.value}",
        aggregate_type="transaction",
        aggregate_id=transaction_id,
        payload={**_event_payload(row), "previous_status": current.value},
    )
    return TransactionRead.model_validate(row)


def _visible(principal: Principal, row: repository.TransactionRow) -> bool:
    if principal.is_admin:
        return True
    mine = principal.wallet_id
    return mine is not None and mine in (row["wallet_id"], row["counterparty_wallet_id"])


async def get_for(
    session: AsyncSession, principal: Principal, transaction_id: str
) -> TransactionRead:
    """A transaction the caller may see; another user's answers 404 exactly like a missing one."""
    row = await repository.get(session, transaction_id)
    if row is None or not _visible(principal, row):
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    return TransactionRead.model_validate(row)


async def list_for(
    session: AsyncSession,
    principal: Principal,
    *,
    wallet_id: str | None,
    type_: TransactionType | None,
    status: TransactionStatus | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    starting_after: str | None,
    limit: int,
) -> list[TransactionRead]:
    """Newest first; a user sees its own wallet's, an admin any wallet's (or all)."""
    if not principal.is_admin:
        wallet_id = principal.require_wallet()
    if starting_after is not None:
        found = await repository.in_list(session, starting_after, wallet_id=wallet_id)
        check_cursor(found, starting_after)
    rows = await repository.list_transactions(
        session,
        wallet_id=wallet_id,
        type_=type_,
        status=status,
        created_gte=created_gte,
        created_lt=created_lt,
        starting_after=starting_after,
        limit=limit,
    )
    return [TransactionRead.model_validate(r) for r in rows]
