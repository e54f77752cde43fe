"""The flow of each type of transaction, run from a row a run has read (`advance.step` reads
it for one payment, `batch` for many)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import structlog

from pixwave.payments.engine import cash_in, cash_out, refund
from pixwave.payments.engine.run import LeaseLost, Run
from pixwave.payments.status import UNFINISHED, TransactionStatus, TransactionType

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus

#: The flow that moves each type of transaction on.
FLOWS: Final[dict[TransactionType, Callable[[Run, S], Awaitable[None]]]] = {
    TransactionType.CASH_IN: cash_in.advance,
    TransactionType.CASH_OUT: cash_out.advance,
    TransactionType.REFUND: refund.advance,
}


async def move(run: Run) -> None:
    """Run the flow of the transaction's type from the row the run has read."""
    try:
        status = S(run.row["status"])
        if status not in UNFINISHED:
            if run.row["next_attempt_at"] is not None:
                await run.schedule(None)
            return
        flow = FLOWS.get(TransactionType(run.row["type"]))
        if flow is not None:
            await flow(run, status)
    except LeaseLost:
        log.warning("payments.lease_lost", transaction_id=run.id)
    finally:
        await keep_attempts(run)


async def keep_attempts(run: Run) -> None:
    """Write the attempts no state change took with it; history only, so a failure here never
    masks what happened in the step."""
    try:
        await run.write_attempts()
    except Exception as exc:
        log.warning("payments.attempts_not_written", transaction_id=run.id, error=repr(exc))
