"""What the engine does after each gateway answer: a table the retry loop consults, and the backoff.

The engine's one retry loop (``payments/engine/loop.py``) calls a gateway, and when the call
fails asks :func:`decide` what to do next; :func:`decide` reads the table below. An outcome has
one rule for every operation unless the operation has its own row.

| outcome     | operation | next step                             | tries spent | long Retry-After |
|-------------|-----------|---------------------------------------|-------------|------------------|
| unavailable | (any)     | retry the same gateway, after backoff | fall back   | fall back        |
|             |           | or the provider's Retry-After         |             |                  |
| unavailable | refund    | retry the same gateway                | give up     | retry later      |
| rejected    | (any)     | fail with the provider's reason       |             |                  |
| ambiguous   | (any)     | query the same gateway, same id       |             |                  |
| ambiguous   | charge    | retry the same gateway                | fall back   | fall back        |
| (any)       | query     | retry later (the sweep comes back)    |             |                  |

- **Refunds have no fallback**: only the gateway that received the money can return it, so
  when its tries are spent the refund *gives up* (fails with ``alert.refund_failed``), and a
  long Retry-After is waited out by the sweep instead of in the job.
- **Charges treat an ambiguous answer like an unavailable one**: creating a charge again with
  the same reference finds the same charge (the ids derive from our transaction id), so the
  same gateway is simply asked to create it again, with backoff, then the next gateway.
- **Ambiguous sends and refunds are asked about before anything else** (after
  ``query_delay``): found → its answer is applied; not found → it never arrived, which is
  :data:`NEVER_RECEIVED` (an unavailable call the loop may repeat at once); no answer → retry
  later. Nothing is sent twice, and never through a second gateway while the first may have it.
- *Give up* is what "fall back" becomes when no gateway is left: the payment fails with an
  ``alert.all_gateways_unavailable`` (or ``alert.refund_failed``) and any hold is released.

Unpaid charges are looked at on a doubling schedule (:func:`charge_poll_delay`): polling only
makes up for lost webhooks, and a flat interval would cost one gateway call per open charge
every few seconds, nearly all of them still unpaid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pixwave.config import Settings
from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import Operation


class Step(StrEnum):
    """What the retry loop does next."""

    RETRY = "retry"  # the same gateway again, after the backoff or the provider's Retry-After
    FALL_BACK = "fall_back"  # leave this gateway for the next one the router offers
    QUERY = "query"  # ask the same gateway about the same id before anything else
    FAIL = "fail"  # the payment fails with the gateway's reason; no other gateway is asked
    GIVE_UP = "give_up"  # no gateway is left to try: fail with an alert, release any hold
    RETRY_LATER = "retry_later"  # stop here; the sweep brings the payment back later


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: the step, and — for a retry — what replaces it once the gateway's tries are
    spent, or when the provider asks for a wait longer than the job should spend."""

    step: Step
    when_spent: Step | None = None
    when_told_to_wait: Step | None = None

    def __post_init__(self) -> None:
        if (self.step is Step.RETRY) != (
            self.when_spent is not None and self.when_told_to_wait is not None
        ):
            raise ValueError("a retry, and only a retry, says what follows its last try")


RETRY_THEN_FALL_BACK: Final = Rule(
    Step.RETRY, when_spent=Step.FALL_BACK, when_told_to_wait=Step.FALL_BACK
)

#: The rule of each failure outcome, for every operation without a row of its own.
NEXT_STEP: Final[dict[Outcome, Rule]] = {
    Outcome.UNAVAILABLE: RETRY_THEN_FALL_BACK,
    Outcome.REJECTED: Rule(Step.FAIL),
    Outcome.AMBIGUOUS: Rule(Step.QUERY),
}

#: Where an operation's rule differs from the outcome's.
BY_OPERATION: Final[dict[tuple[Operation, Outcome], Rule]] = {
    # The same reference finds the same charge: asking again is safe, like after "unavailable".
    (Operation.CHARGE, Outcome.AMBIGUOUS): RETRY_THEN_FALL_BACK,
    # Only the gateway that received the money can return it: no fallback.
    (Operation.REFUND, Outcome.UNAVAILABLE): Rule(
        Step.RETRY, when_spent=Step.GIVE_UP, when_told_to_wait=Step.RETRY_LATER
    ),
    # A question about an ambiguous call that gets no answer: ask again at the next look.
    (Operation.QUERY, Outcome.UNAVAILABLE): Rule(Step.RETRY_LATER),
    (Operation.QUERY, Outcome.REJECTED): Rule(Step.RETRY_LATER),
    (Operation.QUERY, Outcome.AMBIGUOUS): Rule(Step.RETRY_LATER),
}

#: A query's "no such send/refund" after an ambiguous call: the call never arrived, so it is
#: treated as that call having been unavailable — and repeated at once (no backoff: the
#: gateway answered) while the gateway has tries left.
NEVER_RECEIVED: Final = Outcome.UNAVAILABLE


def rule_for(operation: Operation, outcome: Outcome) -> Rule:
    """The operation's own row, else the outcome's."""
    own = BY_OPERATION.get((operation, outcome))
    if own is not None:
        return own
    if outcome not in NEXT_STEP:
        raise ValueError(f"{outcome} is not a failure: nothing follows it")
    return NEXT_STEP[outcome]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    tries_per_gateway: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    #: A Retry-After longer than this is not waited out in the job (see the table).
    max_retry_after: float = 10.0
    #: Seconds before asking a gateway about a call whose outcome it left unknown.
    query_delay: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            tries_per_gateway=settings.retry_tries_per_gateway,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            max_retry_after=settings.retry_max_retry_after,
            query_delay=settings.ambiguous_query_delay,
        )

    def delay(self, try_number: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds before try ``try_number + 1`` on the same gateway, or None: move on now.

        Exponential with full jitter (``uniform(0, min(max, base·2^(n-1)))``), so many payments
        failing together do not retry in lockstep; a provider's Retry-After wins when it is
        reasonable.
        """
        if try_number >= self.tries_per_gateway:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (try_number - 1))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    #: RETRY and QUERY: seconds to wait first. RETRY_LATER: seconds until the next look
    #: (0: the caller's usual poll interval).
    delay: float = 0.0


def decide(
    operation: Operation,
    outcome: Outcome,
    *,
    try_number: int,
    retry_after: float | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """The next step after try ``try_number`` of ``operation`` on a gateway ended in ``outcome``."""
    rule = rule_for(operation, outcome)
    if rule.step is Step.QUERY:
        return Decision(Step.QUERY, policy.query_delay)
    if rule.step is not Step.RETRY or rule.when_spent is None or rule.when_told_to_wait is None:
        return Decision(rule.step)
    if try_number >= policy.tries_per_gateway:
        return Decision(rule.when_spent)
    delay = policy.delay(try_number, retry_after, rng)
    if delay is None:  # only a Retry-After longer than max_retry_after gets here
        return Decision(rule.when_told_to_wait, retry_after or 0.0)
    return Decision(Step.RETRY, delay)


def charge_poll_delay(looks: int, first: float, longest: float) -> float:
    """Seconds until the next look at an unpaid charge after ``looks`` looks so far:
    ``first``, then twice as long each time, never more than ``longest``."""
    return float(min(longest, first * 2 ** min(max(looks, 0), 30)))
