"""Every query on the `transactions` table, and the typed rows they return.

The payments engine reads these rows key by key; as ``TypedDict``s, mypy checks every key it
reads (a misspelt ``row["gatway"]`` fails the type check, not a payment).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table
from pixwave.payments.models import GatewayAttempt, Transaction
from pixwave.payments.status import IN_FLIGHT
from pixwave.unit_of_work import defer

TABLE = table(Transaction)
C = TABLE.c
_READ_COLUMNS = [
    C.id, C.type, C.status, C.amount, C.currency, C.wallet_id, C.counterparty_wallet_id,
    C.parent_id, C.gateway, C.txid, C.end_to_end_id, C.gateway_payment_id, C.pix_key,
    C.description, C.failure_code, C.failure_message, C.refunded_amount,
    C.ledger_transaction_id, C.brcode, C.qr_png_base64, C.expires_at, C.created_at,
    C.updated_at,
]  # fmt: skip

#: A :class:`TransactionRow`: what lists show, and what the engine needs besides.
_ROW_COLUMNS = [*_READ_COLUMNS, C.user_id, C.hold_id, C.next_attempt_at]


class ListedTransaction(TypedDict):
    """A transaction as lists show it (:data:`_READ_COLUMNS`)."""

    id: str
    type: str
    status: str
    amount: int  # centavos
    currency: str
    wallet_id: str
    counterparty_wallet_id: str | None
    parent_id: str | None
    gateway: str | None
    txid: str | None
    end_to_end_id: str | None
    gateway_payment_id: str | None
    pix_key: str | None
    description: str | None
    failure_code: str | None
    failure_message: str | None
    refunded_amount: int  # centavos
    ledger_transaction_id: str | None
    brcode: str | None
    qr_png_base64: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TransactionRow(ListedTransaction):
    """One transaction read whole (:func:`get`): what the engine and the services work on."""

    user_id: str
    hold_id: str | None
    next_attempt_at: datetime | None


class AttemptRow(TypedDict):
    """A ``gateway_attempts`` row as written (and, for a send or refund, later answered)."""

    id: str
    transaction_id: str
    gateway: str
    operation: str
    try_number: int  # 0 for a query, then 1, 2 … per gateway and operation
    outcome: str  # an ``Outcome``; ``ambiguous`` until the answer of an announced call is in
    latency_ms: int
    error_code: str | None
    error_message: str | None
    expected_fee: int | None  # centavos, from the gateway's configured fees; None for reads
    created_at: datetime


class ListedAttempt(TypedDict):
    """An attempt as ``GET /v1/transactions/{id}`` shows it."""

    gateway: str
    operation: str
    try_number: int
    outcome: str
    latency_ms: int
    error_code: str | None
    error_message: str | None
    expected_fee: int | None
    created_at: datetime


ATTEMPTS = table(GatewayAttempt)
A = ATTEMPTS.c

_INSERT = insert(TABLE)
_INSERT_ATTEMPT = insert(ATTEMPTS)


def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> None:
    """Queued with the rest of the unit of work's writes (see `unit_of_work`)."""
    defer(session, _INSERT, values)


async def get(
    session: AsyncSession, transaction_id: str, *, for_update: bool = False
) -> TransactionRow | None:
    statement = select(*_ROW_COLUMNS).where(C.id == transaction_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else cast(TransactionRow, dict(row._mapping))


async def get_many(
    session: AsyncSession, transaction_ids: Sequence[str]
) -> dict[str, TransactionRow]:
    """:func:`get` for many, in one query; a missing id is simply absent."""
    rows = await session.execute(select(*_ROW_COLUMNS).where(C.id.in_(transaction_ids)))
    return {row.id: cast(TransactionRow, dict(row._mapping)) for row in rows}


async def update_status(
    session: AsyncSession, transaction_id: str, *, current: str, values: dict[str, Any]
) -> bool:
    """Compare-and-set on the status column; False if someone moved it first."""
    result = await session.execute(
        update(TABLE).where(C.id == transaction_id, C.status == current).values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


#: Compare-and-set updates by the set of columns they write (a handful of shapes in all), so
#: each stays one constant statement whose compiled form the unit of work caches.
_CAS_UPDATES: dict[tuple[str, ...], Any] = {}


def queue_status_update(
    session: AsyncSession,
    transaction_id: str,
    *,
    current: str,
    values: dict[str, Any],
    on_miss: Callable[[], Exception],
) -> None:
    """:func:`update_status`, queued with the unit of work's other writes: the row count is
    checked when they are sent, and ``on_miss()`` is raised (before COMMIT) if the status had
    already moved."""
    columns = tuple(sorted(values))
    statement = _CAS_UPDATES.get(columns)
    if statement is None:
        statement = _CAS_UPDATES.setdefault(
            columns,
            update(TABLE)
            .where(C.id == bindparam("cas_id"), C.status == bindparam("cas_current"))
            .values({c: bindparam(f"v_{c}", type_=C[c].type) for c in columns}),
        )
    defer(
        session,
        statement,
        {
            **{f"v_{c}": v for c, v in values.items()},
            "cas_id": transaction_id,
            "cas_current": current,
        },
        expect_rowcount=1,
        on_mismatch=lambda _connection: on_miss(),
    )


async def in_list(session: AsyncSession, transaction_id: str, *, wallet_id: str | None) -> bool:
    """Whether a transaction is one ``list_transactions`` can return for this wallet (any
    wallet when None), filters aside: what makes it a valid cursor."""
    statement = select(C.id).where(C.id == transaction_id)
    if wallet_id is not None:
        statement = statement.where(
            or_(C.wallet_id == wallet_id, C.counterparty_wallet_id == wallet_id)
        )
    return (await session.scalar(statement)) is not None


async def list_transactions(
    session: AsyncSession,
    *,
    wallet_id: str | None,
    type_: str | None,
    status: str | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    starting_after: str | None,
    limit: int,
) -> list[ListedTransaction]:
    statement = select(*_READ_COLUMNS).order_by(C.id.desc()).limit(limit)
    if wallet_id is not None:
        statement = statement.where(
            or_(C.wallet_id == wallet_id, C.counterparty_wallet_id == wallet_id)
        )
    if type_ is not None:
        statement = statement.where(C.type == type_)
    if status is not None:
        statement = statement.where(C.status == status)
    if created_gte is not None:
        statement = statement.where(C.created_at >= created_gte)
    if created_lt is not None:
        statement = statement.where(C.created_at < created_lt)
    if starting_after is not None:
        statement = statement.where(C.id < starting_after)
    return [cast(ListedTransaction, dict(r._mapping)) for r in await session.execute(statement)]


async def set_fields(
    session: AsyncSession, transaction_id: str, *, current: str, values: dict[str, Any]
) -> bool:
    """Update fields (never the status) while the status is still ``current``."""
    if "status" in values:  # statuses move through service.transition (event, table check)
        raise ValueError("set_fields never changes the status")
    return await update_status(session, transaction_id, current=current, values=values)


async def exists(session: AsyncSession, transaction_id: str, *, gateway: str | None = None) -> bool:
    """The transaction exists (and, with ``gateway``, is that gateway's)."""
    statement = select(C.id).where(C.id == transaction_id)
    if gateway is not None:
        statement = statement.where(C.gateway == gateway)
    return (await session.scalar(statement)) is not None


async def due(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Transactions whose next look is due, oldest first (the sweep's work)."""
    rows = await session.execute(
        select(C.id).where(C.next_attempt_at <= now).order_by(C.next_attempt_at).limit(limit)
    )
    return [str(r.id) for r in rows]


async def claim(session: AsyncSession, ids: list[str], now: datetime, until: datetime) -> None:
    """Push the next look of still-due rows to ``until`` so the next sweep skips them."""
    await session.execute(
        update(TABLE).where(C.id.in_(ids), C.next_attempt_at <= now).values(next_attempt_at=until)
    )


async def refunds_in_flight(session: AsyncSession, parent_id: str) -> int:
    """Centavos of the parent's refunds that are neither done nor failed."""
    total = await session.scalar(
        select(func.coalesce(func.sum(C.amount), 0)).where(
            C.parent_id == parent_id,
            C.status.in_(IN_FLIGHT),
        )
    )
    return int(total or 0)


def insert_attempt(session: AsyncSession, values: AttemptRow) -> None:
    defer(session, _INSERT_ATTEMPT, dict(values))


_ANSWER_ATTEMPT = (
    update(ATTEMPTS)
    .where(A.id == bindparam("attempt_id"))
    .values(
        outcome=bindparam("answered_outcome"),
        latency_ms=bindparam("answered_latency_ms"),
        error_code=bindparam("answered_error_code"),
        error_message=bindparam("answered_error_message"),
    )
)


def answer_attempt(session: AsyncSession, values: AttemptRow) -> None:
    """The answer of an attempt written before its call left (see `Run.announce`)."""
    defer(
        session,
        _ANSWER_ATTEMPT,
        {
            "attempt_id": values["id"],
            "answered_outcome": values["outcome"],
            "answered_latency_ms": values["latency_ms"],
            "answered_error_code": values["error_code"],
            "answered_error_message": values["error_message"],
        },
    )


async def attempts_by_operation(
    session: AsyncSession, transaction_id: str
) -> dict[str, dict[str, int]]:
    """How many calls of each operation went to each gateway for this transaction."""
    rows = await session.execute(
        select(A.operation, A.gateway, func.count())
        .where(A.transaction_id == transaction_id)
        .group_by(A.operation, A.gateway)
    )
    counts: dict[str, dict[str, int]] = {}
    for operation, gateway, count in rows:
        counts.setdefault(str(operation), {})[str(gateway)] = int(count)
    return counts


async def attempts_by_operation_many(
    session: AsyncSession, transaction_ids: Sequence[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """:func:`attempts_by_operation` for many, in one query; a transaction without attempts is
    absent."""
    rows = await session.execute(
        select(A.transaction_id, A.operation, A.gateway, func.count())
        .where(A.transaction_id.in_(transaction_ids))
        .group_by(A.transaction_id, A.operation, A.gateway)
    )
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for transaction_id, operation, gateway, count in rows:
        by_operation = counts.setdefault(str(transaction_id), {})
        by_operation.setdefault(str(operation), {})[str(gateway)] = int(count)
    return counts


async def list_attempts(session: AsyncSession, transaction_id: str) -> list[ListedAttempt]:
    rows = await session.execute(
        select(
            A.gateway, A.operation, A.try_number, A.outcome, A.latency_ms, A.error_code,
            A.error_message, A.expected_fee, A.created_at,
        )
        .where(A.transaction_id == transaction_id)
        .order_by(A.id)
    )  # fmt: skip
    return [cast(ListedAttempt, dict(r._mapping)) for r in rows]
