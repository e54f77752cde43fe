"""Accepting deposits, withdrawals and refunds: validate, reserve, record — then a job works.

Each runs inside the request's unit of work (the idempotency runner commits once) and only
*records* the payment as `pending`; the engine does the gateway work after the commit.
Withdrawals and refunds reserve the money with a ledger hold right here, so the wallet can
never spend what is on its way out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import Principal
from pixwave.db import utcnow
from pixwave.exceptions import Conflict
from pixwave.kit.ids import new_id
from pixwave.ledger import service as ledger
from pixwave.limits.group import PayerGroup
from pixwave.payments import repository, service
from pixwave.payments.schemas import DepositCreate, RefundCreate, TransactionRead, WithdrawalCreate
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.payments.tasks import ADVANCE
from pixwave.worker.jobs import kick_after_commit

if TYPE_CHECKING:
    from pixwave.resources import Resources


class NotRefundable(Conflict):
    code = "not_refundable"
    title = "This transaction cannot be refunded"


class RefundTooLarge(Conflict):
    """A business rule that depends on the deposit's state (what earlier refunds left), not a
    malformed request: 409 like the other refusals of a refund, with ``remaining``."""

    code = "refund_exceeds_remaining"
    title = "The refund is larger than what remains to refund"
    example: ClassVar[dict[str, Any]] = {"remaining": 250}


class NoGatewayAvailable(Conflict):
    code = "no_gateway"
    title = "No gateway is configured for this operation"


async def _accept(session: AsyncSession, resources: Resources, **fields: Any) -> TransactionRead:
    """Record the payment as `pending` and have a job work it once this unit of work commits;
    if that job is lost, the sweep picks the payment up one lease later."""
    first_look = utcnow() + timedelta(seconds=resources.settings.payment_lease_seconds)
    created = await service.create(
        session, status=TransactionStatus.PENDING, next_attempt_at=first_look, **fields
    )
    kick_after_commit(session, resources.jobs, ADVANCE, created.id)
    return created


async def create_deposit(
    session: AsyncSession, resources: Resources, principal: Principal, data: DepositCreate
) -> TransactionRead:
    wallet_id = principal.require_wallet()
    expires_in = data.expires_in or resources.settings.deposit_expires_in
    return await _accept(
        session,
        resources,
        type_=TransactionType.CASH_IN,
        amount=data.amount,
        user_id=principal.user_id,
        wallet_id=wallet_id,
        description=data.description,
        expires_at=utcnow() + timedelta(seconds=expires_in),
    )


async def create_withdrawal(
    session: AsyncSession,
    resources: Resources,
    principal: Principal,
    data: WithdrawalCreate,
    group: PayerGroup | None = None,
) -> TransactionRead:
    """With ``group``, this withdrawal is one of a group commit (`kit.groupcommit`): its
    limits and its hold are judged against the group's locked state, in memory."""
    wallet_id = principal.require_wallet()
    if group is None:
        judged_at = await resources.limits.judge(session, principal, data.amount)
    else:
        judged_at = group.limits.judge(principal, data.amount)
    transaction_id = new_id("txn")
    hold_id = await ledger.create_hold(
        session,
        account_id=wallet_id,
        amount=data.amount,
        reference=transaction_id,
        locked=None if group is None else group.accounts,
    )
    return await _accept(
        session,
        resources,
        id=transaction_id,
        type_=TransactionType.CASH_OUT,
        amount=data.amount,
        user_id=principal.user_id,
        wallet_id=wallet_id,
        pix_key=data.pix_key,
        description=data.description,
        hold_id=hold_id,
        created_at=judged_at,
    )


async def create_refund(
    session: AsyncSession,
    resources: Resources,
    principal: Principal,
    parent_id: str,
    data: RefundCreate,
) -> TransactionRead:
    """Refund all or part of a received deposit, through the gateway that received it."""
    parent = await repository.get(session, parent_id, for_update=True)
    if parent is None or not (principal.is_admin or parent["wallet_id"] == principal.wallet_id):
        raise service.TransactionNotFound(f"transaction {parent_id} does not exist")
    if parent["type"] != TransactionType.CASH_IN or parent["status"] not in (
        TransactionStatus.SUCCEEDED,
        TransactionStatus.PARTIALLY_REFUNDED,
    ):
        raise NotRefundable(
            f"only a received deposit can be refunded; this is a {parent['status']} "
            f"{parent['type']}"
        )
    in_flight = await repository.refunds_in_flight(session, parent_id)
    remaining = int(parent["amount"]) - int(parent["refunded_amount"]) - in_flight
    amount = data.amount if data.amount is not None else remaining
    if remaining <= 0:
        raise NotRefundable("everything received has been refunded (or is being refunded)")
    if amount > remaining:
        raise RefundTooLarge(f"at most {remaining} centavos remain to refund", remaining=remaining)
    transaction_id = new_id("txn")
    hold_id = await ledger.create_hold(
        session, account_id=parent["wallet_id"], amount=amount, reference=transaction_id
    )
    return await _accept(
        session,
        resources,
        id=transaction_id,
        type_=TransactionType.REFUND,
        amount=amount,
        user_id=parent["user_id"],
        wallet_id=parent["wallet_id"],
        parent_id=parent_id,
        gateway=parent["gateway"],
        description=data.description,
        hold_id=hold_id,
        actor=principal.user_id,
    )
