"""The status table: every pair of statuses is either allowed or refused, on purpose."""

from __future__ import annotations

import itertools

import pytest

from pixwave.payments.status import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    TransactionStatus,
    check_transition,
)

S = TransactionStatus
ALLOWED = {
    (S.PENDING, S.PROCESSING), (S.PENDING, S.AWAITING_PAYMENT), (S.PENDING, S.SUCCEEDED),
    (S.PENDING, S.FAILED), (S.PENDING, S.CANCELLED),
    (S.PROCESSING, S.PENDING), (S.PROCESSING, S.AWAITING_PAYMENT), (S.PROCESSING, S.SUCCEEDED),
    (S.PROCESSING, S.FAILED),
    (S.AWAITING_PAYMENT, S.SUCCEEDED), (S.AWAITING_PAYMENT, S.EXPIRED),
    (S.AWAITING_PAYMENT, S.CANCELLED), (S.AWAITING_PAYMENT, S.FAILED),
    (S.SUCCEEDED, S.REFUNDED), (S.SUCCEEDED, S.PARTIALLY_REFUNDED),
    (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED), (S.PARTIALLY_REFUNDED, S.REFUNDED),
    (S.PENDING, S.NEEDS_REVIEW), (S.PROCESSING, S.NEEDS_REVIEW),
    (S.AWAITING_PAYMENT, S.NEEDS_REVIEW),
    (S.NEEDS_REVIEW, S.SUCCEEDED), (S.NEEDS_REVIEW, S.FAILED), (S.NEEDS_REVIEW, S.EXPIRED),
    (S.NEEDS_REVIEW, S.CANCELLED),
}  # fmt: skip


class TestTable:
    def test_every_status_has_a_row(self) -> None:
        """No status is forgotten by the table."""
        assert set(TRANSITIONS) == set(TransactionStatus)

    @pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
    def test_pair(self, current: TransactionStatus, target: TransactionStatus) -> None:
        """Each of the 100 pairs is allowed exactly when listed above."""
        if (current, target) in ALLOWED:
            check_transition(current, target)
        else:
            with pytest.raises(IllegalTransition):
                check_transition(current, target)

    def test_terminal_statuses(self) -> None:
        """Money-final states have no way out."""
        assert {S.FAILED, S.EXPIRED, S.CANCELLED, S.REFUNDED} == TERMINAL

    def test_needs_review_is_never_terminal(self) -> None:
        """A payment a human must look at can still be settled when the truth arrives."""
        assert S.NEEDS_REVIEW not in TERMINAL

    def test_succeeded_can_never_fail(self) -> None:
        """Once money moved, only a refund can follow: no gateway echo can un-pay it."""
        for target in (S.FAILED, S.PENDING, S.EXPIRED, S.CANCELLED, S.PROCESSING):
            with pytest.raises(IllegalTransition):
                check_transition(S.SUCCEEDED, target)


class TestUnfinished:
    def test_unfinished_is_what_the_engine_still_works_on(self) -> None:
        """Pending, processing, awaiting payment and needs_review; never a settled status."""
        from pixwave.payments.status import IN_FLIGHT, UNFINISHED

        assert {S.PENDING, S.PROCESSING, S.NEEDS_REVIEW} == IN_FLIGHT
        assert IN_FLIGHT | {S.AWAITING_PAYMENT} == UNFINISHED
        assert not UNFINISHED & (TERMINAL | {S.SUCCEEDED, S.PARTIALLY_REFUNDED})
