"""One status vocabulary for every gateway, and the only table of allowed moves.

Gateways speak their own dialects (`approved`, `CONCLUIDA` …); connectors map them onto
`TransactionStatus` so the rest of PixWave reasons about one lifecycle.
"""

from __future__ import annotations

from enum import StrEnum

from pixwave.exceptions import Conflict


class TransactionType(StrEnum):
    CASH_IN = "cash_in"
    CASH_OUT = "cash_out"
    TRANSFER = "transfer"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class TransactionStatus(StrEnum):
    PENDING = "pending"  # accepted, nothing sent to a gateway yet
    PROCESSING = "processing"  # a gateway call is in flight or its outcome is being confirmed
    AWAITING_PAYMENT = "awaiting_payment"  # a charge exists; waiting for the payer
    SUCCEEDED = "succeeded"  # money moved; the ledger reflects it
    FAILED = "failed"  # definitively not done; any hold was released
    EXPIRED = "expired"  # a charge nobody paid in time
    CANCELLED = "cancelled"  # withdrawn before completion
    REFUNDED = "refunded"  # the whole amount went back
    PARTIALLY_REFUNDED = "partially_refunded"  # part went back; more refunds may follow
    NEEDS_REVIEW = "needs_review"  # the gateway's truth could not be learned in time: a human
    # looks; reconciliation keeps asking and may still settle it


S = TransactionStatus

#: Allowed moves. Anything absent is illegal. `partially_refunded → partially_refunded` is a
#: further partial refund. Terminal states have no way out.
TRANSITIONS: dict[TransactionStatus, frozenset[TransactionStatus]] = {
    S.PENDING: frozenset(
        {S.PROCESSING, S.AWAITING_PAYMENT, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.NEEDS_REVIEW}
    ),
    S.PROCESSING: frozenset({S.PENDING, S.AWAITING_PAYMENT, S.SUCCEEDED, S.FAILED, S.NEEDS_REVIEW}),
    S.AWAITING_PAYMENT: frozenset({S.SUCCEEDED, S.EXPIRED, S.CANCELLED, S.FAILED, S.NEEDS_REVIEW}),
    S.NEEDS_REVIEW: frozenset({S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELLED}),
    S.SUCCEEDED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

TERMINAL: frozenset[TransactionStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

#: Money may still be on its way: the engine keeps working on these (and the sweep re-drives them).
IN_FLIGHT: frozenset[TransactionStatus] = frozenset({S.PENDING, S.PROCESSING, S.NEEDS_REVIEW})
UNFINISHED: frozenset[TransactionStatus] = IN_FLIGHT | {S.AWAITING_PAYMENT}


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "The transaction cannot move to that status"


class StatusMoved(Exception):
    """The row's status changed between the read and the write (another worker, a webhook, an
    operator): a concurrency signal the engine reacts to by reading again — never an HTTP
    answer, unlike :class:`IllegalTransition`, which says the table forbids the move."""


def check_transition(current: TransactionStatus, target: TransactionStatus) -> None:
    """Raise `IllegalTransition` unless the table allows `current → target`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"a {current.value} transaction cannot become {target.value}",
            current_status=current.value,
            requested_status=target.value,
        )
