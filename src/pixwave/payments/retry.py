"""What the engine does after each kind of gateway failure: a table, and the backoff.

| outcome      | next step                                                           |
|--------------|---------------------------------------------------------------------|
| unavailable  | retry the same gateway (backoff + jitter, honouring Retry-After) up |
|              | to ``tries_per_gateway`` times, then fall back to the next gateway  |
| rejected     | stop: the payment fails with the provider's reason, no fallback     |
| ambiguous    | query the same gateway with the same id before anything else        |

Refunds have no fallback (only the gateway that received the money can return it).

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


class NextStep(StrEnum):
    RETRY_THEN_FALL_BACK = "retry_then_fall_back"
    FAIL = "fail"
    QUERY_SAME_GATEWAY = "query_same_gateway"


NEXT_STEP: Final[dict[Outcome, NextStep]] = {
    Outcome.UNAVAILABLE: NextStep.RETRY_THEN_FALL_BACK,
    Outcome.REJECTED: NextStep.FAIL,
    Outcome.AMBIGUOUS: NextStep.QUERY_SAME_GATEWAY,
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    tries_per_gateway: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    #: A Retry-After longer than this is not waited out in the job: the next gateway is tried.
    max_retry_after: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            tries_per_gateway=settings.retry_tries_per_gateway,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            max_retry_after=settings.retry_max_retry_after,
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


def charge_poll_delay(looks: int, first: float, longest: float) -> float:
    """Seconds until the next look at an unpaid charge after ``looks`` looks so far:
    ``first``, then twice as long each time, never more than ``longest``."""
    return float(min(longest, first * 2 ** min(max(looks, 0), 30)))
