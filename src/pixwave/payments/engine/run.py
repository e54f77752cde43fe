"""One ownership of one transaction: the row as last read, the lease, the database writes and
the gateway calls, each with its rules.

- **Writes** (:meth:`Run.write`) are one database transaction each, carrying the attempt rows
  not written yet; a write that finds the row moved (someone else won) is rolled back and
  reported, never raised.
- **Gateway calls** (:meth:`Run.call`) never happen inside a database transaction; the lease is
  renewed first, health and an attempt row are recorded after.
- **A money-moving call** is announced first (:meth:`Run.announce`): the gateway about to be
  used and the attempt itself are committed before the call leaves, so whoever resumes after a
  crash knows whom to ask.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pixwave.gateways.base import PixGateway
from pixwave.gateways.errors import GatewayError, Outcome
from pixwave.gateways.health import Operation, Sample
from pixwave.gateways.router import PaymentContext, Router
from pixwave.ledger.errors import HoldAlreadyResolved
from pixwave.observability.metrics import PAYMENT_RETRIES
from pixwave.payments import repository, service
from pixwave.payments.engine.attempts import AttemptBook
from pixwave.payments.engine.settings import EngineSettings
from pixwave.payments.lease import Leases
from pixwave.payments.repository import AttemptRow, TransactionRow
from pixwave.payments.status import IllegalTransition, StatusMoved, TransactionStatus
from pixwave.pix import PixFormatError, parse_pix_key
from pixwave.unit_of_work import after_commit, flush_and_commit

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus
T = TypeVar("T")

#: Forget a transaction's cached representation (``GET /v1/transactions/{id}``).
Invalidate = Callable[[str], Awaitable[None]]


class BrokenInvariant(RuntimeError):
    """A row the engine relies on is missing or inconsistent (a bug, or a manual edit). Raised
    explicitly rather than asserted — asserts vanish under ``python -O`` — so the job fails
    loudly, writes nothing, and the sweep looks again."""


class LeaseLost(Exception):
    """Another worker took the payment over (this one was too slow); stop touching it."""


@dataclass(frozen=True, slots=True)
class Collaborators:
    """What a run uses, handed down by the engine."""

    sessionmaker: async_sessionmaker[AsyncSession]
    gateways: Mapping[str, PixGateway]
    router: Router
    leases: Leases
    settings: EngineSettings
    #: Where a gateway posts its notifications (None: it is not told).
    webhook_url: Callable[[str], str | None]
    invalidate: Invalidate | None
    clock: Callable[[], datetime]
    #: Lease ages: a monotonic clock, so a wall-clock step never makes an old lease look new.
    monotonic: Callable[[], float]
    #: Waits between tries (tests pass one that moves their clock instead).
    sleep: Callable[[float], Awaitable[None]]
    #: Backoff jitter.
    rng: random.Random


async def _read(
    use: Collaborators, transaction_id: str
) -> tuple[TransactionRow, dict[str, dict[str, int]] | None] | None:
    """The row — with the tries so far, unless it awaits its payer: a webhook's look at a
    charge needs no counts, and most looks are those."""
    async with use.sessionmaker() as session:
        row = await repository.get(session, transaction_id)
        if row is None:
            return None
        counts = (
            None
            if row["status"] == S.AWAITING_PAYMENT
            else await repository.attempts_by_operation(session, transaction_id)
        )
    return row, counts


#: Operations whose calls cost the payment a fee.
_PRICED: frozenset[str] = frozenset({Operation.CHARGE, Operation.SEND, Operation.REFUND})


class Run:
    """The state machine's steps for one transaction, with its lease held."""

    def __init__(
        self, use: Collaborators, row: TransactionRow, token: str, leased_at: float
    ) -> None:
        self.use = use
        self.settings = use.settings
        self.id = row["id"]
        self.token = token
        #: When the lease was taken or last renewed (``use.monotonic``).
        self.leased_at = leased_at
        self.row = row
        self.attempts = AttemptBook(self.id, use.clock, fee=self.expected_fee)
        #: Where a batch collects this run's health samples, to send them together (None:
        #: each is recorded as its call ends).
        self.samples: list[Sample] | None = None

    @functools.cached_property
    def context(self) -> PaymentContext:
        """What the router may weigh of this payment: its amount and, for a withdrawal, the
        type of the key it goes to (fees and other routing rules). Read once per run: neither
        changes, and every attempt's fee needs it."""
        key_type = None
        if self.row["pix_key"] is not None:
            try:
                key_type = parse_pix_key(self.row["pix_key"]).type.value
            except PixFormatError:  # accepted by an older rule; routing does without its type
                key_type = None
        return PaymentContext(amount=self.row["amount"], pix_key_type=key_type)

    def expected_fee(self, gateway: str, operation: str) -> int | None:
        """What ``gateway`` is expected to charge for this call; None for reads."""
        if operation not in _PRICED:
            return None
        return self.use.router.expected_fee(gateway, Operation(operation), self.context)

    @classmethod
    async def start(
        cls, use: Collaborators, transaction_id: str, token: str, leased_at: float
    ) -> Run | None:
        """A run on the transaction as it is now; None when there is no such transaction."""
        read = await _read(use, transaction_id)
        if read is None:
            return None
        run = cls(use, read[0], token, leased_at)
        run.attempts.written = read[1]
        return run

    # --- time ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.use.clock()

    def later(self, seconds: float) -> datetime:
        return self.now() + timedelta(seconds=seconds)

    def overdue(self) -> bool:
        """Past the bounded time after which an unresolved payment goes to a human.

        Counted from creation — or, for a charge, from its expiry: waiting for the payer is
        normal, not knowing whether they paid after the charge closed is not.
        """
        since = self.row["created_at"]
        expires_at = self.row["expires_at"]
        if self.row["status"] == S.AWAITING_PAYMENT and expires_at is not None:
            since = max(since, expires_at)
        return self.now() - since > timedelta(seconds=self.settings.review_after_seconds)

    async def wait(self, seconds: float) -> None:
        if seconds > 0:
            await self.use.sleep(seconds)

    # --- the row and the lease -----------------------------------------------------------------

    async def reload(self) -> bool:
        """Read the row again (False: it is gone)."""
        read = await _read(self.use, self.id)
        if read is None:
            return False
        self.row, self.attempts.written = read
        return True

    async def renew(self) -> None:
        """Keep the lease for the next gateway call; losing it means stop (someone took over).

        A lease taken or renewed within the last quarter of its TTL still has three quarters
        left — longer than a gateway call may take — so the round trip is skipped."""
        ttl = self.settings.lease_seconds
        now = self.use.monotonic()
        if now - self.leased_at < ttl / 4:
            return
        if not await self.use.leases.extend(self.id, self.token, ttl):
            raise LeaseLost(self.id)
        self.leased_at = now

    # --- writes --------------------------------------------------------------------------------

    async def write(self, work: Callable[[AsyncSession], Awaitable[None]]) -> bool:
        """One database transaction; False when the row moved under us (someone else won)."""
        async with self.use.sessionmaker() as session:
            try:
                inserted, answered = self.queue_attempts(session)
                await work(session)
                # Every write changes what GET /v1/transactions/{id} shows (status or attempts).
                self.invalidate(session, self.id)
                await flush_and_commit(session)
            except (StatusMoved, IllegalTransition, HoldAlreadyResolved):
                await session.rollback()
                return False
        self.attempts.committed(inserted, answered)
        return True

    def queue_attempts(self, session: AsyncSession) -> tuple[list[AttemptRow], list[AttemptRow]]:
        """Queue the attempt rows and answers not written yet; what was queued is handed to
        ``attempts.committed`` once the transaction commits."""
        inserted, answered = self.attempts.batch()
        for attempt in inserted:
            repository.insert_attempt(session, attempt)
        for attempt in answered:
            repository.answer_attempt(session, attempt)
        return inserted, answered

    async def write_attempts(self) -> None:
        """The attempts and answers no state change took with it (the step ended without one)."""
        if self.attempts.pending():

            async def nothing_else(_: AsyncSession) -> None:
                return None

            await self.write(nothing_else)

    def invalidate(self, session: AsyncSession, transaction_id: str) -> None:
        """Drop the cached representation once the change commits."""
        invalidate = self.use.invalidate
        if invalidate is not None:
            after_commit(session, lambda: invalidate(transaction_id))

    async def schedule(self, at: datetime | None) -> None:
        """Look again at ``at`` (None: never — the payment is final)."""
        status = self.row["status"]

        async def work(session: AsyncSession) -> None:
            await repository.set_fields(
                session, self.id, current=status, values={"next_attempt_at": at}
            )

        await self.write(work)

    async def announce(self, gateway: str, operation: Operation, try_number: int) -> bool:
        """Commit, before a money-moving call leaves, which gateway is used and the attempt
        itself (``ambiguous`` until its answer is recorded): a process killed during the call
        leaves that try on record — shown, and counted against the gateway's tries. False when
        the payment moved meanwhile (the call must not be made)."""
        row = self.row
        announced = self.attempts.announce(gateway, operation, try_number)
        lease_end = self.later(self.settings.lease_seconds)

        async def work(session: AsyncSession) -> None:
            if row["status"] == S.PROCESSING and row["gateway"] == gateway:
                return  # only the attempt to write
            if row["status"] == S.PROCESSING:
                if not await repository.set_fields(
                    session,
                    self.id,
                    current=S.PROCESSING,
                    values={"gateway": gateway, "next_attempt_at": lease_end},
                ):
                    raise StatusMoved(f"transaction {self.id} moved before the send")
            else:
                await service.transition(
                    session, self.id, S.PROCESSING, gateway=gateway, next_attempt_at=lease_end
                )

        if not await self.write(work):
            self.attempts.withdraw(announced)
            return False
        self.attempts.announced_written(announced)
        row["status"], row["gateway"] = S.PROCESSING, gateway
        return True

    # --- gateway calls -------------------------------------------------------------------------

    def connector(self, gateway: str) -> PixGateway | None:
        return self.use.gateways.get(gateway)

    async def tries(self, operation: Operation) -> dict[str, int]:
        """Tries so far per gateway: written ones plus this run's not yet written."""
        if self.attempts.written is None:
            async with self.use.sessionmaker() as session:
                self.attempts.written = await repository.attempts_by_operation(session, self.id)
        return self.attempts.tries(operation)

    async def call(
        self, gateway: str, operation: Operation, try_number: int, send: Coroutine[Any, Any, T]
    ) -> T:
        """One gateway call: lease renewed first; health and an attempt row recorded after."""
        try:
            await self.renew()
        except BaseException:
            send.close()  # never started: close it rather than leave it unawaited
            raise
        if try_number > 1:  # queries are try 0; a second try on one gateway is a retry
            PAYMENT_RETRIES.labels(operation, gateway).inc()
        try:
            result = await send
        except GatewayError as exc:
            await self.record(gateway, operation, try_number, exc.outcome, exc.latency_ms, exc)
            raise
        latency = int(getattr(result, "latency_ms", 0))
        await self.record(gateway, operation, try_number, Outcome.SUCCEEDED, latency, None)
        return result

    async def record(
        self,
        gateway: str,
        operation: Operation,
        try_number: int,
        outcome: Outcome,
        latency_ms: int,
        error: GatewayError | None,
    ) -> None:
        if self.samples is not None:
            self.samples.append(Sample(gateway, operation, outcome, latency_ms))
        else:
            try:
                await self.use.router.record(gateway, operation, outcome, latency_ms)
            except Exception as exc:  # health is advisory; the payment goes on
                log.warning("payments.health_record_failed", gateway=gateway, error=repr(exc))
        self.attempts.record(gateway, operation, try_number, outcome, latency_ms, error)
        log.info(
            "payments.attempt",
            transaction_id=self.id,
            gateway=gateway,
            operation=operation,
            try_number=try_number,
            outcome=outcome.value,
            latency_ms=latency_ms,
            error_code=error.code if error else None,
        )
