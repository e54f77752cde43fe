"""The settings the engine reads, picked out of :class:`~pixwave.config.Settings` once (the
defaults live there, and only there)."""

from __future__ import annotations

from dataclasses import dataclass

from pixwave.config import Settings
from pixwave.payments.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class EngineSettings:
    #: How long a run owns a payment without renewing (PAYMENT_LEASE_SECONDS).
    lease_seconds: float
    #: An outcome still unknown this long goes to a human (REVIEW_AFTER_SECONDS).
    review_after_seconds: float
    #: A send or refund accepted but not final is looked at again this often.
    send_poll_seconds: float
    #: The first look at an unpaid charge; each later look waits twice as long, at most
    #: ``charge_poll_max_seconds``.
    charge_poll_seconds: float
    charge_poll_max_seconds: float
    #: A deposit's charge expiry when the request names none.
    deposit_expires_in: int
    retry: RetryPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineSettings:
        return cls(
            lease_seconds=settings.payment_lease_seconds,
            review_after_seconds=settings.review_after_seconds,
            send_poll_seconds=settings.send_poll_seconds,
            charge_poll_seconds=settings.charge_poll_seconds,
            charge_poll_max_seconds=settings.charge_poll_max_seconds,
            deposit_expires_in=settings.deposit_expires_in,
            retry=RetryPolicy.from_settings(settings),
        )
