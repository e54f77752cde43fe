"""Where a deposit is refunded: back through the gateway that received the money — there is no
other (see the table in ``payments/retry.py``) — then the hold posted and the deposit marked
(partially) refunded, or the hold released.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.gateways.base import PixGateway, Refund, RefundRequest, RefundStatus
from pixwave.gateways.health import Operation
from pixwave.payments import repository, service
from pixwave.payments.engine import endings
from pixwave.payments.engine.loop import NOT_CONFIGURED, Pinned, RetryLoop
from pixwave.payments.engine.run import BrokenInvariant, Run
from pixwave.payments.repository import TransactionRow
from pixwave.payments.status import TransactionStatus

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus


async def advance(run: Run, status: S) -> None:
    """Move a refund on from ``status``; once it was announced, ask before anything else."""
    if status is S.PENDING:
        await refund(run, in_doubt=False)
    elif status in (S.PROCESSING, S.NEEDS_REVIEW):
        await refund(run, in_doubt=True)


async def deposit_of(run: Run) -> TransactionRow:
    parent_id = run.row["parent_id"]
    parent = None
    if parent_id is not None:
        async with run.use.sessionmaker() as session:
            parent = await repository.get(session, parent_id)
    if parent is None:
        raise BrokenInvariant(f"refund {run.id} has no deposit {parent_id}")
    return parent


async def refund(run: Run, *, in_doubt: bool) -> None:
    """Refund through the deposit's gateway, retrying as the table says (never elsewhere)."""
    parent = await deposit_of(run)
    gateway = parent["gateway"]
    if gateway is None:
        raise BrokenInvariant(f"deposit {parent['id']} was received through no gateway")
    if run.connector(gateway) is None:
        await endings.retry_later(run, NOT_CONFIGURED, run.settings.send_poll_seconds)
        return
    tries = await run.tries(Operation.REFUND)
    route = Pinned(run, gateway, tries)
    flow = Refunding(run, parent, gateway)
    await RetryLoop(run, flow, route, tries, gateway).drive(in_doubt=in_doubt)


class Refunding:
    """A refund's part in the retry loop."""

    operation = Operation.REFUND
    unknown_reason = "refund_status_unknown"

    def __init__(self, run: Run, parent: TransactionRow, gateway: str) -> None:
        self.run = run
        self.parent = parent
        self.gateway = gateway
        if parent["gateway_payment_id"] is None:
            raise BrokenInvariant(f"deposit {parent['id']} has no charge to refund")
        self.refund = RefundRequest(
            reference=run.id,
            charge_id=parent["gateway_payment_id"],
            end_to_end_id=parent["end_to_end_id"],
            amount=run.row["amount"],
            reason=run.row["description"],
        )
        self.poll_seconds = run.settings.send_poll_seconds

    def request(self, connector: PixGateway, gateway: str) -> Coroutine[Any, Any, Refund]:
        return connector.refund(self.refund)

    def lookup(self, connector: PixGateway) -> Coroutine[Any, Any, Refund]:
        return connector.get_refund(
            reference=self.refund.reference,
            charge_id=self.refund.charge_id,
            end_to_end_id=self.refund.end_to_end_id,
            refund_id=self.run.row["gateway_payment_id"],
        )

    async def before_call(self, gateway: str, try_number: int) -> bool:
        return await self.run.announce(gateway, Operation.REFUND, try_number)

    async def apply(self, gateway: str, result: Refund) -> None:
        await apply_refund(self.run, gateway, result, self.parent)

    async def give_up(self) -> None:
        await endings.fail(
            self.run,
            "gateway_unavailable",
            f"{self.gateway} could not take the refund",
            alert="refund_failed",
            gateway=self.gateway,
        )


async def apply_refund(run: Run, gateway: str, refund: Refund, parent: TransactionRow) -> None:
    """The provider's word on our refund: done, not performed, or not final yet."""
    if refund.status is RefundStatus.SUCCEEDED:

        async def settle(session: AsyncSession) -> None:
            await endings.settle_hold(
                run,
                session,
                gateway,
                kind="refund",
                description=f"Pix refund via {gateway}",
                gateway_payment_id=refund.refund_id,
                end_to_end_id=refund.return_id,
            )
            await mark_refunded(run, session, parent["id"])

        if await run.write(settle):
            log.info(
                "payments.refund_done", transaction_id=run.id, gateway=gateway, parent=parent["id"]
            )
    elif refund.status is RefundStatus.FAILED:
        await endings.fail(
            run, "refund_not_performed", refund.failure_message or "refund failed", gateway=gateway
        )
    else:
        await endings.await_settlement(
            run, "refund_not_settled", gateway_payment_id=refund.refund_id
        )


async def mark_refunded(run: Run, session: AsyncSession, parent_id: str) -> None:
    """Add the refund to its deposit's refunded amount (locked), in the refund's transaction."""
    current = await repository.get(session, parent_id, for_update=True)
    if current is None:
        raise BrokenInvariant(f"refund {run.id} lost its deposit {parent_id}")
    refunded = int(current["refunded_amount"]) + int(run.row["amount"])
    target = S.REFUNDED if refunded >= int(current["amount"]) else S.PARTIALLY_REFUNDED
    await service.transition(session, parent_id, target, refunded_amount=refunded)
    run.invalidate(session, parent_id)
