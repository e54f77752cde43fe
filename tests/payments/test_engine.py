"""The payments engine's decisions, fast: deposits, withdrawals and refunds over fake gateways,
SQLite, in-memory health and leases, and a clock the test moves (no sleeping, no servers).

Every test ends with the ledger audit (the ``bench`` fixture); money-moving tests check the
wallet's posted and held balances too. The journeys through the real API, simulators and
Redis are in ``test_journeys.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymysql.err import OperationalError as MySQLOperationalError
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from pixwave.gateways.base import RefundStatus, SendStatus
from pixwave.ledger import service as ledger_service
from pixwave.payments import repository
from pixwave.payments.engine import EngineSettings
from pixwave.payments.engine.run import LeaseLost, Run
from pixwave.payments.flows import RefundTooLarge
from pixwave.payments.retry import RetryPolicy
from tests.support import EngineBench, ambiguous, rejected, unavailable


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def named(logs: list[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


class TestDeposit:
    async def test_a_look_credits_a_paid_charge_exactly_once(self, bench: EngineBench) -> None:
        """The charge is created on the preferred gateway; a look after the payer paid (a
        webhook's, or the poll that makes up for a lost one) credits once — later looks
        change nothing."""
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 123_45)
        ready = await bench.advance(deposit)
        assert (ready["status"], ready["gateway"]) == ("awaiting_payment", "primary")
        assert ready["brcode"]
        assert ready["gateway_payment_id"]
        assert ready["expires_at"]
        assert ready["next_attempt_at"] == bench.time.now() + timedelta(
            seconds=bench.settings.charge_poll_seconds
        )
        bench["primary"].pay(ready["gateway_payment_id"])
        done = await bench.advance(deposit)
        assert done["status"] == "succeeded"
        assert done["ledger_transaction_id"]
        assert done["next_attempt_at"] is None
        await bench.advance(deposit)
        await bench.advance(deposit, poke=True)
        assert await bench.balance(actor) == (123_45, 0)

    async def test_an_unpaid_charge_is_looked_at_less_and_less_often(
        self, bench: EngineBench
    ) -> None:
        """No webhook, no payment: each look schedules the next twice as far (60 s → 120 s →
        the 150 s ceiling), instead of asking the gateway every 30 s until expiry."""
        settings = replace(bench.settings, charge_poll_seconds=30, charge_poll_max_seconds=150)
        bench = EngineBench(bench.resources, "primary", settings=settings)
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 5_00)
        row = await bench.advance(deposit)
        gaps = []
        for _ in range(4):
            assert row["next_attempt_at"] is not None
            bench.time.current = row["next_attempt_at"]
            row = await bench.advance(deposit)
            assert row["next_attempt_at"] is not None
            gaps.append((row["next_attempt_at"] - bench.time.now()).total_seconds())
        assert gaps == [60, 120, 150, 150]
        assert bench["primary"].count("get_charge") == 4

    async def test_an_unpaid_charge_expires_and_is_cancelled(self, bench: EngineBench) -> None:
        """Past its expiry the charge is cancelled at the gateway (a late payer cannot pay)
        and the deposit expires; nothing is credited."""
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 20_00)
        ready = await bench.advance(deposit)
        assert ready["expires_at"] is not None
        bench.time.current = ready["expires_at"] + timedelta(seconds=1)
        expired = await bench.advance(deposit)
        assert expired["status"] == "expired"
        assert expired["next_attempt_at"] is None
        assert bench["primary"].calls[-2:] == ["get_charge", "cancel_charge"]
        charge = bench["primary"].charges[str(ready["gateway_payment_id"])]
        assert charge.status == "cancelled"
        assert await bench.balance(actor) == (0, 0)

    async def test_paid_at_the_last_moment_is_credited_not_expired(
        self, bench: EngineBench
    ) -> None:
        """The gateway refuses to cancel a charge paid just before expiry: the engine reads it
        again and credits it."""
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 7_00)
        ready = await bench.advance(deposit)
        assert ready["expires_at"] is not None
        assert ready["gateway_payment_id"] is not None
        bench.time.current = ready["expires_at"] + timedelta(seconds=1)
        charge_id = ready["gateway_payment_id"]

        async def paid_meanwhile() -> None:
            bench["primary"].pay(charge_id)

        bench["primary"].during["cancel_charge"] = paid_meanwhile
        done = await bench.advance(deposit)
        assert done["status"] == "succeeded"
        assert bench["primary"].calls[-3:] == ["get_charge", "cancel_charge", "get_charge"]
        assert await bench.balance(actor) == (7_00, 0)

    async def test_a_deadlocked_credit_is_run_again_at_once(
        self,
        bench: EngineBench,
        monkeypatch: pytest.MonkeyPatch,
        logs: list[MutableMapping[str, Any]],
    ) -> None:
        """The database rolls the credit back (deadlock): the same advance runs the step again
        instead of leaving the deposit to the next poll — and it is still credited once."""
        real_post = ledger_service.post
        failures: list[str] = []

        async def deadlock_once(session: Any, **kwargs: Any) -> str:
            if kwargs.get("kind") == "cash_in" and not failures:
                failures.append(kwargs["reference"])
                raise OperationalError("INSERT …", {}, MySQLOperationalError(1213, "Deadlock"))
            return await real_post(session, **kwargs)

        monkeypatch.setattr(ledger_service, "post", deadlock_once)
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 31_00)
        ready = await bench.advance(deposit)
        assert ready["gateway_payment_id"] is not None
        bench["primary"].pay(ready["gateway_payment_id"])
        assert (await bench.advance(deposit))["status"] == "succeeded"
        assert failures == [deposit]
        assert [e["transaction_id"] for e in named(logs, "payments.step_retried")] == [deposit]
        assert await bench.balance(actor) == (31_00, 0)

    async def test_every_gateway_down_fails_with_an_alert(self, bench: EngineBench) -> None:
        """No gateway can create the charge: three tries on each, then failed with
        `alert.all_gateways_unavailable`; no gateway is named (none answered)."""
        for name in ("primary", "secondary"):
            bench[name].script("create_charge", unavailable(), unavailable(), unavailable())
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 5_00)
        failed = await bench.advance(deposit)
        assert (failed["status"], failed["failure_code"]) == ("failed", "all_gateways_unavailable")
        assert failed["gateway"] is None
        assert [(g, n, o) for g, _, n, o in await bench.attempts(deposit)] == [
            ("primary", 1, "unavailable"),
            ("primary", 2, "unavailable"),
            ("primary", 3, "unavailable"),
            ("secondary", 1, "unavailable"),
            ("secondary", 2, "unavailable"),
            ("secondary", 3, "unavailable"),
        ]
        assert await bench.alerts(deposit) == ["alert.all_gateways_unavailable"]

    async def test_a_flaky_primary_loses_its_traffic(self, bench: EngineBench) -> None:
        """The primary fails every other charge: once it has been judged on enough calls, new
        deposits go to the secondary — and none fails."""
        flaky = bench["primary"]
        flaky.script("create_charge", *[unavailable(), None] * 12)
        actor = await bench.actor()
        gateways = []
        for amount in range(1_00, 1_12):
            row = await bench.advance(await bench.deposit(actor, amount))
            assert row["status"] == "awaiting_payment"
            gateways.append(row["gateway"])
        assert gateways[-4:] == ["secondary"] * 4
        health = await bench.health.snapshot("primary", "charge")
        assert health.success_rate is not None
        assert health.success_rate < 1


class TestWithdrawal:
    async def test_sent_and_the_hold_posted(self, bench: EngineBench) -> None:
        """Held at once, sent, settled: the wallet pays exactly the amount."""
        actor = await bench.actor(balance=100_00)
        withdrawal = await bench.withdraw(actor, 40_00)
        assert await bench.balance(actor) == (100_00, 40_00)
        assert bench.kicked == [withdrawal]
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert done["end_to_end_id"]
        assert await bench.balance(actor) == (60_00, 0)

    async def test_unavailable_is_retried_then_falls_back(
        self, bench: EngineBench, logs: list[MutableMapping[str, Any]]
    ) -> None:
        """The primary refuses connections: three tries with backoff (each written before it
        left and answered after), then one send through the secondary."""
        bench["primary"].script("send_pix", unavailable(), unavailable(), unavailable())
        actor = await bench.actor(balance=100_00)
        withdrawal = await bench.withdraw(actor, 10_00)
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "secondary")
        assert await bench.attempts(withdrawal) == [
            ("primary", "send", 1, "unavailable"),
            ("primary", "send", 2, "unavailable"),
            ("primary", "send", 3, "unavailable"),
            ("secondary", "send", 1, "succeeded"),
        ]
        first, second = bench.time.slept  # full jitter under each try's ceiling
        assert 0 <= first <= 0.2
        assert 0 <= second <= 0.4
        failovers = named(logs, "payments.failover")
        assert [(f["gateway"], f["reason"]) for f in failovers] == [
            ("primary", "retries_exhausted")
        ]
        assert await bench.balance(actor) == (90_00, 0)

    async def test_an_open_circuit_is_left_without_waiting_out_its_tries(
        self, bench: EngineBench, logs: list[MutableMapping[str, Any]]
    ) -> None:
        """The primary keeps refusing: the first withdrawal spends its three tries there; the
        circuit opens during the second (five failures), which moves on at once; the third
        is never offered the primary."""
        bench["primary"].script("send_pix", *[unavailable()] * 10)
        actor = await bench.actor(balance=100_00)
        tries = []
        for _ in range(3):
            withdrawal = await bench.withdraw(actor, 10_00)
            done = await bench.advance(withdrawal)
            assert (done["status"], done["gateway"]) == ("succeeded", "secondary")
            attempts = await bench.attempts(withdrawal)
            tries.append([n for g, _, n, _ in attempts if g == "primary"])
            assert attempts[-1] == ("secondary", "send", 1, "succeeded")
        assert tries == [[1, 2, 3], [1, 2], []]
        reasons = [(f["gateway"], f["reason"]) for f in named(logs, "payments.failover")]
        assert reasons == [("primary", "retries_exhausted"), ("primary", "circuit_open")]
        assert await bench.balance(actor) == (70_00, 0)

    async def test_rejected_fails_without_falling_back(self, bench: EngineBench) -> None:
        """The primary refuses the send in its answer: failed at once, hold released, and the
        secondary — healthy, next in line — is never asked."""
        bench["primary"].script("send_pix", rejected("payment_denied"))
        actor = await bench.actor(balance=30_00)
        withdrawal = await bench.withdraw(actor, 25_00)
        failed = await bench.advance(withdrawal)
        assert (failed["status"], failed["failure_code"]) == ("failed", "payment_denied")
        assert failed["gateway"] == "primary"
        assert await bench.attempts(withdrawal) == [("primary", "send", 1, "rejected")]
        assert bench["primary"].sends == {}
        assert bench["secondary"].calls == []
        assert await bench.balance(actor) == (30_00, 0)

    async def test_rejected_after_acceptance_voids_the_hold(self, bench: EngineBench) -> None:
        """Accepted, then reported failed by the provider: failed, the money back, and the
        gateway whose answer ended it named."""
        bench["primary"].send_status = SendStatus.PROCESSING
        actor = await bench.actor(balance=30_00)
        withdrawal = await bench.withdraw(actor, 30_00)
        sending = await bench.advance(withdrawal)
        assert (sending["status"], sending["gateway_payment_id"]) == (
            "processing",
            f"snd_{withdrawal}",
        )
        assert sending["next_attempt_at"] == bench.time.now() + timedelta(
            seconds=bench.settings.send_poll_seconds
        )
        bench["primary"].settle_send(withdrawal, SendStatus.FAILED)
        failed = await bench.advance(withdrawal)
        assert (failed["status"], failed["gateway"]) == ("failed", "primary")
        assert failed["failure_code"] == "AC03"
        assert await bench.balance(actor) == (30_00, 0)

    async def test_an_ambiguous_send_that_arrived_is_asked_about_not_repeated(
        self, bench: EngineBench
    ) -> None:
        """The send goes through but its answer is lost: the engine waits, asks the same
        gateway by the same id, and applies what it finds — exactly one Pix."""
        bench["primary"].script("send_pix", ambiguous(acted=True))
        actor = await bench.actor(balance=50_00)
        withdrawal = await bench.withdraw(actor, 25_00)
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert bench["primary"].calls == ["send_pix", "get_send"]
        assert bench.time.slept == [
            bench.settings.retry.query_delay
        ]  # the query delay, then the question
        assert await bench.attempts(withdrawal) == [
            ("primary", "send", 1, "ambiguous"),
            ("primary", "query", 0, "succeeded"),
        ]
        assert await bench.balance(actor) == (25_00, 0)

    async def test_an_ambiguous_send_that_never_arrived_is_sent_again(
        self, bench: EngineBench
    ) -> None:
        """The gateway has no such send: it never arrived, so the same gateway is tried again
        at once (it answered: no backoff)."""
        bench["primary"].script("send_pix", ambiguous(acted=False))
        actor = await bench.actor(balance=50_00)
        withdrawal = await bench.withdraw(actor, 20_00)
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert bench["primary"].calls == ["send_pix", "get_send", "send_pix"]
        assert bench.time.slept == [bench.settings.retry.query_delay]
        assert [(o, n, r) for _, o, n, r in await bench.attempts(withdrawal)] == [
            ("send", 1, "ambiguous"),
            ("query", 0, "rejected"),  # not found
            ("send", 2, "succeeded"),
        ]
        assert await bench.balance(actor) == (30_00, 0)

    async def test_a_gateway_that_never_received_it_three_times_is_left(
        self, bench: EngineBench
    ) -> None:
        """Three unknown answers, each found never to have arrived: the primary's tries are
        spent, so the send goes elsewhere — only after the primary said it has none."""
        bench["primary"].script("send_pix", *[ambiguous(acted=False)] * 3)
        actor = await bench.actor(balance=50_00)
        withdrawal = await bench.withdraw(actor, 20_00)
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "secondary")
        assert bench["primary"].calls == ["send_pix", "get_send"] * 3
        assert bench["secondary"].calls == ["send_pix"]
        assert await bench.balance(actor) == (30_00, 0)

    async def test_the_send_attempt_is_on_record_before_the_call_leaves(
        self, bench: EngineBench
    ) -> None:
        """A worker killed while its send is on the wire must leave that try on record
        (``ambiguous``, counted): the row commits before the call, its answer fills it in."""
        actor = await bench.actor(balance=40_00)
        withdrawal = await bench.withdraw(actor, 15_00)
        seen_during_call: list[list[tuple[str, str, int, str]]] = []

        async def look() -> None:
            seen_during_call.append(await bench.attempts(withdrawal))

        bench["primary"].during["send_pix"] = look
        await bench.advance(withdrawal)
        assert seen_during_call == [[("primary", "send", 1, "ambiguous")]]
        assert await bench.attempts(withdrawal) == [("primary", "send", 1, "succeeded")]

    async def test_a_crash_mid_send_is_resumed_by_asking_first(self, bench: EngineBench) -> None:
        """The process dies while the send is on the wire: the next run finds the payment
        processing at the primary, asks it first, and — the send never arrived — sends it
        again there as try 2, never through another gateway before asking."""
        actor = await bench.actor(balance=40_00)
        withdrawal = await bench.withdraw(actor, 15_00)

        async def crash() -> None:
            raise RuntimeError("worker killed")

        bench["primary"].during["send_pix"] = crash
        with pytest.raises(RuntimeError):
            await bench.advance(withdrawal)
        stranded = await bench.row(withdrawal)
        assert (stranded["status"], stranded["gateway"]) == ("processing", "primary")
        assert await bench.attempts(withdrawal) == [("primary", "send", 1, "ambiguous")]
        done = await bench.advance(withdrawal)
        assert done["status"] == "succeeded"
        assert bench["primary"].calls == ["send_pix", "get_send", "send_pix"]
        assert bench["secondary"].calls == []
        assert await bench.balance(actor) == (25_00, 0)

    async def test_an_unknowable_outcome_goes_to_review_then_settles(
        self, bench: EngineBench
    ) -> None:
        """Sent, unanswered, and the gateway cannot be asked: looked at again later; past
        REVIEW_AFTER_SECONDS needs_review with an alert, the hold kept — and once the gateway
        answers again, the payment settles by itself."""
        primary = bench["primary"]
        primary.script("send_pix", ambiguous(acted=True))
        primary.script("get_send", unavailable(), unavailable())
        actor = await bench.actor(balance=10_00)
        withdrawal = await bench.withdraw(actor, 10_00)
        waiting = await bench.advance(withdrawal)
        assert waiting["status"] == "processing"
        assert waiting["next_attempt_at"] == bench.time.now() + timedelta(
            seconds=bench.settings.send_poll_seconds
        )
        bench.time.advance(bench.settings.review_after_seconds + 1)
        review = await bench.advance(withdrawal)
        assert (review["status"], review["failure_code"]) == ("needs_review", "send_status_unknown")
        assert await bench.alerts(withdrawal) == ["alert.needs_review"]
        assert await bench.balance(actor) == (10_00, 10_00)
        done = await bench.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert primary.count("send_pix") == 1
        assert await bench.balance(actor) == (0, 0)

    async def test_all_gateways_down_fails_and_releases_the_hold(self, bench: EngineBench) -> None:
        """Nothing can send: failed with an alert, and the held money is available again."""
        for name in ("primary", "secondary"):
            bench[name].script("send_pix", unavailable(), unavailable(), unavailable())
        actor = await bench.actor(balance=20_00)
        withdrawal = await bench.withdraw(actor, 20_00)
        failed = await bench.advance(withdrawal)
        assert (failed["status"], failed["failure_code"]) == ("failed", "all_gateways_unavailable")
        assert failed["gateway"] is None  # reported as a deposit's is, though a send was tried
        assert {g for g, *_ in await bench.attempts(withdrawal)} == {"primary", "secondary"}
        assert await bench.alerts(withdrawal) == ["alert.all_gateways_unavailable"]
        assert await bench.balance(actor) == (20_00, 0)

    async def test_a_lost_lease_stops_the_run_mid_flow(
        self, bench: EngineBench, logs: list[MutableMapping[str, Any]]
    ) -> None:
        """The run stalls past its lease and another worker takes the payment over: before
        its next call the run finds the lease gone and stops, touching nothing more; the new
        owner asks the gateway first and finishes the payment."""
        bench["primary"].script("send_pix", unavailable())
        actor = await bench.actor(balance=40_00)
        withdrawal = await bench.withdraw(actor, 15_00)
        taken: list[str] = []

        async def stall_and_lose_the_lease() -> None:
            bench.time.advance(bench.settings.lease_seconds + 1)
            token = await bench.leases.enter(withdrawal, bench.settings.lease_seconds, note=False)
            assert token is not None
            taken.append(token)

        bench["primary"].during["send_pix"] = stall_and_lose_the_lease
        stopped = await bench.advance(withdrawal)
        assert [e["transaction_id"] for e in named(logs, "payments.lease_lost")] == [withdrawal]
        assert bench["primary"].calls == ["send_pix"]
        assert (stopped["status"], stopped["gateway"]) == ("processing", "primary")
        assert await bench.attempts(withdrawal) == [("primary", "send", 1, "unavailable")]
        await bench.leases.leave(withdrawal, taken[0])
        done = await bench.advance(withdrawal)
        assert done["status"] == "succeeded"
        assert bench["primary"].calls == ["send_pix", "get_send", "send_pix"]
        assert await bench.balance(actor) == (25_00, 0)

    async def test_a_second_runner_leaves_a_note_for_the_owner(self, bench: EngineBench) -> None:
        """A job that finds the payment owned returns at once, leaving a note; the owner takes
        one more look as it lets go."""
        actor = await bench.actor(balance=10_00)
        withdrawal = await bench.withdraw(actor, 5_00)
        ttl = bench.settings.lease_seconds
        owner = await bench.leases.enter(withdrawal, ttl, note=False)
        assert owner is not None
        untouched = await bench.advance(withdrawal, poke=True)
        assert untouched["status"] == "pending"
        assert bench["primary"].calls == []
        assert await bench.leases.leave(withdrawal, owner) is True


class TestRefund:
    async def test_partial_then_full(self, bench: EngineBench) -> None:
        """Two refunds of one deposit: partially_refunded, then refunded; the wallet debited
        by each, through the gateway that received the money."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 100_00)
        first = await bench.refund(actor, deposit, 30_00)
        assert await bench.balance(actor) == (100_00, 30_00)
        assert (await bench.advance(first))["status"] == "succeeded"
        parent = await bench.row(deposit)
        assert (parent["status"], parent["refunded_amount"]) == ("partially_refunded", 30_00)
        rest = await bench.refund(actor, deposit)
        assert (await bench.row(rest))["amount"] == 70_00
        done = await bench.advance(rest)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert (await bench.row(deposit))["status"] == "refunded"
        assert await bench.balance(actor) == (0, 0)

    async def test_not_performed_releases_the_hold(self, bench: EngineBench) -> None:
        """The provider reports the refund as not performed: failed, the money spendable
        again, the deposit untouched."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 5_00)
        bench["primary"].refund_status = RefundStatus.FAILED
        refund = await bench.refund(actor, deposit, 1)
        failed = await bench.advance(refund)
        assert (failed["status"], failed["failure_code"]) == ("failed", "refund_not_performed")
        assert failed["gateway"] == "primary"
        parent = await bench.row(deposit)
        assert (parent["status"], parent["refunded_amount"]) == ("succeeded", 0)
        assert await bench.balance(actor) == (5_00, 0)

    async def test_a_refund_that_never_settles_goes_to_review_then_settles(
        self, bench: EngineBench
    ) -> None:
        """Accepted and kept in processing: past REVIEW_AFTER_SECONDS it goes to a human with
        an alert, the hold kept; when the money is returned it succeeds and the deposit shows
        it — the wallet debited once."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 15_00)
        bench["primary"].refund_status = RefundStatus.PROCESSING
        refund = await bench.refund(actor, deposit, 6_00)
        assert (await bench.advance(refund))["status"] == "processing"
        bench.time.advance(bench.settings.review_after_seconds + 1)
        review = await bench.advance(refund)
        assert (review["status"], review["failure_code"]) == ("needs_review", "refund_not_settled")
        assert await bench.alerts(refund) == ["alert.needs_review"]
        assert await bench.balance(actor) == (15_00, 6_00)
        bench["primary"].settle_refund(refund, RefundStatus.SUCCEEDED)
        assert (await bench.advance(refund))["status"] == "succeeded"
        parent = await bench.row(deposit)
        assert (parent["status"], parent["refunded_amount"]) == ("partially_refunded", 6_00)
        assert bench["primary"].count("refund") == 1
        assert await bench.balance(actor) == (9_00, 0)

    async def test_a_timeout_is_asked_about_not_repeated(self, bench: EngineBench) -> None:
        """The provider takes the refund and the answer is lost: the engine finds it by its
        id; exactly one refund exists and the wallet is debited once."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 20_00)
        bench["primary"].script("refund", ambiguous(acted=True))
        refund = await bench.refund(actor, deposit, 8_00)
        assert (await bench.advance(refund))["status"] == "succeeded"
        assert await bench.attempts(refund) == [
            ("primary", "refund", 1, "ambiguous"),
            ("primary", "query", 0, "succeeded"),
        ]
        assert bench["primary"].count("refund") == 1
        parent = await bench.row(deposit)
        assert (parent["status"], parent["refunded_amount"]) == ("partially_refunded", 8_00)
        assert await bench.balance(actor) == (12_00, 0)

    async def test_the_receiving_gateway_down_fails_the_refund_without_fallback(
        self, bench: EngineBench
    ) -> None:
        """A refund has no other gateway: the primary unavailable through every try → failed
        with `alert.refund_failed`, the held money spendable again, the deposit untouched, each
        try on record with its answer — and the healthy secondary never asked."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 12_00)
        bench["primary"].script("refund", unavailable(), unavailable(), unavailable())
        refund = await bench.refund(actor, deposit, 5_00)
        failed = await bench.advance(refund)
        assert (failed["status"], failed["failure_code"]) == ("failed", "gateway_unavailable")
        assert failed["gateway"] == "primary"
        assert await bench.alerts(refund) == ["alert.refund_failed"]
        assert await bench.attempts(refund) == [
            ("primary", "refund", 1, "unavailable"),
            ("primary", "refund", 2, "unavailable"),
            ("primary", "refund", 3, "unavailable"),
        ]
        assert bench["primary"].refunds == {}
        assert bench["secondary"].calls == []
        parent = await bench.row(deposit)
        assert (parent["status"], parent["refunded_amount"]) == ("succeeded", 0)
        assert await bench.balance(actor) == (12_00, 0)

    async def test_more_than_remains_is_refused(self, bench: EngineBench) -> None:
        """A refund above what remains is a 409 (a rule of the deposit's state, not a
        malformed request) that says what remains, and holds nothing."""
        actor = await bench.actor()
        deposit = await bench.received(actor, 10_00)
        with pytest.raises(RefundTooLarge) as refused:
            await bench.refund(actor, deposit, 10_01)
        assert (refused.value.status_code, refused.value.code) == (409, "refund_exceeds_remaining")
        assert refused.value.extra["remaining"] == 10_00
        assert await bench.balance(actor) == (10_00, 0)


class TestAttempts:
    async def test_every_call_is_one_row_with_its_answer(self, bench: EngineBench) -> None:
        """Calls that no state change carried are written as the run ends, with health."""
        actor = await bench.actor()
        deposit = await bench.deposit(actor, 3_00)
        await bench.advance(deposit)
        await bench.advance(deposit)
        assert await bench.attempts(deposit) == [
            ("primary", "charge", 1, "succeeded"),
            ("primary", "query", 0, "succeeded"),
        ]
        async with bench.resources.sessionmaker() as session:
            counts = await repository.attempts_by_operation(session, deposit)
        assert counts == {"charge": {"primary": 1}, "query": {"primary": 1}}
        health = await bench.health.snapshot("primary", "charge")
        assert (health.samples, health.success_rate) == (1, 1.0)


def test_policy_defaults_match_the_settings() -> None:
    """The engine's settings object reads each setting it needs once."""
    from tests.conftest import make_settings

    settings = make_settings(retry_tries_per_gateway=4, ambiguous_query_delay=0.25)
    engine = EngineSettings.from_settings(settings)
    assert engine.retry == RetryPolicy.from_settings(settings)
    assert (engine.retry.tries_per_gateway, engine.retry.query_delay) == (4, 0.25)


class TestCostAwareRouting:
    """Equal health: the payment goes to the gateway expected to charge less for it, and each
    call records that gateway's expected fee."""

    @pytest.fixture
    def priced(self, bench: EngineBench) -> EngineBench:
        return EngineBench(
            bench.resources,
            "primary",
            "secondary",
            fees={"primary": "send=90,charge=0+99bp", "secondary": "send=10,charge=0+149bp"},
        )

    async def test_a_withdrawal_goes_to_the_cheaper_gateway(self, priced: EngineBench) -> None:
        actor = await priced.actor(balance=100_00)
        withdrawal = await priced.withdraw(actor, 40_00)
        done = await priced.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "secondary")
        assert await priced.fees(withdrawal) == [("secondary", "send", 10)]
        assert await priced.balance(actor) == (60_00, 0)

    async def test_a_deposit_goes_by_the_charge_fee_on_its_amount(
        self, priced: EngineBench
    ) -> None:
        """0.99 % of R$ 200 at the primary (198) beats 1.49 % at the secondary (298)."""
        actor = await priced.actor()
        deposit = await priced.deposit(actor, 200_00)
        ready = await priced.advance(deposit)
        assert ready["gateway"] == "primary"
        assert await priced.fees(deposit) == [("primary", "charge", 198)]

    async def test_health_comes_before_price(self, priced: EngineBench) -> None:
        """The cheap gateway is down: the send falls back to the dear one, and each try
        records its own gateway's fee."""
        priced["secondary"].script("send_pix", unavailable(), unavailable(), unavailable())
        actor = await priced.actor(balance=100_00)
        withdrawal = await priced.withdraw(actor, 40_00)
        done = await priced.advance(withdrawal)
        assert (done["status"], done["gateway"]) == ("succeeded", "primary")
        assert await priced.fees(withdrawal) == [
            ("secondary", "send", 10),
            ("secondary", "send", 10),
            ("secondary", "send", 10),
            ("primary", "send", 90),
        ]


class TestLeaseAge:
    """A run renews its lease by its age on the monotonic clock, never by wall time: a clock
    stepped back (NTP) must not make an old lease look fresh."""

    async def test_renewal_follows_the_monotonic_clock(self, bench: EngineBench) -> None:
        actor = await bench.actor(balance=10_00)
        withdrawal = await bench.withdraw(actor, 1_00)
        monotonic = [100.0]
        use = replace(bench.engine.use, monotonic=lambda: monotonic[0])
        token = await bench.leases.enter(withdrawal, bench.settings.lease_seconds, note=False)
        assert token is not None
        run = await Run.start(use, withdrawal, token, leased_at=100.0)
        assert run is not None
        extended: list[str] = []
        original = bench.leases.extend

        async def extend(transaction_id: str, token: str, ttl_seconds: float) -> bool:
            extended.append(transaction_id)
            return await original(transaction_id, token, ttl_seconds)

        bench.leases.extend = extend  # type: ignore[method-assign]  # counts the renewals
        bench.time.advance(-3600)  # the wall clock steps back an hour: no effect on age
        await run.renew()
        assert extended == []  # fresh: no round trip
        monotonic[0] += bench.settings.lease_seconds / 4
        await run.renew()
        assert extended == [withdrawal]  # a quarter of the TTL old: renewed
        await bench.leases.leave(withdrawal, token)

    async def test_a_lost_lease_stops_the_run(self, bench: EngineBench) -> None:
        actor = await bench.actor(balance=10_00)
        withdrawal = await bench.withdraw(actor, 1_00)
        use = replace(bench.engine.use, monotonic=lambda: 1_000.0)
        run = await Run.start(use, withdrawal, "not-the-owner", leased_at=0.0)
        assert run is not None
        with pytest.raises(LeaseLost):
            await run.renew()
