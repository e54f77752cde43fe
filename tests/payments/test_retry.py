"""The retry table and the backoff: data, tested row by row."""

from __future__ import annotations

import random

import pytest

from pixwave.payments.retry import RetryPolicy, charge_poll_delay


class TestBackoff:
    policy = RetryPolicy(tries_per_gateway=3, base_delay=0.2, max_delay=1.0, max_retry_after=10)

    def test_full_jitter_within_the_exponential_ceiling(self) -> None:
        """Try n waits uniform(0, min(max, base·2^(n-1)))."""
        rng = random.Random(1)
        for try_number, ceiling in ((1, 0.2), (2, 0.4)):
            delays = [self.policy.delay(try_number, None, rng) for _ in range(200)]
            assert all(d is not None and 0 <= d <= ceiling for d in delays)
            assert max(d for d in delays if d is not None) > ceiling * 0.8

    def test_the_ceiling_is_capped(self) -> None:
        """Late tries never wait more than max_delay."""
        policy = RetryPolicy(tries_per_gateway=10, base_delay=0.2, max_delay=1.0)
        rng = random.Random(2)
        assert all((policy.delay(9, None, rng) or 0) <= 1.0 for _ in range(100))

    def test_after_the_last_try_move_on(self) -> None:
        """The third failure on a gateway means: next gateway, no wait."""
        assert self.policy.delay(3, None, random.Random()) is None

    def test_retry_after_is_honoured(self) -> None:
        """A provider's Retry-After replaces the backoff when reasonable."""
        assert self.policy.delay(1, 4.0, random.Random()) == 4.0

    def test_a_long_retry_after_moves_on(self) -> None:
        """Waiting a minute inside a job is worse than trying the other gateway."""
        assert self.policy.delay(1, 60.0, random.Random()) is None


class TestChargePolling:
    @pytest.mark.parametrize(
        ("looks", "delay"),
        [(0, 30.0), (1, 60.0), (2, 120.0), (3, 240.0), (4, 480.0), (5, 600.0), (40, 600.0)],
    )
    def test_doubles_up_to_the_ceiling(self, looks: int, delay: float) -> None:
        """30 s after the charge is created, then twice as long after each look, at most 600 s."""
        assert charge_poll_delay(looks, 30.0, 600.0) == delay
