"""`Engine.advance_many(ids)`: look at many payments at once, crediting the paid deposits
among them in one database transaction and one COMMIT.

The inbox hands a worker's pending notifications here together (`inbox.tasks`), and the
`payments.advance` jobs a process holds come together too (`payments.tasks`). Each payment
keeps its own rules — its lease, its own gateway read, its own compare-and-set — and only the
work that is the same for all of them is shared:

1. the leases are taken together (one Redis round trip), and the rows read in one query;
2. every deposit awaiting its payer has its charge read from its gateway, a few at a time;
3. the paid ones of each gateway are credited together (:func:`credit_together`) as soon as
   that gateway's reads are in — a slow gateway delays only its own: the clearing account and
   the wallets are locked once, in id order, each credit is applied in memory, and every entry,
   status change, attempt and outbox event goes in one round trip, then one COMMIT. A gateway's
   clearing account row is written once per batch, not once per credit (ADR 23);
4. anything else — a charge not paid yet, a payment of another type or state, a credit the
   batch could not take, a note left meanwhile — goes the ordinary way, one payment at a time.

A batch that fails as a whole (a deadlock, a status that moved under a credit, a COMMIT whose
answer was lost) leaves its payments to be looked at again, each the ordinary way from a fresh
read, exactly as without batching: a credit that did commit is found done, the others are made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError

from pixwave.db import is_transient
from pixwave.gateways.base import Charge, ChargeStatus
from pixwave.gateways.health import Sample
from pixwave.ledger import service as ledger
from pixwave.observability.metrics import GROUP_COMMIT_FALLBACKS
from pixwave.payments import repository
from pixwave.payments.engine import cash_in, endings
from pixwave.payments.engine.flows import keep_attempts, move
from pixwave.payments.engine.run import Collaborators, LeaseLost, Run
from pixwave.payments.repository import AttemptRow
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.pix import is_valid_end_to_end_id
from pixwave.unit_of_work import flush_and_commit, group_inserts, mark, rewind

if TYPE_CHECKING:
    from pixwave.payments.engine.advance import Engine

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus
T = TypeVar("T")

#: Outcome per transaction id: None when it was looked at (whatever that found), else the
#: error its caller should see (the inbox then leaves the notification for a retry).
Outcomes = dict[str, BaseException | None]
#: Told of a payment as soon as its own look in the batch is over, with its outcome so far, so
#: its job can end without waiting for the slowest payment of the batch (a charge created
#: through retries and backoff, say). A note that arrives meanwhile still earns the payment one
#: more look, after the batch; what that look meets is the engine's own business (the sweep
#: brings the payment back if it fails).
Settled = Callable[[str, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class Notified:
    """A received Pix as a notification the operator trusts states it (a scheme a gateway
    family lets the operator trust, see ``gateways.base.TRUSTED_PAYMENT``)."""

    txid: str
    amount: int
    end_to_end_id: str | None


_FALLBACKS = GROUP_COMMIT_FALLBACKS.labels("credits")
#: Gateway reads of one batch at once. More buys no time on a busy worker, and costs CPU: the
#: HTTP client's pool looks at every connection it holds for each request it places.
READS_AT_ONCE = 8


async def advance_many(
    engine: Engine,
    ids: Sequence[str],
    *,
    poke: bool,
    notified: Mapping[str, Notified] | None = None,
    settled: Settled | None = None,
) -> Outcomes:
    """Move each transaction on, as :meth:`Engine.advance` would, sharing what can be shared.

    A deposit in ``notified`` awaiting its payer is credited from that notification — when its
    txid and amount are the charge's — without reading the charge from its gateway first."""
    use = engine.use
    unique = list(dict.fromkeys(ids))
    outcomes: Outcomes = dict.fromkeys(unique)
    ttl = use.settings.lease_seconds
    try:
        tokens = await use.leases.enter_many(unique, ttl, note=poke)
    except Exception as error:  # Redis: no payment of the batch could be taken
        return dict.fromkeys(unique, error)
    # None: another runner owns it, and will see the note as it lets go.
    leased = {i: token for i, token in zip(unique, tokens, strict=True) if token is not None}
    again: set[str] = set()
    try:
        if leased:
            looks = _Looks(use, outcomes, again, notified or {}, settled)
            await looks.run(leased, use.monotonic())
    finally:
        try:
            notes = await use.leases.leave_many(list(leased.items())) if leased else []
        except Exception as error:  # the leases expire on their own; no note is read
            log.warning("payments.leases_not_left", size=len(leased), error=repr(error))
            notes = [False] * len(leased)
    again.update(i for i, noted in zip(leased, notes, strict=True) if noted)
    # One more look, the ordinary way (its own loop and retries), for a note or a rollback.
    looked = [i for i in again if outcomes[i] is None]
    errors = await asyncio.gather(
        *(engine.advance(i, poke=poke) for i in looked), return_exceptions=True
    )
    for transaction_id, failed in zip(looked, errors, strict=True):
        if isinstance(failed, Exception):
            outcomes[transaction_id] = failed
        elif isinstance(failed, BaseException):
            raise failed  # cancelled: not a payment's outcome
    return outcomes


def _paid_as_notified(run: Run, told: Notified) -> Charge | None:
    """The charge, paid as the trusted notification says — or None (then it is read back from
    the gateway) when the notification's txid or amount is not the charge's, or its endToEndId
    is not a well-formed one (the credit would record it)."""
    row = run.row
    e2e = told.end_to_end_id
    if (
        row["txid"] != told.txid
        or row["amount"] != told.amount
        or row["gateway"] is None
        or e2e is None
        or not is_valid_end_to_end_id(e2e)
    ):
        log.warning(
            "payments.notification_disagrees",
            transaction_id=run.id,
            txid=told.txid,
            expected=row["amount"],
            notified=told.amount,
            end_to_end_id=e2e,
        )
        return None
    log.info("payments.paid_as_notified", transaction_id=run.id, gateway=row["gateway"])
    return Charge(
        gateway=row["gateway"],
        charge_id=str(row["gateway_payment_id"]),
        reference=run.id,
        status=ChargeStatus.PAID,
        provider_status="notified",
        amount=row["amount"],
        brcode=row["brcode"] or "",
        qr_png_base64=None,
        created_at=None,
        expires_at=row["expires_at"],
        txid=told.txid,
        paid_amount=told.amount,
        end_to_end_id=told.end_to_end_id,
    )


def _awaits_payer(run: Run) -> bool:
    row = run.row
    return (
        row["type"] == TransactionType.CASH_IN
        and row["status"] in (S.AWAITING_PAYMENT, S.NEEDS_REVIEW)
        and row["gateway_payment_id"] is not None
    )


class _Looks:
    """One batch's runs, and what became of each."""

    def __init__(
        self,
        use: Collaborators,
        outcomes: Outcomes,
        again: set[str],
        notified: Mapping[str, Notified],
        settled: Settled | None,
    ) -> None:
        self.use = use
        self.outcomes = outcomes
        self.again = again
        self.notified = notified
        self.settled = settled

    def over(self, run: Run) -> None:
        """This payment's look is over: its caller may go."""
        if self.settled is not None:
            self.settled(run.id, self.outcomes[run.id])

    async def run(self, leased: dict[str, str], leased_at: float) -> None:
        try:
            async with self.use.sessionmaker() as session:
                rows = await repository.get_many(session, list(leased))
                runs = [Run(self.use, rows[i], leased[i], leased_at) for i in leased if i in rows]
                # The tries so far of the payments that will call a gateway (a charge to create,
                # a send), in the same read: each would otherwise open a session for them.
                moving = [run for run in runs if not _awaits_payer(run)]
                if moving:
                    counts = await repository.attempts_by_operation_many(
                        session, [run.id for run in moving]
                    )
                    for run in moving:
                        run.attempts.written = counts.get(run.id, {})
        except Exception as error:
            for transaction_id in leased:
                self.outcomes[transaction_id] = error
            return
        # One flow per gateway: a gateway that answers slowly delays its own credits, never
        # another's (and each clearing account is written by one transaction per batch).
        by_gateway: dict[str, list[Run]] = {}
        for run in runs:
            if _awaits_payer(run):
                by_gateway.setdefault(str(run.row["gateway"]), []).append(run)
        reads = asyncio.Semaphore(READS_AT_ONCE)
        # The others' steps (a charge to create, a send) need no read first: they start now.
        await asyncio.gather(
            *(self.look_at_charges(deposits, reads) for deposits in by_gateway.values()),
            *(self.move(run) for run in runs if not _awaits_payer(run)),
        )

    async def look_at_charges(self, runs: list[Run], reads: asyncio.Semaphore) -> None:
        """One gateway's deposits awaiting their payer: read, then credit the paid together."""
        samples: list[Sample] = []
        for run in runs:
            run.samples = samples
        charges = await asyncio.gather(*(self.read(run, reads) for run in runs))
        for run in runs:
            run.samples = None  # from here on, each call records its own
        await self.record(samples)
        paid = [
            (run, charge)
            for run, charge in zip(runs, charges, strict=True)
            if charge is not None and charge.status is ChargeStatus.PAID
        ]
        answered = [
            self.finish(run, None if charge is None else cash_in.on_charge(run, charge))
            for run, charge in zip(runs, charges, strict=True)
            if charge is None or charge.status is not ChargeStatus.PAID
        ]
        await asyncio.gather(self.credit(paid), *answered)

    async def read(self, run: Run, reads: asyncio.Semaphore) -> Charge | None:
        """The charge as a trusted notification states it, or as its gateway answers."""
        told = self.notified.get(run.id)
        if told is not None and (charge := _paid_as_notified(run, told)) is not None:
            return charge
        async with reads:
            return await self.guard(run, cash_in.read_charge(run))

    async def move(self, run: Run) -> None:
        """A payment that is not a deposit awaiting its payer: its flow, from the row read."""
        await self.guard(run, move(run))  # `move` keeps its own attempts
        self.over(run)

    async def finish(self, run: Run, step: Awaitable[None] | None) -> None:
        """A deposit whose charge was read: its own step (None: the charge could not be read,
        and its next look is written already), its attempts, and it is over."""
        if step is not None:
            await self.guard(run, step)
        await keep_attempts(run)
        self.over(run)

    async def record(self, samples: list[Sample]) -> None:
        """The health samples of a gateway's reads, in one round trip; advisory, like each."""
        try:
            await self.use.router.record_many(samples)
        except Exception as error:
            log.warning("payments.health_record_failed", samples=len(samples), error=repr(error))

    async def credit(self, paid: list[tuple[Run, Charge]]) -> None:
        """Credit a gateway's paid deposits together; those the batch left out, alone."""
        alone = paid
        if len(paid) > 1:
            try:
                written = await credit_together(self.use, paid)
            except Exception as error:
                log.warning("payments.credit_batch_failed", size=len(paid), error=repr(error))
                _FALLBACKS.inc(len(paid))
                # Whether it committed is unknown (its answer may be what was lost), so these
                # runs' rows and attempts may be stale: each payment is looked at again after
                # the batch, the ordinary way, from a fresh read. Their reads' attempt rows
                # go with the batch's fate (history only; the new look records its own).
                self.again.update(run.id for run, _ in paid)
                return
            alone = [(run, charge) for run, charge in paid if run not in written]
        await asyncio.gather(
            *(self.guard(run, cash_in.credit(run, charge)) for run, charge in alone)
        )
        await asyncio.gather(*(keep_attempts(run) for run, _ in paid))
        for run, _ in paid:
            self.over(run)

    async def guard(self, run: Run, step: Awaitable[T]) -> T | None:
        """One payment's step: what it raises is its own outcome, never its neighbours'."""
        try:
            return await step
        except LeaseLost:
            log.warning("payments.lease_lost", transaction_id=run.id)
        except DBAPIError as error:
            if is_transient(error):  # rolled back: look again, the ordinary way
                self.again.add(run.id)
            else:
                self.outcomes[run.id] = error
        except Exception as error:
            self.outcomes[run.id] = error
        return None


async def credit_together(use: Collaborators, paid: Sequence[tuple[Run, Charge]]) -> set[Run]:
    """Credit the paid deposits in one transaction; return the runs written. A credit the
    batch cannot take (its transition is refused, its wallet is gone) is left out and rewound,
    and is for the caller to write alone, where it meets the same rule as without batching."""
    written: list[tuple[Run, Charge, tuple[list[AttemptRow], list[AttemptRow]]]] = []
    async with use.sessionmaker() as session:
        group_inserts(session)
        sources = {
            gateway: await ledger.system_account(session, endings.gateway_account_code(gateway))
            for gateway in sorted({str(run.row["gateway"]) for run, _ in paid})
        }
        wallets = [str(run.row["wallet_id"]) for run, _ in paid]
        locked = await ledger.lock_accounts(session, [*sources.values(), *wallets])
        for run, charge in paid:
            queued, applied = mark(session), locked.mark()
            try:
                attempts = run.queue_attempts(session)
                source = sources[str(run.row["gateway"])]
                await cash_in.crediting(run, charge, locked, source=source)(session)
                run.invalidate(session, run.id)
            except Exception as refused:
                rewind(session, queued)
                locked.rewind(applied)
                log.info("payments.credit_left_out", transaction_id=run.id, error=repr(refused))
                continue
            written.append((run, charge, attempts))
        locked.finish(session)
        await flush_and_commit(session)
    for run, charge, (inserted, answered) in written:
        run.attempts.committed(inserted, answered)
        cash_in.credited(run, charge)
    return {run for run, _, _ in written}
