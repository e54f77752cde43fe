"""Wallet rules: who may see which wallet, transfers between wallets, operator adjustments."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import Principal
from pixwave.exceptions import BadRequest
from pixwave.kit.ids import new_id
from pixwave.kit.pagination import check_cursor
from pixwave.ledger import service as ledger
from pixwave.ledger.errors import AccountNotFound
from pixwave.limits.group import PayerGroup
from pixwave.limits.service import MoneyLimits
from pixwave.payments import service as transactions
from pixwave.payments.schemas import TransactionRead
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.wallet import repository
from pixwave.wallet.schemas import (
    AdjustmentCreate,
    AdjustmentDirection,
    StatementEntry,
    TransferCreate,
    WalletRead,
)

#: The system account adjustments are posted against: money the operator put in or took out.
ADJUSTMENTS_ACCOUNT = "system:adjustments"


class SameWallet(BadRequest):
    code = "same_wallet"
    title = "A transfer needs two different wallets"


def _readable_wallet_id(principal: Principal, wallet_id: str | None) -> str:
    """The caller's own wallet, or any wallet for an admin; others look like missing ones."""
    if wallet_id is None or wallet_id == principal.wallet_id:
        return principal.require_wallet()
    if principal.is_admin:
        return wallet_id
    raise AccountNotFound(f"wallet {wallet_id} does not exist")


async def get_wallet(
    session: AsyncSession, principal: Principal, wallet_id: str | None = None
) -> WalletRead:
    wallet_id = _readable_wallet_id(principal, wallet_id)
    row = await repository.get_wallet(session, wallet_id)
    if row is None:
        raise AccountNotFound(f"wallet {wallet_id} does not exist")
    return WalletRead(**row, available=row["posted"] - row["held"])


async def statement(
    session: AsyncSession,
    principal: Principal,
    *,
    wallet_id: str | None = None,
    starting_after: str | None,
    limit: int,
) -> list[StatementEntry]:
    wallet_id = _readable_wallet_id(principal, wallet_id)
    if await repository.get_wallet(session, wallet_id) is None:
        raise AccountNotFound(f"wallet {wallet_id} does not exist")
    if starting_after is not None:
        found = await repository.has_entry(session, wallet_id, starting_after)
        check_cursor(found, starting_after)
    rows = await repository.statement(
        session, wallet_id, starting_after=starting_after, limit=limit
    )
    return [StatementEntry(**row) for row in rows]


async def transfer(
    session: AsyncSession,
    limits: MoneyLimits,
    principal: Principal,
    data: TransferCreate,
    group: PayerGroup | None = None,
) -> TransactionRead:
    """Move money between two PixWave wallets, synchronously and atomically, within the
    payer's limits.

    With ``group``, this transfer is one of a group commit (`kit.groupcommit`): its limits and
    accounts are judged against the group's locked state, in memory.
    """
    source = principal.require_wallet()
    if data.to_wallet_id == source:
        raise SameWallet("the destination is the paying wallet")
    if group is None:
        judged_at = await limits.judge(session, principal, data.amount)
    else:
        judged_at = group.limits.judge(principal, data.amount)
    transaction_id = new_id("txn")
    ledger_transaction_id = await ledger.post(
        session,
        kind="transfer",
        entries=[
            ledger.Posting(source, -data.amount),
            ledger.Posting(data.to_wallet_id, data.amount),
        ],
        reference=transaction_id,
        description=data.description or "",
        wallets_only=True,  # the destination must be a wallet; checked by the update itself
        locked=None if group is None else group.accounts,
    )
    return await transactions.create(
        session,
        id=transaction_id,
        type_=TransactionType.TRANSFER,
        status=TransactionStatus.SUCCEEDED,
        amount=data.amount,
        user_id=principal.user_id,
        wallet_id=source,
        counterparty_wallet_id=data.to_wallet_id,
        description=data.description,
        ledger_transaction_id=ledger_transaction_id,
        created_at=judged_at,
    )


async def adjust(
    session: AsyncSession, principal: Principal, data: AdjustmentCreate
) -> TransactionRead:
    """An operator's credit or debit, balanced against the adjustments system account."""
    wallet = await repository.get_wallet(session, data.wallet_id)
    if wallet is None or wallet["user_id"] is None:
        raise AccountNotFound(f"wallet {data.wallet_id} does not exist")
    system = await ledger.system_account(session, ADJUSTMENTS_ACCOUNT)
    sign = 1 if data.direction is AdjustmentDirection.CREDIT else -1
    transaction_id = new_id("txn")
    ledger_transaction_id = await ledger.post(
        session,
        kind=f"adjustment_{data.direction.value}",
        entries=[
            ledger.Posting(data.wallet_id, sign * data.amount),
            ledger.Posting(system, -sign * data.amount),
        ],
        reference=transaction_id,
        description=data.reason,
    )
    return await transactions.create(
        session,
        id=transaction_id,
        type_=TransactionType.ADJUSTMENT,
        status=TransactionStatus.SUCCEEDED,
        amount=data.amount,
        user_id=wallet["user_id"],
        wallet_id=data.wallet_id,
        description=f"{data.direction.value}: {data.reason}"[:140],
        ledger_transaction_id=ledger_transaction_id,
        actor=principal.user_id,
    )
