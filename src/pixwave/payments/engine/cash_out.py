"""Where a withdrawal is sent: through the best gateway, never through a second one while the
first could still have sent it; then settled (the hold posted to the gateway's account) or
failed (the hold released).

A send is announced before it leaves (the gateway and the attempt are committed first), so a
run that finds the payment ``processing`` without a provider id asks that gateway before doing
anything else (the retry loop's QUERY step).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.gateways.base import PixGateway, Send, SendRequest, SendStatus
from pixwave.gateways.errors import GatewayError, GatewayNotFound
from pixwave.gateways.health import Operation
from pixwave.payments.engine import endings
from pixwave.payments.engine.loop import NOT_CONFIGURED, RetryLoop, Routed
from pixwave.payments.engine.run import BrokenInvariant, Run
from pixwave.payments.status import TransactionStatus

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus


async def advance(run: Run, status: S) -> None:
    """Move a withdrawal on from ``status``."""
    if status is S.PENDING:
        await send(run, in_doubt=False)
    elif status in (S.PROCESSING, S.NEEDS_REVIEW):
        if run.row["gateway_payment_id"]:
            await check_send(run)
        else:
            # A send may have left before a crash: ask that gateway first.
            await send(run, in_doubt=run.row["gateway"] is not None)


async def send(run: Run, *, in_doubt: bool) -> None:
    """Send through the best gateway, retrying and falling back as the table says."""
    tries = await run.tries(Operation.SEND)
    route = Routed(run, Operation.SEND, tries, run.context)
    current = run.row["gateway"]
    if current is not None and route.spent(current) and not in_doubt:
        current = None
    await RetryLoop(run, Sending(run), route, tries, current).drive(in_doubt=in_doubt)


class Sending:
    """A withdrawal's part in the retry loop."""

    operation = Operation.SEND
    unknown_reason = "send_status_unknown"

    def __init__(self, run: Run) -> None:
        self.run = run
        row = run.row
        if row["pix_key"] is None:
            raise BrokenInvariant(f"withdrawal {run.id} has no Pix key")
        self.send = SendRequest(
            reference=run.id,
            amount=row["amount"],
            pix_key=row["pix_key"],
            description=row["description"],
        )
        self.poll_seconds = run.settings.send_poll_seconds

    def request(self, connector: PixGateway, gateway: str) -> Coroutine[Any, Any, Send]:
        return connector.send_pix(self.send)

    def lookup(self, connector: PixGateway) -> Coroutine[Any, Any, Send]:
        return connector.get_send(self.run.id, self.run.row["gateway_payment_id"])

    async def before_call(self, gateway: str, try_number: int) -> bool:
        return await self.run.announce(gateway, Operation.SEND, try_number)

    async def apply(self, gateway: str, result: Send) -> None:
        await apply_send(self.run, gateway, result)

    async def give_up(self) -> None:
        await endings.fail(
            self.run,
            "all_gateways_unavailable",
            "no gateway could send the Pix",
            alert="all_gateways_unavailable",
            gateway=None,
        )


async def check_send(run: Run) -> None:
    """A send the provider accepted (it has an id): ask how it is going. Never resend."""
    gateway = run.row["gateway"]
    if gateway is None:
        raise BrokenInvariant(f"withdrawal {run.id} was accepted by no gateway")
    connector = run.connector(gateway)
    poll = run.settings.send_poll_seconds
    if connector is None:
        await endings.retry_later(run, NOT_CONFIGURED, poll)
        return
    try:
        found = await run.call(
            gateway,
            Operation.QUERY,
            0,
            connector.get_send(run.id, run.row["gateway_payment_id"]),
        )
    except GatewayNotFound:
        # Accepted once, now unknown to the provider: never resend on our own.
        await endings.retry_later(run, "send_disappeared", poll)
    except GatewayError:
        await endings.retry_later(run, "send_status_unknown", poll)
    else:
        await apply_send(run, gateway, found)


async def apply_send(run: Run, gateway: str, send: Send) -> None:
    """The provider's word on our send: settled, failed, or not final yet."""
    if send.status is SendStatus.SUCCEEDED:

        async def settle(session: AsyncSession) -> None:
            await endings.settle_hold(
                run,
                session,
                gateway,
                kind="cash_out",
                description=f"Pix sent via {gateway}",
                gateway_payment_id=send.send_id,
                end_to_end_id=send.end_to_end_id,
            )

        if await run.write(settle):
            log.info("payments.withdrawal_sent", transaction_id=run.id, gateway=gateway)
    elif send.status is SendStatus.FAILED:
        await endings.fail(
            run,
            send.failure_code or "send_failed",
            send.failure_message or "the provider did not complete the Pix",
            gateway=gateway,
        )
    else:
        await endings.await_settlement(
            run,
            "send_not_settled",
            gateway=gateway,
            gateway_payment_id=send.send_id,
            end_to_end_id=send.end_to_end_id,
        )
