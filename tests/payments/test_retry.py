"""The retry table, through the loop that consults it: for each operation and each way a call
can fail, what the engine does next — seen at the fake gateways and in the payment's row —
then the backoff and the polling schedule.

The expected steps are written here as behaviour, not read from ``payments/retry.py``: a
change to the table that changes what a payment does fails one of these.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import Operation
from pixwave.payments.repository import TransactionRow
from pixwave.payments.retry import RetryPolicy, charge_poll_delay, rule_for
from tests.support import EngineBench, Fault, ambiguous, rejected, unavailable


@dataclass(frozen=True)
class Flow:
    """One money-moving operation, as the fake gateway sees it."""

    operation: str
    call: str  # the fake's method that creates or moves money
    query: str | None  # how it is asked about (None: never asked, created again)


CHARGE = Flow("charge", "create_charge", None)
SEND = Flow("send", "send_pix", "get_send")
REFUND = Flow("refund", "refund", "get_refund")
FLOWS = [CHARGE, SEND, REFUND]


async def start(bench: EngineBench, flow: Flow, *faults: Fault) -> tuple[str, TransactionRow]:
    """A payment of ``flow`` whose first calls fail with ``faults``, advanced once; the calls
    made before (a refund's deposit) are forgotten."""
    actor = await bench.actor(balance=50_00)
    if flow is CHARGE:
        transaction_id = await bench.deposit(actor, 10_00)
    elif flow is SEND:
        transaction_id = await bench.withdraw(actor, 10_00)
    else:
        transaction_id = await bench.refund(actor, await bench.received(actor, 10_00), 4_00)
    for provider in bench.providers.values():
        provider.calls.clear()
    bench["primary"].script(flow.call, *faults)
    return transaction_id, await bench.advance(transaction_id)


class TestAfterOneFailure:
    @pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.operation)
    async def test_unavailable_is_retried_on_the_same_gateway_after_a_backoff(
        self, bench: EngineBench, flow: Flow
    ) -> None:
        """Nothing happened at the gateway: the same call again, after a jittered wait."""
        _, row = await start(bench, flow, unavailable())
        assert bench["primary"].calls == [flow.call, flow.call]
        assert bench["secondary"].calls == []
        (waited,) = bench.time.slept
        assert 0 <= waited <= 0.2
        assert row["gateway"] == "primary"

    @pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.operation)
    async def test_rejected_fails_at_once_everywhere(self, bench: EngineBench, flow: Flow) -> None:
        """The provider said no: failed with its reason, no retry, no other gateway."""
        _, row = await start(bench, flow, rejected("payment_denied"))
        assert (row["status"], row["failure_code"]) == ("failed", "payment_denied")
        assert bench["primary"].calls == [flow.call]
        assert bench["secondary"].calls == []

    @pytest.mark.parametrize("flow", [SEND, REFUND], ids=lambda f: f.operation)
    async def test_ambiguous_money_out_is_asked_about_before_anything_else(
        self, bench: EngineBench, flow: Flow
    ) -> None:
        """Money may have left: after the query delay the same gateway is asked, by the same
        id, and its answer applied — never a second call."""
        _, row = await start(bench, flow, ambiguous(acted=True))
        assert bench["primary"].calls == [flow.call, flow.query]
        assert bench.time.slept == [bench.settings.retry.query_delay]
        assert row["status"] == "succeeded"
        assert bench["secondary"].calls == []

    async def test_an_ambiguous_charge_is_created_again_not_asked_about(
        self, bench: EngineBench
    ) -> None:
        """Creating a charge again with the same reference finds the same charge: an unknown
        answer is treated like "unavailable" — created again on the same gateway, after a
        backoff, with no query — and one charge exists."""
        _, row = await start(bench, CHARGE, ambiguous(acted=True))
        assert bench["primary"].calls == ["create_charge", "create_charge"]
        assert len(bench["primary"].charges) == 1
        (waited,) = bench.time.slept
        assert waited <= 0.2
        assert (row["status"], row["gateway"]) == ("awaiting_payment", "primary")


class TestWhenTheGatewaysTriesAreSpent:
    @pytest.mark.parametrize(
        ("flow", "fault"),
        [(CHARGE, unavailable()), (CHARGE, ambiguous(acted=False)), (SEND, unavailable())],
        ids=["charge-unavailable", "charge-ambiguous", "send-unavailable"],
    )
    async def test_charges_and_sends_fall_back_to_the_next_gateway(
        self, bench: EngineBench, flow: Flow, fault: Fault
    ) -> None:
        """Three tries on the preferred gateway, then the next one."""
        _, row = await start(bench, flow, fault, fault, fault)
        assert bench["primary"].calls == [flow.call] * 3
        assert bench["secondary"].calls == [flow.call]
        assert row["gateway"] == "secondary"

    async def test_a_send_that_never_arrived_falls_back_only_after_asking(
        self, bench: EngineBench
    ) -> None:
        """Three unknown answers, each found never to have arrived: then the next gateway."""
        _, row = await start(bench, SEND, *[ambiguous(acted=False)] * 3)
        assert bench["primary"].calls == ["send_pix", "get_send"] * 3
        assert bench["secondary"].calls == ["send_pix"]
        assert (row["status"], row["gateway"]) == ("succeeded", "secondary")

    async def test_a_refund_never_falls_back(self, bench: EngineBench) -> None:
        """Only the gateway that received the money can return it: three tries, then the
        refund fails with an alert — the secondary is never asked."""
        transaction_id, row = await start(bench, REFUND, *[unavailable()] * 3)
        assert bench["primary"].calls == ["refund"] * 3
        assert bench["secondary"].calls == []
        assert (row["status"], row["failure_code"]) == ("failed", "gateway_unavailable")
        assert await bench.alerts(transaction_id) == ["alert.refund_failed"]


class TestRetryAfter:
    @pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.operation)
    async def test_a_reasonable_retry_after_is_waited_exactly(
        self, bench: EngineBench, flow: Flow
    ) -> None:
        """The provider's Retry-After replaces the backoff, then the same gateway again."""
        await start(bench, flow, unavailable(retry_after=4.0))
        assert bench.time.slept == [4.0]
        assert bench["primary"].calls == [flow.call, flow.call]

    @pytest.mark.parametrize("flow", [CHARGE, SEND], ids=lambda f: f.operation)
    async def test_a_long_retry_after_moves_on_at_once(
        self, bench: EngineBench, flow: Flow
    ) -> None:
        """Waiting a minute inside a job is worse than trying the other gateway."""
        _, row = await start(bench, flow, unavailable(retry_after=60.0))
        assert bench.time.slept == []
        assert bench["primary"].calls == [flow.call]
        assert bench["secondary"].calls == [flow.call]
        assert row["gateway"] == "secondary"

    async def test_a_long_retry_after_on_a_refund_is_waited_out_by_the_sweep(
        self, bench: EngineBench
    ) -> None:
        """A refund has nowhere else to go: it comes back when the gateway said, through the
        sweep — and then, in doubt, asks first (the call never arrived) and refunds."""
        transaction_id, row = await start(bench, REFUND, unavailable(retry_after=60.0))
        assert bench.time.slept == []
        assert row["status"] == "processing"
        assert row["next_attempt_at"] == bench.time.now() + timedelta(seconds=60)
        assert bench["primary"].calls == ["refund"]
        bench.time.advance(60)
        done = await bench.advance(transaction_id)
        assert done["status"] == "succeeded"
        assert bench["primary"].calls == ["refund", "get_refund", "refund"]


class TestAQuestionWithoutAnswer:
    @pytest.mark.parametrize(
        ("flow", "reason"),
        [(SEND, "send_status_unknown"), (REFUND, "refund_status_unknown")],
        ids=lambda value: value.operation if isinstance(value, Flow) else "",
    )
    async def test_is_asked_again_later(self, bench: EngineBench, flow: Flow, reason: str) -> None:
        """The gateway cannot say what became of the call: nothing is sent again; the payment
        is looked at again after the poll interval (a human gets it once overdue)."""
        assert flow.query is not None
        bench["primary"].script(flow.query, unavailable())
        _, row = await start(bench, flow, ambiguous(acted=True))
        assert bench["primary"].calls == [flow.call, flow.query]
        assert row["status"] == "processing"
        poll = timedelta(seconds=bench.settings.send_poll_seconds)
        assert row["next_attempt_at"] == bench.time.now() + poll
        assert bench["secondary"].calls == []


def test_every_operation_has_a_rule_for_every_failure() -> None:
    """No failure is left to a default: the loop can always ask the table."""
    for operation in Operation:
        for outcome in set(Outcome) - {Outcome.SUCCEEDED}:
            rule_for(operation, outcome)


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
