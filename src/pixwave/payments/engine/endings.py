"""How a step ends, the same for a deposit, a withdrawal and a refund: failed (hold released),
money out settled (hold posted), handed to a human, or looked at again later.

Each ending is one database transaction: the status moves by compare-and-set together with the
ledger entries and the outbox events (alerts included) that account for it.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.ledger import service as ledger
from pixwave.notifications import outbox
from pixwave.observability.metrics import PAYMENT_ALERTS, PAYMENT_FAILOVERS, count_on_commit
from pixwave.payments import repository, service
from pixwave.payments.engine.run import BrokenInvariant, Run
from pixwave.payments.status import StatusMoved, TransactionStatus

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus


def gateway_account_code(gateway: str) -> str:
    """The system account mirroring money held for us at a gateway."""
    return f"gateway:{gateway}"


async def fail(
    run: Run, code: str, message: str, *, alert: str | None = None, gateway: str | None
) -> None:
    """Terminal failure: release any hold, record the reason, raise an alert if asked.

    ``gateway`` is the one whose answer ended the payment (it refused), or None when no
    gateway could be reached at all — the same for a deposit, a withdrawal and a refund;
    the attempts keep every gateway that was tried.
    """
    row = run.row

    async def work(session: AsyncSession) -> None:
        if row["hold_id"]:
            await ledger.void_hold(session, hold_id=row["hold_id"])
        await service.transition(
            session,
            run.id,
            S.FAILED,
            gateway=gateway,
            failure_code=code,
            failure_message=message[:255],
            next_attempt_at=None,
        )
        if alert:
            await raise_alert(run, session, alert, {"failure_code": code, "message": message})

    await run.write(work)
    log.warning(
        "payments.failed", transaction_id=run.id, gateway=gateway, code=code, message=message
    )


async def settle_hold(
    run: Run, session: AsyncSession, gateway: str, *, kind: str, description: str, **fields: Any
) -> None:
    """Money left through ``gateway``: post the hold to the gateway's account and succeed, in
    one database transaction (the hold posts at most once, the status moves once)."""
    hold_id = run.row["hold_id"]
    if hold_id is None:
        raise BrokenInvariant(f"{kind} {run.id} has no hold to post")
    target = await ledger.system_account(session, gateway_account_code(gateway))
    ledger_transaction_id = await ledger.post_hold(
        session,
        hold_id=hold_id,
        to_account_id=target,
        kind=kind,
        reference=run.id,
        description=description,
    )
    await service.transition(
        session,
        run.id,
        S.SUCCEEDED,
        gateway=gateway,
        ledger_transaction_id=ledger_transaction_id,
        next_attempt_at=None,
        failure_code=None,
        **fields,
    )


def failover(run: Run, operation: str, gateway: str, reason: str) -> None:
    """Leave ``gateway`` for another: counted, and logged so one payment's path is readable in
    the logs (which gateway was left, why)."""
    PAYMENT_FAILOVERS.labels(operation, gateway, reason).inc()
    log.warning(
        "payments.failover",
        transaction_id=run.id,
        operation=str(operation),
        gateway=gateway,
        reason=reason,
    )


async def raise_alert(run: Run, session: AsyncSession, kind: str, details: dict[str, Any]) -> None:
    """An ``alert.<kind>`` outbox event, committed with the change it reports."""
    count_on_commit(session, PAYMENT_ALERTS.labels(kind))
    await outbox.append(
        session,
        event_type=f"alert.{kind}",
        aggregate_type="transaction",
        aggregate_id=run.id,
        payload={
            "transaction_id": run.id,
            "type": run.row["type"],
            "amount": run.row["amount"],
            "gateway": run.row["gateway"],
            **details,
        },
    )


async def needs_review(run: Run, reason: str) -> None:
    """The truth could not be learned in time: a human looks; polling goes on, slower."""

    async def work(session: AsyncSession) -> None:
        await service.transition(
            session,
            run.id,
            S.NEEDS_REVIEW,
            failure_code=reason,
            next_attempt_at=run.later(run.settings.charge_poll_seconds),
        )
        await raise_alert(run, session, "needs_review", {"reason": reason})

    await run.write(work)
    log.error(
        "payments.needs_review", transaction_id=run.id, gateway=run.row["gateway"], reason=reason
    )


async def retry_later(run: Run, reason: str, seconds: float) -> None:
    """Could not learn the outcome now: look again later, or hand over to a human."""
    if run.overdue() and run.row["status"] != S.NEEDS_REVIEW:
        await needs_review(run, reason)
        return
    await run.schedule(run.later(seconds))


async def await_settlement(run: Run, reason: str, **values: Any) -> None:
    """Accepted by the provider, not final yet (a send or a refund): record what it said, look
    again in SEND_POLL_SECONDS — and hand it to a human once it has taken too long."""
    status = run.row["status"]
    fields = {**values, "next_attempt_at": run.later(run.settings.send_poll_seconds)}

    async def work(session: AsyncSession) -> None:
        if not await repository.set_fields(session, run.id, current=status, values=fields):
            raise StatusMoved(f"transaction {run.id} moved while settling")

    if await run.write(work) and run.overdue() and status != S.NEEDS_REVIEW:
        await run.reload()
        await needs_review(run, reason)
