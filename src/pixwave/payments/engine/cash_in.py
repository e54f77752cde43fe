"""Where a deposit's charge is created, watched, expired and credited.

The charge is created through the best gateway (the retry loop; an ambiguous answer is simply
asked again, since the same reference finds the same charge). Then the deposit awaits its
payer: a webhook or a poll — on a doubling schedule — reads the charge; a paid charge credits
the wallet exactly once, an unpaid one is cancelled at the gateway once it expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.gateways.base import Charge, ChargeRequest, ChargeStatus, PixGateway
from pixwave.gateways.errors import GatewayError, GatewayRejected
from pixwave.gateways.health import Operation
from pixwave.ledger import service as ledger
from pixwave.ledger.service import LockedAccounts, Posting
from pixwave.payments import service
from pixwave.payments.engine import endings
from pixwave.payments.engine.loop import NOT_CONFIGURED, RetryLoop, Routed
from pixwave.payments.engine.run import BrokenInvariant, Run
from pixwave.payments.retry import charge_poll_delay
from pixwave.payments.status import TransactionStatus

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus


async def advance(run: Run, status: S) -> None:
    """Move a deposit on from ``status``."""
    if status is S.PENDING:
        await create_charge(run)
    elif status in (S.AWAITING_PAYMENT, S.NEEDS_REVIEW) and run.row["gateway_payment_id"]:
        await check_charge(run)
    elif status is S.NEEDS_REVIEW:
        await run.schedule(None)


async def create_charge(run: Run) -> None:
    """Create the charge through the best gateway, retrying and falling back as the table says."""
    tries = await run.tries(Operation.CHARGE)
    route = Routed(run, Operation.CHARGE, tries, run.context)
    await RetryLoop(run, Charging(run), route, tries, None).drive(in_doubt=False)


class Charging:
    """A deposit's part in the retry loop."""

    operation = Operation.CHARGE
    unknown_reason = "charge_status_unknown"

    def __init__(self, run: Run) -> None:
        self.run = run
        expires_at = run.row["expires_at"]
        self.expires_in = (
            max(60, int((expires_at - run.now()).total_seconds()))
            if expires_at
            else run.settings.deposit_expires_in
        )
        self.poll_seconds = run.settings.charge_poll_seconds

    def request(self, connector: PixGateway, gateway: str) -> Coroutine[Any, Any, Charge]:
        row = self.run.row
        return connector.create_charge(
            ChargeRequest(
                reference=self.run.id,
                amount=row["amount"],
                expires_in=self.expires_in,
                description=row["description"],
                notification_url=self.run.use.webhook_url(gateway),
            )
        )

    def lookup(self, connector: PixGateway) -> Coroutine[Any, Any, Charge]:
        raise BrokenInvariant("a charge in doubt is created again, never looked up (retry.py)")

    async def before_call(self, gateway: str, try_number: int) -> bool:
        return True  # creating again finds the same charge: nothing to commit first

    async def apply(self, gateway: str, result: Charge) -> None:
        await charge_created(self.run, gateway, result)

    async def give_up(self) -> None:
        await endings.fail(
            self.run,
            "all_gateways_unavailable",
            "no gateway could create the charge",
            alert="all_gateways_unavailable",
            gateway=None,
        )


async def charge_created(run: Run, gateway: str, charge: Charge) -> None:
    """The charge exists: the deposit awaits its payer (and is looked at soon)."""
    expires_at = charge.expires_at or run.later(run.settings.deposit_expires_in)
    poll = min(expires_at, run.later(run.settings.charge_poll_seconds))

    async def work(session: AsyncSession) -> None:
        await service.transition(
            session,
            run.id,
            S.AWAITING_PAYMENT,
            seen=run.row,
            gateway=gateway,
            gateway_payment_id=charge.charge_id,
            txid=charge.txid,
            brcode=charge.brcode,
            qr_png_base64=charge.qr_png_base64,
            expires_at=expires_at,
            next_attempt_at=poll,
        )

    if await run.write(work):
        log.info("payments.charge_created", transaction_id=run.id, gateway=gateway)
        if charge.status is ChargeStatus.PAID and await run.reload():
            await check_charge(run)


def _charge_of(run: Run) -> tuple[str, str]:
    gateway, charge_id = run.row["gateway"], run.row["gateway_payment_id"]
    if gateway is None or charge_id is None:
        raise BrokenInvariant(f"deposit {run.id} has no charge to look at")
    return gateway, charge_id


async def check_charge(run: Run) -> None:
    """Read the charge: credit it, close it, expire it, or look again later."""
    charge = await read_charge(run)
    if charge is not None:
        await on_charge(run, charge)


async def read_charge(run: Run) -> Charge | None:
    """The charge as its gateway has it now; None when it could not be read (the next look
    is already scheduled)."""
    gateway, charge_id = _charge_of(run)
    connector = run.connector(gateway)
    if connector is None:
        await endings.retry_later(run, NOT_CONFIGURED, run.settings.charge_poll_seconds)
        return None
    try:
        return await run.call(gateway, Operation.QUERY, 0, connector.get_charge(charge_id))
    except GatewayError:
        await endings.retry_later(run, "charge_status_unknown", run.settings.charge_poll_seconds)
        return None


async def on_charge(run: Run, charge: Charge) -> None:
    """What the charge just read means for the deposit."""
    if charge.status is ChargeStatus.PAID:
        await credit(run, charge)
    elif charge.status is ChargeStatus.CANCELLED:
        await close_charge(run, S.CANCELLED)
    elif charge.status is ChargeStatus.EXPIRED or past_expiry(run):
        await expire_charge(run)
    else:
        poll = run.later(await next_poll_delay(run))
        expires_at = run.row["expires_at"] or poll
        await run.schedule(min(expires_at, poll))


async def next_poll_delay(run: Run) -> float:
    """Twice as long as the last wait, from the looks so far (see ``charge_poll_delay``)."""
    looks = sum((await run.tries(Operation.QUERY)).values())
    settings = run.settings
    return charge_poll_delay(looks, settings.charge_poll_seconds, settings.charge_poll_max_seconds)


def past_expiry(run: Run) -> bool:
    expires_at = run.row["expires_at"]
    return expires_at is not None and run.now() >= expires_at


async def expire_charge(run: Run) -> None:
    """Cancel at the gateway so a late payer cannot pay, then close as expired."""
    gateway, charge_id = _charge_of(run)
    connector = run.use.gateways[gateway]
    poll = run.settings.charge_poll_seconds
    try:
        charge = await run.call(gateway, Operation.QUERY, 0, connector.cancel_charge(charge_id))
    except GatewayRejected:
        # Not cancellable: most likely paid at the last moment. Read it again.
        try:
            charge = await connector.get_charge(charge_id)
        except GatewayError:
            await endings.retry_later(run, "charge_status_unknown", poll)
            return
    except GatewayError:
        await endings.retry_later(run, "charge_cancel_failed", poll)
        return
    if charge.status is ChargeStatus.PAID:
        await credit(run, charge)
    else:
        await close_charge(run, S.EXPIRED)


async def close_charge(run: Run, status: S) -> None:
    async def work(session: AsyncSession) -> None:
        await service.transition(session, run.id, status, next_attempt_at=None)

    await run.write(work)


async def credit(run: Run, charge: Charge) -> None:
    """The payer paid: credit the wallet exactly once (the transition is the guard)."""
    if await run.write(crediting(run, charge)):
        credited(run, charge)


def crediting(
    run: Run, charge: Charge, locked: LockedAccounts | None = None, source: str | None = None
) -> Callable[[AsyncSession], Awaitable[None]]:
    """The credit's writes: the ledger posting from the gateway's clearing account to the
    wallet, and the compare-and-set to ``succeeded`` on the status the run saw. In a batch of
    credits (`engine.batch`) the balances move in memory (``locked``) and the clearing
    account's id was looked up first (``source``): a query here would send the batch's queued
    writes early."""
    row = run.row
    gateway = row["gateway"]
    if gateway is None:
        raise BrokenInvariant(f"deposit {run.id} was paid through no gateway")

    async def work(session: AsyncSession) -> None:
        clearing = source or await ledger.system_account(
            session, endings.gateway_account_code(gateway)
        )
        ledger_transaction_id = await ledger.post(
            session,
            kind="cash_in",
            entries=[Posting(clearing, -row["amount"]), Posting(row["wallet_id"], row["amount"])],
            reference=run.id,
            description=f"Pix received via {gateway}",
            locked=locked,
        )
        await service.transition(
            session,
            run.id,
            S.SUCCEEDED,
            seen=row,
            end_to_end_id=charge.end_to_end_id,
            ledger_transaction_id=ledger_transaction_id,
            next_attempt_at=None,
            failure_code=None,
        )

    return work


def credited(run: Run, charge: Charge) -> None:
    """Said once the credit committed (a batch that fell back builds its writes twice)."""
    row = run.row
    if charge.paid_amount is not None and charge.paid_amount != row["amount"]:
        log.warning(
            "payments.paid_amount_differs",
            transaction_id=run.id,
            expected=row["amount"],
            paid=charge.paid_amount,
        )
    log.info(
        "payments.deposit_credited",
        transaction_id=run.id,
        gateway=row["gateway"],
        amount=row["amount"],
    )
