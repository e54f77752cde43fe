"""`pixwave audit`: prove the whole ledger is consistent, or say exactly where it is not.

Each check is one aggregate query, so the audit is cheap enough to run after every test that
moves money and on a schedule in production.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table
from pixwave.ledger.models import (
    AccountKind,
    HoldStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerHold,
    LedgerTransaction,
)
from pixwave.payments.models import Transaction
from pixwave.payments.status import TransactionStatus, TransactionType

A = table(LedgerAccount).c
E = table(LedgerEntry).c
H = table(LedgerHold).c
T = table(LedgerTransaction).c
P = table(Transaction).c

#: How many offending rows a report lists per check before summarising.
SAMPLE = 20


@dataclass
class AuditReport:
    checks: dict[str, int] = field(default_factory=dict)  # check name → offending rows
    problems: list[str] = field(default_factory=list)
    accounts: int = 0
    entries: int = 0
    ledger_transactions: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def _record(self, check: str, rows: list[str]) -> None:
        self.checks[check] = len(rows)
        self.problems.extend(f"{check}: {row}" for row in rows[:SAMPLE])
        if len(rows) > SAMPLE:
            self.problems.append(f"{check}: … and {len(rows) - SAMPLE} more")


async def run_audit(session: AsyncSession) -> AuditReport:
    report = AuditReport()
    report.accounts = int(await session.scalar(select(func.count()).select_from(A.id.table)) or 0)
    report.entries = int(await session.scalar(select(func.count()).select_from(E.id.table)) or 0)
    report.ledger_transactions = int(
        await session.scalar(select(func.count()).select_from(T.id.table)) or 0
    )

    total = int(await session.scalar(select(func.coalesce(func.sum(E.amount), 0))) or 0)
    report._record("ledger_sums_to_zero", [] if total == 0 else [f"all entries sum to {total}"])

    unbalanced = await session.execute(
        select(E.ledger_transaction_id, func.sum(E.amount), func.count())
        .group_by(E.ledger_transaction_id)
        .having(or_(func.sum(E.amount) != 0, func.count() < 2))
    )
    report._record(
        "transaction_balanced",
        [f"{tid} sums to {s} over {n} entries" for tid, s, n in unbalanced],
    )

    empty = await session.execute(
        select(T.id).where(~select(E.id).where(E.ledger_transaction_id == T.id).exists())
    )
    report._record("transaction_has_entries", [f"{tid} has no entries" for (tid,) in empty])

    entry_sum = (
        select(E.account_id, func.sum(E.amount).label("total")).group_by(E.account_id).subquery()
    )
    drift = await session.execute(
        select(A.id, A.posted, func.coalesce(entry_sum.c.total, 0))
        .select_from(A.id.table.outerjoin(entry_sum, entry_sum.c.account_id == A.id))
        .where(A.posted != func.coalesce(entry_sum.c.total, 0))
    )
    report._record(
        "posted_matches_entries",
        [f"{acct} stores posted={p} but its entries sum to {s}" for acct, p, s in drift],
    )

    pending = (
        select(H.account_id, func.sum(H.amount).label("total"))
        .where(H.status == HoldStatus.PENDING)
        .group_by(H.account_id)
        .subquery()
    )
    held_drift = await session.execute(
        select(A.id, A.held, func.coalesce(pending.c.total, 0))
        .select_from(A.id.table.outerjoin(pending, pending.c.account_id == A.id))
        .where(A.held != func.coalesce(pending.c.total, 0))
    )
    report._record(
        "held_matches_pending_holds",
        [f"{acct} stores held={h} but pending holds sum to {s}" for acct, h, s in held_drift],
    )

    overdrawn = await session.execute(
        select(A.id, A.posted, A.held).where(
            and_(A.kind == AccountKind.WALLET, A.allow_negative.is_(False)),
            A.posted - A.held < 0,
        )
    )
    report._record(
        "wallet_not_overdrawn",
        [f"{acct} has available {p - h} (posted {p}, held {h})" for acct, p, h in overdrawn],
    )

    bad_holds = await session.execute(
        select(H.id, H.status, H.ledger_transaction_id).where(
            or_(
                and_(H.status == HoldStatus.POSTED, H.ledger_transaction_id.is_(None)),
                and_(H.status != HoldStatus.POSTED, H.ledger_transaction_id.is_not(None)),
                and_(H.status == HoldStatus.PENDING, H.resolved_at.is_not(None)),
                and_(H.status != HoldStatus.PENDING, H.resolved_at.is_(None)),
                H.amount <= 0,
            )
        )
    )
    report._record(
        "hold_resolved_once",
        [f"{hid} is {st} with ledger transaction {lt}" for hid, st, lt in bad_holds],
    )

    # Each posted hold names the one ledger transaction that posted it (whatever its kind:
    # a cash-out, a refund), and no two holds share one.
    hold_posts = int(
        await session.scalar(
            select(func.count(func.distinct(H.ledger_transaction_id))).where(
                H.status == HoldStatus.POSTED,
                H.ledger_transaction_id.in_(select(T.id)),
            )
        )
        or 0
    )
    posted_holds = int(
        await session.scalar(select(func.count()).where(H.status == HoldStatus.POSTED)) or 0
    )
    report._record(
        "hold_posted_once",
        []
        if hold_posts == posted_holds
        else [f"{hold_posts} hold postings for {posted_holds} posted holds"],
    )

    unposted = await session.execute(
        select(P.id, P.type).where(
            P.type.in_([TransactionType.TRANSFER, TransactionType.ADJUSTMENT]),
            P.status == TransactionStatus.SUCCEEDED,
            P.ledger_transaction_id.is_(None),
        )
    )
    report._record(
        "succeeded_transaction_posted",
        [f"{tid} ({kind}) succeeded without a ledger transaction" for tid, kind in unposted],
    )
    return report
