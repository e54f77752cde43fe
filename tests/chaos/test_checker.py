"""The history checker on hand-made histories: a clean one passes, and each kind of wrong
answer (a duplicate send, a stuck payment, an imbalance …) is caught and named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.chaos.checker import FinalState, Verdict, check
from tests.chaos.history import Exchange, History, Op, WebhookSent

ANA, BIA = "wal_ana", "wal_bia"
DEPOSIT, WITHDRAWAL, REFUND = "txn_01DEPOSIT", "txn_01WITHDRAWAL", "txn_01REFUND"


def op(seq: int, kind: Any, wallet: str, amount: int | None, **extra: Any) -> Op:
    return Op(seq=seq, kind=kind, wallet_id=wallet, amount=amount, key=f"k{seq}", started=1.0,
              acked_at=1.1, status_code=extra.pop("status_code", 202), **extra)  # fmt: skip


def clean() -> tuple[History, FinalState]:
    """Ana is funded R$ 100, deposits R$ 30 (paid at Efí), refunds R$ 10 of it, withdraws
    R$ 20 (sent once by Mercado Pago) and transfers R$ 5 to Bia."""
    history = History(
        ops=[
            op(1, "funding", ANA, 100_00, status_code=201),
            op(2, "deposit", ANA, 30_00, transaction_id=DEPOSIT, paid=True),
            op(3, "refund", ANA, 10_00, transaction_id=REFUND, parent_id=DEPOSIT),
            op(4, "withdrawal", ANA, 20_00, transaction_id=WITHDRAWAL),
            op(5, "transfer", ANA, 5_00, to_wallet_id=BIA, transaction_id="txn_01T",
               status_code=201),
        ]
    )  # fmt: skip
    final = FinalState(
        transactions={
            DEPOSIT: {"status": "partially_refunded", "amount": 30_00},
            REFUND: {"status": "succeeded", "amount": 10_00},
            WITHDRAWAL: {"status": "succeeded", "amount": 20_00},
            "txn_01T": {"status": "succeeded", "amount": 5_00},
        },
        wallets={
            ANA: {"posted": 95_00, "held": 0, "available": 95_00},
            BIA: {"posted": 5_00, "held": 0, "available": 5_00},
        },
        records={
            "efi": [
                record("charge", "txn01DEPOSIT", 30_00),
                record("refund", "txn01REFUND", 10_00, parent="txn01DEPOSIT"),
            ],
            "mercadopago": [record("send", WITHDRAWAL, 20_00)],
        },
    )
    return history, final


def record(
    kind: str, reference: str | None, amount: int, *, parent: str | None = None,
    moved: bool = True, done: bool = True,
) -> dict[str, Any]:  # fmt: skip
    return {"kind": kind, "id": reference, "reference": reference, "parent": parent,
            "amount": amount, "status": "x", "done": done, "moved": moved}  # fmt: skip


def checks(verdict: Verdict) -> set[str]:
    return {v.check for v in verdict.violations}


class TestCleanHistory:
    def test_a_consistent_history_passes(self) -> None:
        """Funding, a paid deposit, a refund, a withdrawal and a transfer that all add up."""
        history, final = clean()
        verdict = check(history, final)
        assert verdict.violations == []
        assert (verdict.requests, verdict.acknowledged, verdict.succeeded) == (4, 4, 4)


class TestDuplicates:
    def test_a_second_send_at_the_other_gateway_is_a_duplicate(self) -> None:
        """The withdrawal was also sent by Efí (a failover after an unanswered send)."""
        history, final = clean()
        final.records["efi"].append(record("send", "txn01WITHDRAWAL", 20_00))
        verdict = check(history, final)
        assert verdict.duplicated == 1
        assert "nothing twice" in checks(verdict)
        assert any(v.subject == WITHDRAWAL for v in verdict.violations)

    def test_a_send_still_processing_counts_as_a_second_send(self) -> None:
        """A send the gateway has not finished may still settle: it counts."""
        history, final = clean()
        final.records["efi"].append(record("send", "txn01WITHDRAWAL", 20_00, moved=False,
                                           done=False))  # fmt: skip
        assert check(history, final).duplicated == 1

    def test_an_unpaid_second_charge_is_counted_not_wrong(self) -> None:
        """A charge in doubt created again at the other gateway, never paid: no money moved
        twice, so no violation, but the run reports it."""
        history, final = clean()
        final.records["mercadopago"].append(record("charge", DEPOSIT, 30_00, moved=False))
        verdict = check(history, final)
        assert (verdict.violations, verdict.extra_charges, verdict.duplicated) == ([], 1, 0)

    def test_both_charges_paid_is_a_duplicate(self) -> None:
        """The deposit's charge was paid at both gateways."""
        history, final = clean()
        final.records["mercadopago"].append(record("charge", DEPOSIT, 30_00))
        verdict = check(history, final)
        assert verdict.duplicated == 1
        assert "nothing twice" in checks(verdict)

    def test_a_refund_made_twice_is_caught(self) -> None:
        """The gateway refunded R$ 10 twice for one succeeded refund."""
        history, final = clean()
        final.records["efi"].append(record("refund", "txn01REFUNDX", 10_00, parent="txn01DEPOSIT"))
        verdict = check(history, final)
        assert verdict.duplicated == 1
        assert "nothing twice" in checks(verdict)

    def test_a_failed_withdrawal_whose_send_settled_is_caught(self) -> None:
        """The money left, yet the wallet got it back: the balance and the send disagree."""
        history, final = clean()
        final.transactions[WITHDRAWAL] = {"status": "failed", "amount": 20_00}
        final.wallets[ANA] = {"posted": 115_00, "held": 0, "available": 115_00}
        verdict = check(history, final)
        assert {"nothing twice", "balances"} <= checks(verdict)


class TestStuck:
    def test_a_withdrawal_still_processing_is_stuck(self) -> None:
        """After the sweep window a payment in flight is stuck."""
        history, final = clean()
        final.transactions[WITHDRAWAL] = {"status": "processing", "amount": 20_00}
        verdict = check(history, final)
        assert verdict.stuck == 1
        assert "none stuck" in checks(verdict)

    def test_a_paid_deposit_never_credited_is_stuck(self) -> None:
        """The payer paid at the gateway; the deposit still awaits payment."""
        history, final = clean()
        final.transactions[DEPOSIT] = {"status": "awaiting_payment", "amount": 30_00}
        verdict = check(history, final)
        assert verdict.stuck == 1

    def test_an_accepted_payment_the_api_does_not_know_is_caught(self) -> None:
        """202 to the client, then nothing behind the id."""
        history, final = clean()
        final.transactions[WITHDRAWAL] = None
        assert "exists" in checks(check(history, final))


class TestBalances:
    def test_a_wallet_a_centavo_off_is_an_imbalance(self) -> None:
        """Posted R$ 95,01 where the history and the gateways say R$ 95,00."""
        history, final = clean()
        final.wallets[ANA] = {"posted": 95_01, "held": 0, "available": 95_01}
        verdict = check(history, final)
        assert verdict.imbalance == 1
        assert "balances" in checks(verdict)

    def test_money_left_held_is_caught(self) -> None:
        history, final = clean()
        final.wallets[BIA] = {"posted": 5_00, "held": 1_00, "available": 4_00}
        assert "balances" in checks(check(history, final))

    def test_a_credit_without_a_paid_charge_is_an_imbalance(self) -> None:
        """The API credited a deposit whose charge nobody paid (e.g. a trusted fake webhook)."""
        history, final = clean()
        final.records["efi"][0] = record("charge", "txn01DEPOSIT", 30_00, moved=False)
        final.records["efi"].pop()  # (so no refund either)
        final.transactions[REFUND] = {"status": "failed", "amount": 10_00}
        final.wallets[ANA] = {"posted": 105_00, "held": 0, "available": 105_00}
        verdict = check(history, final)
        assert verdict.imbalance == 30_00


class TestLedgerAndWebhooks:
    def test_a_failed_audit_is_a_violation(self) -> None:
        history, final = clean()
        final.audit_ok, final.audit_problems = False, ["ledger does not sum to zero"]
        assert "ledger" in checks(check(history, final))

    def test_an_accepted_forged_webhook_is_a_violation(self) -> None:
        history, final = clean()
        history.webhooks.append(WebhookSent("forged", "efi", 1.0, 200, forged=True))
        assert "webhooks" in checks(check(history, final))

    def test_a_rejected_forged_webhook_is_fine(self) -> None:
        history, final = clean()
        history.webhooks.append(WebhookSent("forged", "efi", 1.0, 401, forged=True))
        assert check(history, final).violations == []


class TestHistoryFile:
    def test_a_written_history_reads_back_the_same(self, tmp_path: Path) -> None:
        """The JSON lines `--keep` writes hold every operation, exchange and webhook."""
        history, _ = clean()
        history.exchanges.append(
            Exchange(2, "POST", "/v1/deposits", 1.0, 1.1, None, "ConnectError")
        )
        history.webhooks.append(WebhookSent("late", "efi", 2.0, 200, forged=False))
        history.write(tmp_path / "h.jsonl")
        assert History.read(tmp_path / "h.jsonl") == history


def test_rss_is_judged_on_pixwaves_own_processes() -> None:
    """A database or simulator growing with its data is not a leak; a worker growing is."""
    from tests.chaos.soak import rss_flat

    grown = {"growth_pct": 40.0}
    steady = {"growth_pct": 5.0}
    assert rss_flat({"api": steady, "worker-1": steady, "mariadb": grown, "sim-efi": grown})
    assert not rss_flat({"api": steady, "worker-1": grown, "mariadb": steady})
    assert not rss_flat({"mariadb": steady})  # nothing of PixWave measured proves nothing
