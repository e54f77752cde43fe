"""The history checker: from what the clients were told and what the system and the gateways
ended with, prove that no money was lost, made up or moved twice.

Inputs are plain data (so the checker is tested on hand-made histories):

- the :class:`History` of operations (who asked for what, what the API acknowledged);
- the :class:`FinalState`: every acknowledged transaction as the API shows it, every wallet's
  balance, every money movement the simulators recorded (`GET /_sandbox/records`) and the
  ledger audit.

What it proves, each check an exact comparison of integer centavos:

1. **exists**: every operation the API accepted (2xx with an id) is readable through the API,
   with the amount asked for.
2. **none stuck**: by the end of the sweep window no accepted payment is `pending`,
   `processing` or `needs_review`; a deposit whose charge the payer paid is credited.
3. **nothing twice**: per deposit at most one paid charge across both gateways; per
   withdrawal at most one send across both gateways that did not fail; a succeeded
   withdrawal has exactly one settled send and a failed one none; per deposit the refunds the
   gateways made equal the succeeded refund transactions (count and amounts).
4. **balances**: each wallet's posted balance equals funding + paid charges − gateway refunds
   − settled sends ± acknowledged transfers, all taken from the history and the gateways'
   records (not from the API's own statuses); nothing is left held.
5. **ledger**: `pixwave audit` finds the ledger balanced.
6. **webhooks**: no forged notification was accepted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from pixwave.gateways.pixapi.connector import transaction_id_of
from tests.chaos.history import History, Op

IN_FLIGHT = frozenset({"pending", "processing", "needs_review"})
CREDITED = frozenset({"succeeded", "partially_refunded", "refunded"})


@dataclass
class FinalState:
    #: transaction id → the API's `GET /v1/transactions/{id}` body (None: not found).
    transactions: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: wallet id → {"posted", "held", "available"}.
    wallets: dict[str, dict[str, int]] = field(default_factory=dict)
    #: gateway → its `/_sandbox/records`.
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    audit_ok: bool = True
    audit_problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    requests: int = 0
    acknowledged: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    stuck: int = 0
    duplicated: int = 0
    imbalance: int = 0  # centavos, summed over wallets (absolute)
    unacknowledged: int = 0
    #: deposits with charges at more than one gateway, none of them paid twice: a charge in
    #: doubt is created again elsewhere by design (payments/retry.py); reported, not wrong.
    extra_charges: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, check: str, subject: str, detail: str) -> None:
        self.violations.append(Violation(check, subject, detail))


def our_id(reference: str | None) -> str | None:
    """The transaction id a simulator's record refers to (MP keeps ours as is; Efí's ids
    are ours without the underscore)."""
    if reference is None:
        return None
    if reference.startswith("txn_"):
        return reference
    return transaction_id_of(reference)


@dataclass
class Movements:
    """The gateways' records, grouped by our transaction ids."""

    charges: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    sends: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    #: deposit id → refunds made against its charge.
    refunds: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    unknown: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, records: dict[str, list[dict[str, Any]]]) -> Movements:
        found = cls()
        for gateway, items in records.items():
            for record in items:
                item = {**record, "gateway": gateway}
                kind = record["kind"]
                key = our_id(record["parent"] if kind == "refund" else record["reference"])
                if key is None:
                    found.unknown.append(item)
                elif kind == "charge":
                    found.charges[key].append(item)
                elif kind == "send":
                    found.sends[key].append(item)
                else:
                    found.refunds[key].append(item)
        return found


def check(history: History, final: FinalState) -> Verdict:
    verdict = Verdict()
    moved = Movements.of(final.records)
    ops = [op for op in history.ops if op.kind != "funding"]
    verdict.requests = len(ops)
    verdict.acknowledged = sum(op.acked for op in ops)
    verdict.unacknowledged = verdict.requests - verdict.acknowledged
    for op in ops:
        _outcome(op, final, verdict)
    _exists_and_stuck(ops, final, moved, verdict)
    _twice(ops, final, moved, verdict)
    _balances(history, final, moved, verdict)
    if not final.audit_ok:
        verdict.add("ledger", "audit", "; ".join(final.audit_problems) or "unbalanced")
    for sent in history.webhooks:
        if sent.forged and sent.status is not None and 200 <= sent.status < 300:
            verdict.add("webhooks", sent.gateway, f"a forged notification got {sent.status}")
    for record in moved.unknown:
        verdict.add("nothing twice", record["gateway"], f"a movement of no transaction: {record}")
    return verdict


def _outcome(op: Op, final: FinalState, verdict: Verdict) -> None:
    """Count the operation as succeeded or failed (by reason) from the final state."""
    if not op.acked:
        verdict.failed["unacknowledged"] += 1
        return
    if not op.accepted:
        verdict.failed[f"{op.status_code} {op.problem or ''}".strip()] += 1
        return
    body = final.transactions.get(op.transaction_id or "")
    status = body["status"] if body else "missing"
    if status in CREDITED or (op.kind == "deposit" and status == "awaiting_payment"):
        verdict.succeeded += 1
    else:
        reason = (body or {}).get("failure_code") or status
        verdict.failed[f"{op.kind} {reason}"] += 1


def _exists_and_stuck(ops: list[Op], final: FinalState, moved: Movements, verdict: Verdict) -> None:
    for op in ops:
        if not op.accepted:
            continue
        if op.transaction_id is None:
            verdict.add("exists", f"op {op.seq}", f"{op.kind} accepted without an id")
            continue
        body = final.transactions.get(op.transaction_id)
        if body is None:
            verdict.add("exists", op.transaction_id, f"accepted {op.kind} not found")
            continue
        if op.amount is not None and body["amount"] != op.amount:
            verdict.add("exists", op.transaction_id, f"amount {body['amount']} ≠ {op.amount}")
        status = body["status"]
        paid = any(c["moved"] for c in moved.charges.get(op.transaction_id, []))
        if status in IN_FLIGHT or (op.kind == "deposit" and paid and status not in CREDITED):
            verdict.stuck += 1
            verdict.add("none stuck", op.transaction_id, f"{op.kind} still {status}")


def _twice(ops: list[Op], final: FinalState, moved: Movements, verdict: Verdict) -> None:
    by_id = {op.transaction_id: op for op in ops if op.transaction_id}
    for deposit_id, charges in moved.charges.items():
        paid = [c for c in charges if c["moved"]]
        if len(charges) > 1:
            verdict.extra_charges += 1
        if len(paid) > 1 or any(c.get("payments", 1) > 1 for c in paid):
            verdict.duplicated += 1
            verdict.add("nothing twice", deposit_id, f"charged {len(paid)} times: {paid}")
        op = by_id.get(deposit_id)
        for charge in paid:
            if op is not None and op.amount is not None and charge["amount"] != op.amount:
                verdict.add("nothing twice", deposit_id, f"charge of {charge['amount']}")
    for op in ops:
        if op.kind != "withdrawal" or op.transaction_id is None:
            continue
        sends = moved.sends.get(op.transaction_id, [])
        live = [s for s in sends if s["moved"] or not s["done"]]
        if len(live) > 1:
            verdict.duplicated += 1
            verdict.add("nothing twice", op.transaction_id, f"sent {len(live)} times: {live}")
        status = (final.transactions.get(op.transaction_id) or {}).get("status")
        settled = [s for s in sends if s["moved"]]
        if status == "succeeded" and len(settled) != 1:
            verdict.add("nothing twice", op.transaction_id, f"succeeded with {len(settled)} sends")
        if status == "failed" and settled:
            verdict.add("nothing twice", op.transaction_id, "failed, yet a send settled")
        for send in settled:
            if send["amount"] != op.amount:
                verdict.add("nothing twice", op.transaction_id, f"sent {send['amount']}")
    refunds_of: dict[str, list[int]] = defaultdict(list)
    for op in ops:
        body = final.transactions.get(op.transaction_id or "") if op.kind == "refund" else None
        if body is not None and body["status"] == "succeeded" and op.parent_id is not None:
            refunds_of[op.parent_id].append(int(body["amount"]))
    for deposit_id in set(refunds_of) | set(moved.refunds):
        made = sorted(r["amount"] for r in moved.refunds.get(deposit_id, []) if r["moved"])
        asked = sorted(refunds_of.get(deposit_id, []))
        if made != asked:
            if len(made) > len(asked):
                verdict.duplicated += 1
            verdict.add("nothing twice", deposit_id, f"gateway refunds {made} ≠ succeeded {asked}")


def _balances(history: History, final: FinalState, moved: Movements, verdict: Verdict) -> None:
    expected: Counter[str] = Counter()
    deposit_wallet: dict[str, str] = {}
    for op in history.ops:
        if not op.accepted:
            continue
        if op.kind == "funding":
            expected[op.wallet_id] += op.amount or 0
        elif op.kind == "transfer":
            expected[op.wallet_id] -= op.amount or 0
            expected[op.to_wallet_id or ""] += op.amount or 0
        elif op.kind == "deposit" and op.transaction_id:
            deposit_wallet[op.transaction_id] = op.wallet_id
            paid = [c for c in moved.charges.get(op.transaction_id, []) if c["moved"]]
            expected[op.wallet_id] += sum(c["amount"] for c in paid[:1])
        elif op.kind == "withdrawal" and op.transaction_id:
            sends = [s for s in moved.sends.get(op.transaction_id, []) if s["moved"]]
            expected[op.wallet_id] -= sum(s["amount"] for s in sends)
    for deposit_id, refunds in moved.refunds.items():
        wallet = deposit_wallet.get(deposit_id)
        if wallet is not None:
            expected[wallet] -= sum(r["amount"] for r in refunds if r["moved"])
    for wallet_id in set(expected) | set(final.wallets):
        balance = final.wallets.get(wallet_id)
        if balance is None:
            verdict.add("balances", wallet_id, "wallet not readable")
            continue
        want = expected[wallet_id]
        if balance["posted"] != want:
            verdict.imbalance += abs(balance["posted"] - want)
            verdict.add("balances", wallet_id, f"posted {balance['posted']} ≠ expected {want}")
        if balance["held"] != 0:
            verdict.add("balances", wallet_id, f"{balance['held']} still held")
