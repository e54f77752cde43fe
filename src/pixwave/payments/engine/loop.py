"""The one retry loop: call a gateway, ask the table what its answer means, do that.

Creating a charge, sending a Pix and refunding run through this loop alike; what differs
between them is data — the rows of ``payments/retry.py`` — and what each flow brings
(:class:`MoneyCall`): the call itself, how to ask about it, how to apply its result, how to give
up, and the :class:`Route` its gateways come from (the router's best for charges and sends, the
deposit's own gateway for a refund).

Each step returns the next one; the loop ends when a step returns None (the payment moved on,
or waits for a later look).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from pixwave.gateways.base import PixGateway
from pixwave.gateways.errors import GatewayError, GatewayNotFound, Outcome
from pixwave.gateways.health import Operation
from pixwave.gateways.router import PaymentContext
from pixwave.payments import retry
from pixwave.payments.engine import endings
from pixwave.payments.engine.run import BrokenInvariant, Run
from pixwave.payments.retry import NEVER_RECEIVED, Step

R = TypeVar("R")

#: Why a payment waits when a gateway asked for a longer wait than the job spends.
RATE_LIMITED: Final = "gateway_rate_limited"
#: Why a payment waits when its gateway has no connector here (configuration changed).
NOT_CONFIGURED: Final = "gateway_not_configured"


class MoneyCall(Protocol[R]):
    """What a flow brings to the loop."""

    #: CHARGE, SEND or REFUND: the operation whose row of the table applies.
    operation: Operation
    #: Why the payment waits when a question about an ambiguous call gets no answer.
    unknown_reason: str
    #: Seconds until the next look when the loop stops without an answer.
    poll_seconds: float

    def request(self, connector: PixGateway, gateway: str) -> Coroutine[Any, Any, R]:
        """The call that creates or moves money."""
        ...

    def lookup(self, connector: PixGateway) -> Coroutine[Any, Any, R]:
        """The question about that call (raises GatewayNotFound: it never arrived)."""
        ...

    async def before_call(self, gateway: str, try_number: int) -> bool:
        """What must be committed before the call leaves; False: the payment moved, stop."""
        ...

    async def apply(self, gateway: str, result: R) -> None:
        """The gateway's answer, written."""
        ...

    async def give_up(self) -> None:
        """No gateway is left to try: fail the payment with its alert."""
        ...


class Route(Protocol):
    """Where the gateways for one payment come from."""

    async def pick(self, current: str | None) -> str | None:
        """The gateway for the next try (``current`` while it may be used), or None: none left."""
        ...

    def leave(self, gateway: str) -> None:
        """Do not offer ``gateway`` again for this payment (FALL_BACK)."""
        ...


class Routed:
    """The router's best gateway, left only by falling back or when its circuit is open."""

    def __init__(
        self,
        run: Run,
        operation: Operation,
        tries: dict[str, int],
        context: PaymentContext | None = None,
    ) -> None:
        self.run = run
        self.operation = operation
        #: What the router may weigh of the payment (its fee at each gateway …).
        self.context = context
        spent = run.settings.retry.tries_per_gateway
        self.excluded = {gateway for gateway, n in tries.items() if n >= spent}

    def spent(self, gateway: str) -> bool:
        return gateway in self.excluded

    async def pick(self, current: str | None) -> str | None:
        router = self.run.use.router
        if current is not None:
            if await router.acquire(current, self.operation):
                return current
            self.excluded.add(current)
            endings.failover(self.run, self.operation, current, "circuit_open")
        return await router.choose(self.operation, exclude=self.excluded, context=self.context)

    def leave(self, gateway: str) -> None:
        self.excluded.add(gateway)


class Pinned:
    """One gateway only (a refund's: the one that received the money), while it has tries."""

    def __init__(self, run: Run, gateway: str, tries: dict[str, int]) -> None:
        self.gateway = gateway
        self.tries = tries
        self.limit = run.settings.retry.tries_per_gateway
        self.left = False

    async def pick(self, current: str | None) -> str | None:
        if self.left or self.tries.get(self.gateway, 0) >= self.limit:
            return None
        return self.gateway

    def leave(self, gateway: str) -> None:
        self.left = True


@dataclass(frozen=True, slots=True)
class Next:
    """The step to take, with what it needs."""

    step: Step
    #: RETRY, QUERY: seconds to wait first. RETRY_LATER: seconds to the next look (0: the
    #: flow's poll interval).
    delay: float = 0.0
    #: FAIL: the gateway's refusal.
    error: GatewayError | None = None
    #: RETRY_LATER: why the payment waits.
    reason: str = ""


class RetryLoop(Generic[R]):
    """One flow's tries, from the first call (or the first question) to an ending."""

    def __init__(
        self,
        run: Run,
        flow: MoneyCall[R],
        route: Route,
        tries: dict[str, int],
        gateway: str | None,
    ) -> None:
        self.run = run
        self.flow = flow
        self.route = route
        #: Tries per gateway so far, this run's included.
        self.tries = tries
        #: The gateway of the last call, or None before the first and after a fallback.
        self.gateway = gateway
        self.steps: dict[Step, Callable[[Next], Awaitable[Next | None]]] = {
            Step.RETRY: self.call,
            Step.QUERY: self.query,
            Step.FALL_BACK: self.fall_back,
            Step.FAIL: self.fail,
            Step.GIVE_UP: self.give_up,
            Step.RETRY_LATER: self.retry_later,
        }

    async def drive(self, *, in_doubt: bool) -> None:
        """Run steps until one ends the loop. ``in_doubt``: a call may have reached
        ``gateway`` before this run (a crash mid-call): ask it before anything else."""
        step: Next | None = Next(Step.QUERY if in_doubt else Step.RETRY)
        while step is not None:
            step = await self.steps[step.step](step)

    def decide(
        self,
        outcome: Outcome,
        error: GatewayError,
        *,
        try_number: int,
        retry_after: float | None,
        operation: Operation | None = None,
        reason: str = RATE_LIMITED,
    ) -> Next:
        """The table's next step after a call of ``operation`` (the flow's, unless said)
        ended in ``outcome``."""
        decision = retry.decide(
            operation or self.flow.operation,
            outcome,
            try_number=try_number,
            retry_after=retry_after,
            policy=self.run.settings.retry,
            rng=self.run.use.rng,
        )
        return Next(decision.step, decision.delay, error, reason)

    # --- the steps -----------------------------------------------------------------------------

    async def call(self, step: Next) -> Next | None:
        """RETRY (and the first try): the gateway the route offers, called once."""
        await self.run.wait(step.delay)
        gateway = self.gateway = await self.route.pick(self.gateway)
        if gateway is None:
            return Next(Step.GIVE_UP)
        connector = self.run.connector(gateway)
        if connector is None:
            return Next(Step.RETRY_LATER, reason=NOT_CONFIGURED)
        try_number = self.tries.get(gateway, 0) + 1
        # Still ours? A run that lost its lease must not announce a call it will not make.
        await self.run.renew()
        if not await self.flow.before_call(gateway, try_number):
            return None  # someone else moved the payment on
        self.tries[gateway] = try_number
        operation = self.flow.operation
        try:
            result = await self.run.call(
                gateway, operation, try_number, self.flow.request(connector, gateway)
            )
        except GatewayError as exc:
            return self.decide(exc.outcome, exc, try_number=try_number, retry_after=exc.retry_after)
        await self.flow.apply(gateway, result)
        return None

    async def query(self, step: Next) -> Next | None:
        """QUERY: ask the gateway of the last call about it, by the same id."""
        await self.run.wait(step.delay)
        gateway = self.gateway
        if gateway is None:
            raise BrokenInvariant(f"{self.flow.operation} {self.run.id} is in doubt, no gateway")
        connector = self.run.connector(gateway)
        if connector is None:
            return Next(Step.RETRY_LATER, reason=NOT_CONFIGURED)
        try:
            found = await self.run.call(gateway, Operation.QUERY, 0, self.flow.lookup(connector))
        except GatewayNotFound as exc:
            # It never arrived: an unavailable call, to repeat at once (the gateway answered).
            return self.decide(
                NEVER_RECEIVED, exc, try_number=self.tries.get(gateway, 0), retry_after=0.0
            )
        except GatewayError as exc:
            return self.decide(
                exc.outcome,
                exc,
                try_number=0,
                retry_after=exc.retry_after,
                operation=Operation.QUERY,
                reason=self.flow.unknown_reason,
            )
        await self.flow.apply(gateway, found)
        return None

    async def fall_back(self, step: Next) -> Next:
        """FALL_BACK: this gateway is done for this payment; the route offers another."""
        gateway = self.gateway
        if gateway is not None:
            self.route.leave(gateway)
            endings.failover(self.run, self.flow.operation, gateway, "retries_exhausted")
        self.gateway = None
        return Next(Step.RETRY)

    async def fail(self, step: Next) -> None:
        """FAIL: the gateway said no; no other gateway is asked."""
        if step.error is None:
            raise BrokenInvariant(f"{self.run.id}: a failure without the gateway's answer")
        await endings.fail(self.run, step.error.code, step.error.message, gateway=self.gateway)

    async def give_up(self, step: Next) -> None:
        """GIVE_UP: no gateway is left."""
        await self.flow.give_up()

    async def retry_later(self, step: Next) -> None:
        """RETRY_LATER: stop; the sweep brings the payment back (or a human, once overdue)."""
        await endings.retry_later(self.run, step.reason, step.delay or self.flow.poll_seconds)
