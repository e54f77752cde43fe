"""The payments engine: moves one transaction forward, as far as it can go right now.

`advance(id)` is the only entry point — for the job enqueued by the API, a webhook, the
reconciliation sweep and a redelivered message alike. It is safe to run twice and
concurrently: a lease (a lock with a TTL, renewed before each gateway call) lets one worker
own a payment; the row's status only moves by compare-and-set; identifiers sent to gateways
derive from the transaction id, so a repeat finds the first operation; and money moves only
in the same database transaction as the status change that accounts for it.

Gateway calls never happen inside a database transaction. Before a cash-out or refund call,
the row records which gateway is about to be used (committed first), so whoever resumes the
payment after a crash asks that gateway before doing anything else.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import is_transient, utcnow
from pixwave.gateways.base import (
    Charge,
    ChargeRequest,
    ChargeStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    Send,
    SendRequest,
    SendStatus,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    Outcome,
)
from pixwave.gateways.health import Operation
from pixwave.kit.ids import new_id
from pixwave.kit.locks import MemoryLocks, RedisLocks
from pixwave.ledger import service as ledger
from pixwave.ledger.errors import HoldAlreadyResolved
from pixwave.ledger.service import Posting
from pixwave.notifications import outbox
from pixwave.observability.metrics import (
    PAYMENT_ALERTS,
    PAYMENT_FAILOVERS,
    PAYMENT_RETRIES,
    count_on_commit,
)
from pixwave.payments import repository, service
from pixwave.payments.lease import Leases, MemoryLeases, RedisLeases
from pixwave.payments.retry import RetryPolicy, charge_poll_delay
from pixwave.payments.status import (
    UNFINISHED,
    IllegalTransition,
    StatusMoved,
    TransactionStatus,
    TransactionType,
)
from pixwave.unit_of_work import after_commit, flush_and_commit

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus
T = TypeVar("T")

#: Runs of one advance() that may end in a deadlock or lock timeout before it gives up.
TRANSIENT_RETRIES = 3


def gateway_account_code(gateway: str) -> str:
    """The system account mirroring money held for us at a gateway."""
    return f"gateway:{gateway}"


class Engine:
    """One per process; holds nothing but references to the process's resources."""

    def __init__(self, resources: Resources) -> None:
        self.res = resources
        self.settings = resources.settings
        self.policy = RetryPolicy.from_settings(resources.settings)
        self.rng = random.Random()  # noqa: S311 - backoff jitter
        self.leases = build_leases(resources)

    async def advance(self, transaction_id: str, *, poke: bool = False) -> None:
        """Move the transaction on. If another worker owns it right now, ``poke`` leaves it a
        note to take one more look when it is done (a webhook arriving mid-step must not wait
        for the next poll)."""
        ttl = self.settings.payment_lease_seconds
        transient_failures = 0
        for _ in range(5):
            token = await self.leases.enter(transaction_id, ttl, note=poke)
            if token is None:
                return  # the owner will see the note as it lets go
            run_again = False
            try:
                await _Run(self, transaction_id, token).go()
            except DBAPIError as exc:
                # A deadlock or lock timeout rolled the step's write back; the step is safe to
                # run again (it re-reads the row), so do that now rather than at the next poll.
                transient_failures += 1
                if not is_transient(exc) or transient_failures >= TRANSIENT_RETRIES:
                    raise
                log.warning(
                    "payments.step_retried", transaction_id=transaction_id, error=str(exc.orig)
                )
                run_again = True
            finally:
                noted = await self.leases.leave(transaction_id, token)
            if not (noted or run_again):
                return


class BrokenInvariant(RuntimeError):
    """A row the engine relies on is missing or inconsistent (a bug, or a manual edit). Raised
    explicitly rather than asserted — asserts vanish under ``python -O`` — so the job fails
    loudly, writes nothing, and the sweep looks again."""


def build_leases(resources: Resources) -> Leases:
    if isinstance(resources.locks, RedisLocks) and resources.redis is not None:
        return RedisLeases(resources.redis, resources.locks)
    if not isinstance(resources.locks, MemoryLocks):
        raise TypeError(f"no payment leases for {type(resources.locks).__name__}")
    return MemoryLeases(resources.locks)


class _Run:
    """One ownership of one transaction: the state machine steps, with the lease held."""

    def __init__(self, engine: Engine, transaction_id: str, token: str) -> None:
        self.engine = engine
        self.res = engine.res
        self.settings = engine.settings
        self.policy = engine.policy
        self.id = transaction_id
        self.token = token
        #: When the lease was taken or last renewed (it was taken just before this run).
        self.leased_at = time.monotonic()
        self.row: dict[str, Any] = {}
        #: Written tries per operation and gateway; None until needed (see `reload`).
        self.counts: dict[str, dict[str, int]] | None = None
        #: Attempt rows not yet written: they go in with the next state change's transaction
        #: (one transaction per step, not one per call); whatever is left is written at the end.
        self.attempts: list[dict[str, Any]] = []
        #: The money-moving attempt written before its call left, until its answer is known.
        self.announced: dict[str, Any] | None = None
        #: Answers to such attempts, written (as updates) with the next state change too.
        self.answers: list[dict[str, Any]] = []

    # --- plumbing --------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Read the row again — with the tries so far, unless it awaits its payer: a webhook's
        look at a charge needs no counts, and most looks are those."""
        async with self.res.sessionmaker() as session:
            row = await repository.get(session, self.id)
            if row is None:
                return False
            self.counts = (
                None
                if row["status"] == S.AWAITING_PAYMENT
                else await repository.attempts_by_operation(session, self.id)
            )
        self.row = row
        return True

    async def renew(self) -> None:
        """Keep the lease for the next gateway call; losing it means stop (someone took over).

        A lease taken or renewed within the last quarter of its TTL still has three quarters
        left — longer than a gateway call may take — so the round trip is skipped."""
        ttl = self.settings.payment_lease_seconds
        now = time.monotonic()
        if now - self.leased_at < ttl / 4:
            return
        if not await self.engine.leases.extend(self.id, self.token, ttl):
            raise _LeaseLost(self.id)
        self.leased_at = now

    async def write(self, work: Callable[[AsyncSession], Awaitable[None]]) -> bool:
        """One database transaction; False when the row moved under us (someone else won)."""
        pending, answered = list(self.attempts), list(self.answers)
        async with self.res.sessionmaker() as session:
            try:
                for attempt in pending:
                    repository.insert_attempt(session, attempt)
                for attempt in answered:
                    repository.answer_attempt(session, attempt)
                await work(session)
                # Every write changes what GET /v1/transactions/{id} shows (status or attempts).
                self.invalidate(session)
                await flush_and_commit(session)
            except (StatusMoved, IllegalTransition, HoldAlreadyResolved):
                await session.rollback()
                return False
        del self.attempts[: len(pending)]
        del self.answers[: len(answered)]
        if self.counts is not None:  # written now: count them with the others
            for attempt in pending:
                by_gateway = self.counts.setdefault(attempt["operation"], {})
                by_gateway[attempt["gateway"]] = by_gateway.get(attempt["gateway"], 0) + 1
        return True

    async def write_attempts(self) -> None:
        """The attempts and answers no state change took with it (the step ended without one)."""
        if self.attempts or self.answers:

            async def nothing_else(_: AsyncSession) -> None:
                return None

            await self.write(nothing_else)

    def invalidate(self, session: AsyncSession) -> None:
        """Drop the cached representation once the change commits."""
        cache = self.res.transaction_cache
        if cache is not None:
            after_commit(session, lambda: cache.invalidate(self.id))

    async def schedule(self, at: datetime | None) -> None:
        status = self.row["status"]

        async def work(session: AsyncSession) -> None:
            await repository.set_fields(
                session, self.id, current=status, values={"next_attempt_at": at}
            )

        await self.write(work)

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
        try:
            await self.res.router.record(gateway, operation, outcome, latency_ms)
        except Exception as exc:  # health is advisory; the payment goes on
            log.warning("payments.health_record_failed", gateway=gateway, error=repr(exc))

        answer = {
            "outcome": outcome.value,
            "latency_ms": latency_ms,
            "error_code": error.code if error else None,
            "error_message": error.message[:255] if error else None,
        }
        announced = self.announced
        if announced is not None and (
            announced["gateway"],
            announced["operation"],
            announced["try_number"],
        ) == (gateway, operation, try_number):
            self.announced = None
            self.answers.append({**announced, **answer})
        else:
            self.attempts.append(self.attempt(gateway, operation, try_number) | answer)
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

    def attempt(self, gateway: str, operation: Operation, try_number: int) -> dict[str, Any]:
        """A new attempt row; ``ambiguous`` (not known) until its answer is filled in."""
        return {
            "id": new_id("att"),
            "transaction_id": self.id,
            "gateway": gateway,
            "operation": operation,
            "try_number": try_number,
            "outcome": Outcome.AMBIGUOUS.value,
            "latency_ms": 0,
            "error_code": None,
            "error_message": None,
            "created_at": utcnow(),
        }

    async def choose(
        self,
        operation: Operation,
        excluded: set[str],
        current: str | None,
        what: str,
    ) -> str | None:
        """The gateway to call now: ``current`` while its circuit lets us, else the best one
        not excluded. None — having failed the payment with an alert — when none is left."""
        if current is not None:
            if await self.res.router.acquire(current, operation):
                return current
            excluded.add(current)
            self.failover(operation, current, "circuit_open")
        chosen = await self.res.router.choose(operation, exclude=excluded)
        if chosen is None:
            await self.fail(
                "all_gateways_unavailable",
                f"no gateway could {what}",
                alert="all_gateways_unavailable",
                gateway=None,
            )
        return chosen

    async def tries(self, operation: Operation) -> dict[str, int]:
        """Tries so far per gateway: written ones plus this run's not yet written."""
        if self.counts is None:
            async with self.res.sessionmaker() as session:
                self.counts = await repository.attempts_by_operation(session, self.id)
        counts = dict(self.counts.get(operation, {}))
        for attempt in self.attempts:
            if attempt["operation"] == operation:
                counts[attempt["gateway"]] = counts.get(attempt["gateway"], 0) + 1
        return counts

    def overdue(self) -> bool:
        """Past the bounded time after which an unresolved payment goes to a human.

        Counted from creation — or, for a charge, from its expiry: waiting for the payer is
        normal, not knowing whether they paid after the charge closed is not.
        """
        since: datetime = self.row["created_at"]
        expires_at = self.row.get("expires_at")
        if self.row["status"] == S.AWAITING_PAYMENT and expires_at is not None:
            since = max(since, expires_at)
        return utcnow() - since > timedelta(seconds=self.settings.review_after_seconds)

    def later(self, seconds: float) -> datetime:
        return utcnow() + timedelta(seconds=seconds)

    # --- dispatch ------------------------------------------------------------------------

    async def go(self) -> None:
        if not await self.reload():
            return
        kind = TransactionType(self.row["type"])
        status = S(self.row["status"])
        try:
            if status not in UNFINISHED:
                if self.row.get("next_attempt_at") is not None:
                    await self.schedule(None)
                return
            if kind is TransactionType.CASH_IN:
                await self.cash_in(status)
            elif kind is TransactionType.CASH_OUT:
                await self.cash_out(status)
            elif kind is TransactionType.REFUND:
                await self.refund(status)
        except _LeaseLost:
            log.warning("payments.lease_lost", transaction_id=self.id)
        finally:
            try:
                await self.write_attempts()
            except Exception as exc:  # history only; never mask what happened in the step
                log.warning(
                    "payments.attempts_not_written", transaction_id=self.id, error=repr(exc)
                )

    # --- shared endings ---------------------------------------------------------------------

    async def fail(
        self,
        code: str,
        message: str,
        *,
        alert: str | None = None,
        gateway: str | None,
    ) -> None:
        """Terminal failure: release any hold, record the reason, raise an alert if asked.

        ``gateway`` is the one whose answer ended the payment (it refused), or None when no
        gateway could be reached at all — the same for a deposit, a withdrawal and a refund;
        the attempts keep every gateway that was tried.
        """
        row = self.row

        async def work(session: AsyncSession) -> None:
            if row.get("hold_id"):
                await ledger.void_hold(session, hold_id=row["hold_id"])
            await service.transition(
                session,
                self.id,
                S.FAILED,
                gateway=gateway,
                failure_code=code,
                failure_message=message[:255],
                next_attempt_at=None,
            )
            if alert:
                await self.alert(session, alert, {"failure_code": code, "message": message})

        await self.write(work)
        log.warning(
            "payments.failed", transaction_id=self.id, gateway=gateway, code=code, message=message
        )

    async def settle_hold(
        self, session: AsyncSession, gateway: str, *, kind: str, description: str, **fields: Any
    ) -> None:
        """Money left through ``gateway``: post the hold to the gateway's account and succeed,
        in one database transaction (the hold posts at most once, the status moves once)."""
        target = await ledger.system_account(session, gateway_account_code(gateway))
        ledger_transaction_id = await ledger.post_hold(
            session,
            hold_id=self.row["hold_id"],
            to_account_id=target,
            kind=kind,
            reference=self.id,
            description=description,
        )
        await service.transition(
            session,
            self.id,
            S.SUCCEEDED,
            gateway=gateway,
            ledger_transaction_id=ledger_transaction_id,
            next_attempt_at=None,
            failure_code=None,
            **fields,
        )

    def failover(self, operation: str, gateway: str, reason: str) -> None:
        """Leave ``gateway`` for another: counted, and logged so one payment's path is
        readable in the logs (which gateway was left, why)."""
        PAYMENT_FAILOVERS.labels(operation, gateway, reason).inc()
        log.warning(
            "payments.failover",
            transaction_id=self.id,
            operation=str(operation),
            gateway=gateway,
            reason=reason,
        )

    async def alert(self, session: AsyncSession, kind: str, details: dict[str, Any]) -> None:
        count_on_commit(session, PAYMENT_ALERTS.labels(kind))
        await outbox.append(
            session,
            event_type=f"alert.{kind}",
            aggregate_type="transaction",
            aggregate_id=self.id,
            payload={
                "transaction_id": self.id,
                "type": self.row["type"],
                "amount": self.row["amount"],
                "gateway": self.row.get("gateway"),
                **details,
            },
        )

    async def needs_review(self, reason: str) -> None:
        """The truth could not be learned in time: a human looks; polling goes on, slower."""

        async def work(session: AsyncSession) -> None:
            await service.transition(
                session,
                self.id,
                S.NEEDS_REVIEW,
                failure_code=reason,
                next_attempt_at=self.later(self.settings.charge_poll_seconds),
            )
            await self.alert(session, "needs_review", {"reason": reason})

        await self.write(work)
        log.error(
            "payments.needs_review",
            transaction_id=self.id,
            gateway=self.row.get("gateway"),
            reason=reason,
        )

    async def retry_later(self, reason: str, seconds: float) -> None:
        """Could not learn the outcome now: look again later, or hand over to a human."""
        if self.overdue() and self.row["status"] != S.NEEDS_REVIEW:
            await self.needs_review(reason)
            return
        await self.schedule(self.later(seconds))

    # --- cash-in -----------------------------------------------------------------------------

    async def cash_in(self, status: S) -> None:
        if status is S.PENDING:
            await self.create_charge()
        elif status in (S.AWAITING_PAYMENT, S.NEEDS_REVIEW) and self.row.get("gateway_payment_id"):
            await self.check_charge()
        elif status is S.NEEDS_REVIEW:
            await self.schedule(None)

    async def create_charge(self) -> None:
        row = self.row
        tries = await self.tries(Operation.CHARGE)
        excluded = {g for g, n in tries.items() if n >= self.policy.tries_per_gateway}
        current: str | None = None
        expires_at = row.get("expires_at")
        expires_in = (
            max(60, int((expires_at - utcnow()).total_seconds()))
            if expires_at
            else self.settings.deposit_expires_in
        )
        while True:
            current = await self.choose(Operation.CHARGE, excluded, current, "create the charge")
            if current is None:
                return
            gateway = self.res.gateways[current]
            try_number = tries.get(current, 0) + 1
            tries[current] = try_number
            request = ChargeRequest(
                reference=self.id,
                amount=row["amount"],
                expires_in=expires_in,
                description=row.get("description"),
                notification_url=self.res.webhook_url(current),
            )
            try:
                charge = await self.call(
                    current, Operation.CHARGE, try_number, gateway.create_charge(request)
                )
            except GatewayRejected as exc:
                await self.fail(exc.code, exc.message, gateway=current)
                return
            except GatewayError as exc:
                # Unavailable, or ambiguous: creating again with the same reference finds the
                # same charge, so both are retried on the same gateway.
                delay = self.policy.delay(try_number, exc.retry_after, self.engine.rng)
                if delay is None:
                    excluded.add(current)
                    self.failover(Operation.CHARGE, current, "retries_exhausted")
                    current = None
                else:
                    await asyncio.sleep(delay)
                continue
            await self.charge_created(current, charge)
            return

    async def charge_created(self, gateway: str, charge: Charge) -> None:
        expires_at = charge.expires_at or self.later(self.settings.deposit_expires_in)
        poll = min(expires_at, self.later(self.settings.charge_poll_seconds))

        async def work(session: AsyncSession) -> None:
            await service.transition(
                session,
                self.id,
                S.AWAITING_PAYMENT,
                seen=self.row,
                gateway=gateway,
                gateway_payment_id=charge.charge_id,
                txid=charge.txid,
                brcode=charge.brcode,
                qr_png_base64=charge.qr_png_base64,
                expires_at=expires_at,
                next_attempt_at=poll,
            )

        if await self.write(work):
            log.info("payments.charge_created", transaction_id=self.id, gateway=gateway)
            if charge.status is ChargeStatus.PAID and await self.reload():
                await self.check_charge()

    async def check_charge(self) -> None:
        row = self.row
        gateway = self.res.gateways.get(row["gateway"])
        if gateway is None:
            await self.retry_later("gateway_not_configured", self.settings.charge_poll_seconds)
            return
        try:
            charge = await self.call(
                row["gateway"], Operation.QUERY, 0, gateway.get_charge(row["gateway_payment_id"])
            )
        except GatewayError:
            await self.retry_later("charge_status_unknown", self.settings.charge_poll_seconds)
            return
        if charge.status is ChargeStatus.PAID:
            await self.credit(charge)
        elif charge.status is ChargeStatus.CANCELLED:
            await self.close_charge(S.CANCELLED)
        elif charge.status is ChargeStatus.EXPIRED or self.past_expiry():
            await self.expire_charge()
        else:
            poll = self.later(await self.charge_poll_delay())
            expires_at = row.get("expires_at") or poll
            await self.schedule(min(expires_at, poll))

    async def charge_poll_delay(self) -> float:
        looks = sum((await self.tries(Operation.QUERY)).values())
        return charge_poll_delay(
            looks, self.settings.charge_poll_seconds, self.settings.charge_poll_max_seconds
        )

    def past_expiry(self) -> bool:
        expires_at = self.row.get("expires_at")
        return expires_at is not None and utcnow() >= expires_at

    async def expire_charge(self) -> None:
        """Cancel at the gateway so a late payer cannot pay, then close as expired."""
        row = self.row
        gateway = self.res.gateways[row["gateway"]]
        try:
            charge = await self.call(
                row["gateway"], Operation.QUERY, 0, gateway.cancel_charge(row["gateway_payment_id"])
            )
        except GatewayRejected:
            # Not cancellable: most likely paid at the last moment. Read it again.
            try:
                charge = await gateway.get_charge(row["gateway_payment_id"])
            except GatewayError:
                await self.retry_later("charge_status_unknown", self.settings.charge_poll_seconds)
                return
        except GatewayError:
            await self.retry_later("charge_cancel_failed", self.settings.charge_poll_seconds)
            return
        if charge.status is ChargeStatus.PAID:
            await self.credit(charge)
        else:
            await self.close_charge(S.EXPIRED)

    async def close_charge(self, status: S) -> None:
        async def work(session: AsyncSession) -> None:
            await service.transition(session, self.id, status, next_attempt_at=None)

        await self.write(work)

    async def credit(self, charge: Charge) -> None:
        """The payer paid: credit the wallet exactly once (the transition is the guard)."""
        row = self.row
        if charge.paid_amount is not None and charge.paid_amount != row["amount"]:
            log.warning(
                "payments.paid_amount_differs",
                transaction_id=self.id,
                expected=row["amount"],
                paid=charge.paid_amount,
            )

        async def work(session: AsyncSession) -> None:
            source = await ledger.system_account(session, gateway_account_code(row["gateway"]))
            ledger_transaction_id = await ledger.post(
                session,
                kind="cash_in",
                entries=[Posting(source, -row["amount"]), Posting(row["wallet_id"], row["amount"])],
                reference=self.id,
                description=f"Pix received via {row['gateway']}",
            )
            await service.transition(
                session,
                self.id,
                S.SUCCEEDED,
                seen=row,
                end_to_end_id=charge.end_to_end_id,
                ledger_transaction_id=ledger_transaction_id,
                next_attempt_at=None,
                failure_code=None,
            )

        if await self.write(work):
            log.info(
                "payments.deposit_credited",
                transaction_id=self.id,
                gateway=row["gateway"],
                amount=row["amount"],
            )

    # --- cash-out ------------------------------------------------------------------------------

    async def cash_out(self, status: S) -> None:
        row = self.row
        if status is S.PENDING:
            await self.send_loop(in_doubt=False)
        elif status in (S.PROCESSING, S.NEEDS_REVIEW):
            if row.get("gateway_payment_id"):
                await self.check_send()
            else:
                # A send may have left before a crash: ask that gateway first.
                await self.send_loop(in_doubt=row.get("gateway") is not None)

    async def send_loop(self, *, in_doubt: bool) -> None:
        """Send through the best gateway; never through a second one while the first could
        still have sent it."""
        row = self.row
        tries = await self.tries(Operation.SEND)
        excluded = {g for g, n in tries.items() if n >= self.policy.tries_per_gateway}
        current: str | None = row.get("gateway")
        if current is not None and current in excluded and not in_doubt:
            current = None
        request = SendRequest(
            reference=self.id,
            amount=row["amount"],
            pix_key=row["pix_key"],
            description=row.get("description"),
        )
        while True:
            if in_doubt:
                if current is None:
                    raise BrokenInvariant(f"send {self.id} is in doubt but names no gateway")
                found = await self.find_send(current)
                if found is _UNKNOWN:
                    return
                if isinstance(found, Send):
                    await self.apply_send(current, found)
                    return
                in_doubt = False  # the gateway never received it
                if tries.get(current, 0) >= self.policy.tries_per_gateway:
                    excluded.add(current)
                    self.failover(Operation.SEND, current, "retries_exhausted")
                    current = None
            current = await self.choose(Operation.SEND, excluded, current, "send the Pix")
            if current is None:
                return
            gateway = self.res.gateways[current]
            try_number = tries.get(current, 0) + 1
            if not await self.mark_sending(current, Operation.SEND, try_number):
                return  # someone else moved the payment on
            tries[current] = try_number
            name = current
            try:
                send = await self.call(name, Operation.SEND, try_number, gateway.send_pix(request))
            except GatewayRejected as exc:
                await self.fail(exc.code, exc.message, gateway=name)
                return
            except GatewayAmbiguous:
                in_doubt = True
                await asyncio.sleep(self.settings.ambiguous_query_delay)
                continue
            except GatewayError as exc:  # unavailable: it was not sent
                delay = self.policy.delay(try_number, exc.retry_after, self.engine.rng)
                if delay is None:
                    excluded.add(current)
                    self.failover(Operation.SEND, current, "retries_exhausted")
                    current = None
                else:
                    await asyncio.sleep(delay)
                continue
            await self.apply_send(name, send)
            return

    async def mark_sending(self, gateway: str, operation: Operation, try_number: int) -> bool:
        """Commit, before a money-moving call leaves, which gateway is used and the attempt
        itself (``ambiguous`` until its answer is recorded): a process killed during the call
        leaves that try on record — shown, and counted against the gateway's tries."""
        row = self.row
        announced = self.attempt(gateway, operation, try_number)
        self.attempts.append(announced)
        lease_end = self.later(self.settings.payment_lease_seconds)

        async def work(session: AsyncSession) -> None:
            if row["status"] == S.PROCESSING and row.get("gateway") == gateway:
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
            self.attempts.remove(announced)  # rolled back: that call will not be made
            return False
        self.announced = announced
        row["status"], row["gateway"] = S.PROCESSING, gateway
        return True

    async def find_send(self, gateway_name: str) -> Send | object | None:
        """The gateway's answer about our send: the send, None (never received), or _UNKNOWN."""
        gateway = self.res.gateways.get(gateway_name)
        if gateway is None:
            await self.retry_later("gateway_not_configured", self.settings.send_poll_seconds)
            return _UNKNOWN
        reference, send_id = self.id, self.row.get("gateway_payment_id")
        try:
            return await self.call(
                gateway_name, Operation.QUERY, 0, gateway.get_send(reference, send_id)
            )
        except GatewayNotFound:
            return None
        except GatewayError:
            await self.retry_later("send_status_unknown", self.settings.send_poll_seconds)
            return _UNKNOWN

    async def check_send(self) -> None:
        found = await self.find_send(self.row["gateway"])
        if isinstance(found, Send):
            await self.apply_send(self.row["gateway"], found)
        elif found is None:
            # Accepted once, now unknown to the provider: never resend on our own.
            await self.retry_later("send_disappeared", self.settings.send_poll_seconds)

    async def apply_send(self, gateway: str, send: Send) -> None:
        if send.status is SendStatus.SUCCEEDED:

            async def settle(session: AsyncSession) -> None:
                await self.settle_hold(
                    session,
                    gateway,
                    kind="cash_out",
                    description=f"Pix sent via {gateway}",
                    gateway_payment_id=send.send_id,
                    end_to_end_id=send.end_to_end_id,
                )

            if await self.write(settle):
                log.info("payments.withdrawal_sent", transaction_id=self.id, gateway=gateway)
        elif send.status is SendStatus.FAILED:
            await self.fail(
                send.failure_code or "send_failed",
                send.failure_message or "the provider did not complete the Pix",
                gateway=gateway,
            )
        else:
            await self.await_settlement(
                "send_not_settled",
                gateway=gateway,
                gateway_payment_id=send.send_id,
                end_to_end_id=send.end_to_end_id,
            )

    async def await_settlement(self, reason: str, **values: Any) -> None:
        """Accepted by the provider, not final yet (a send or a refund): record what it said,
        look again in SEND_POLL_SECONDS — and hand it to a human once it has taken too long."""
        status = self.row["status"]
        fields = {**values, "next_attempt_at": self.later(self.settings.send_poll_seconds)}

        async def work(session: AsyncSession) -> None:
            if not await repository.set_fields(session, self.id, current=status, values=fields):
                raise StatusMoved(f"transaction {self.id} moved while settling")

        if await self.write(work) and self.overdue() and status != S.NEEDS_REVIEW:
            await self.reload()
            await self.needs_review(reason)

    # --- refunds -------------------------------------------------------------------------------

    async def refund(self, status: S) -> None:
        row = self.row
        if status is S.PENDING:
            await self.refund_loop(in_doubt=False)
        elif status in (S.PROCESSING, S.NEEDS_REVIEW):
            await self.refund_loop(in_doubt=True, known_id=row.get("gateway_payment_id"))

    async def parent(self) -> dict[str, Any]:
        async with self.res.sessionmaker() as session:
            parent = await repository.get(session, self.row["parent_id"])
        if parent is None:
            raise BrokenInvariant(f"refund {self.id} has no deposit {self.row['parent_id']}")
        return parent

    async def refund_loop(self, *, in_doubt: bool, known_id: str | None = None) -> None:
        """Refunds go back through the gateway that received the money; no fallback."""
        row = self.row
        parent = await self.parent()
        name = parent["gateway"]
        gateway = self.res.gateways.get(name)
        if gateway is None:
            await self.retry_later("gateway_not_configured", self.settings.send_poll_seconds)
            return
        request = RefundRequest(
            reference=self.id,
            charge_id=parent["gateway_payment_id"],
            end_to_end_id=parent.get("end_to_end_id"),
            amount=row["amount"],
            reason=row.get("description"),
        )
        tries = (await self.tries(Operation.REFUND)).get(name, 0)
        while True:
            if in_doubt:
                try:
                    refund = await self.call(
                        name,
                        Operation.QUERY,
                        0,
                        gateway.get_refund(
                            reference=request.reference,
                            charge_id=request.charge_id,
                            end_to_end_id=request.end_to_end_id,
                            refund_id=known_id,
                        ),
                    )
                except GatewayNotFound:
                    in_doubt = False
                except GatewayError:
                    await self.retry_later("refund_status_unknown", self.settings.send_poll_seconds)
                    return
                else:
                    await self.apply_refund(name, refund, parent)
                    return
            if tries >= self.policy.tries_per_gateway:
                await self.fail(
                    "gateway_unavailable",
                    f"{name} could not take the refund",
                    alert="refund_failed",
                    gateway=name,
                )
                return
            try_number = tries + 1
            if not await self.mark_sending(name, Operation.REFUND, try_number):
                return
            tries = try_number
            try:
                refund = await self.call(
                    name, Operation.REFUND, try_number, gateway.refund(request)
                )
            except GatewayRejected as exc:
                await self.fail(exc.code, exc.message, gateway=name)
                return
            except GatewayAmbiguous:
                in_doubt = True
                await asyncio.sleep(self.settings.ambiguous_query_delay)
                continue
            except GatewayError as exc:
                delay = self.policy.delay(try_number, exc.retry_after, self.engine.rng)
                if delay is None and tries < self.policy.tries_per_gateway:
                    # A long Retry-After: come back then (via the sweep) rather than wait here.
                    await self.retry_later("gateway_rate_limited", exc.retry_after or 1.0)
                    return
                await asyncio.sleep(delay or 0.0)
                continue
            await self.apply_refund(name, refund, parent)
            return

    async def apply_refund(self, gateway: str, refund: Refund, parent: dict[str, Any]) -> None:
        row = self.row
        if refund.status is RefundStatus.SUCCEEDED:

            async def settle(session: AsyncSession) -> None:
                await self.settle_hold(
                    session,
                    gateway,
                    kind="refund",
                    description=f"Pix refund via {gateway}",
                    gateway_payment_id=refund.refund_id,
                    end_to_end_id=refund.return_id,
                )
                current = await repository.get(session, parent["id"], for_update=True)
                if current is None:
                    raise BrokenInvariant(f"refund {self.id} lost its deposit {parent['id']}")
                refunded = int(current["refunded_amount"]) + int(row["amount"])
                target_status = (
                    S.REFUNDED if refunded >= int(current["amount"]) else S.PARTIALLY_REFUNDED
                )
                await service.transition(
                    session, parent["id"], target_status, refunded_amount=refunded
                )
                cache = self.res.transaction_cache
                if cache is not None:
                    after_commit(session, lambda: cache.invalidate(parent["id"]))

            if await self.write(settle):
                log.info(
                    "payments.refund_done",
                    transaction_id=self.id,
                    gateway=gateway,
                    parent=parent["id"],
                )
        elif refund.status is RefundStatus.FAILED:
            await self.fail(
                "refund_not_performed", refund.failure_message or "refund failed", gateway=gateway
            )
        else:
            await self.await_settlement("refund_not_settled", gateway_payment_id=refund.refund_id)


class _LeaseLost(Exception):
    """Another worker took the payment over (this one was too slow); stop touching it."""


_UNKNOWN = object()
