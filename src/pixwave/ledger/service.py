"""Double-entry postings and two-phase holds: the only code that writes ledger rows.

Every movement is one `LedgerTransaction` whose entries sum to zero. Balances live on the
account row and change only here, by conditional UPDATEs taken in account-id order: the debit
guard (`posted - held + delta >= 0`) makes overdrafts impossible without a read-then-write race,
and the fixed lock order keeps two opposite transfers from deadlocking each other.

Writes are queued on the session (`unit_of_work.defer`) and sent together at its next read,
flush or commit, so a refusal (`InsufficientFunds`, `AccountNotFound`, `HoldAlreadyResolved`)
surfaces there; callers that must react in place `await flush(session)`. Nothing here commits:
the caller's unit of work does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, insert, or_, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Update

from pixwave.db import table, utcnow
from pixwave.kit.ids import new_id
from pixwave.ledger.errors import (
    AccountNotFound,
    HoldAlreadyResolved,
    HoldNotFound,
    InsufficientFunds,
    UnbalancedPosting,
)
from pixwave.ledger.models import (
    AccountKind,
    HoldStatus,
    LedgerAccount,
    LedgerEntry,
    LedgerHold,
    LedgerTransaction,
)
from pixwave.observability.metrics import LEDGER_POSTINGS, count_on_commit
from pixwave.unit_of_work import after_commit, defer, flush

ACCOUNTS = table(LedgerAccount)
ENTRIES = table(LedgerEntry)
TRANSACTIONS = table(LedgerTransaction)
HOLDS = table(LedgerHold)


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a ledger transaction: `amount` > 0 credits the account, < 0 debits it."""

    account_id: str
    amount: int


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    posted: int
    held: int

    @property
    def available(self) -> int:
        return self.posted - self.held


@dataclass(frozen=True, slots=True)
class _Change:
    account_id: str
    posted: int
    held: int
    wallet_only: bool = False


_c = ACCOUNTS.c


def _change_statement(*, guarded: bool, wallet_only: bool) -> Update:
    """`posted += dp, held += dh`, optionally refusing to lower `available` below zero and
    optionally matching only wallets (so a transfer cannot credit a system account)."""
    conditions = [_c.id == bindparam("acct")]
    if guarded:
        conditions.append(
            or_(
                _c.allow_negative == true(),
                _c.posted - _c.held + bindparam("dp") - bindparam("dh") >= 0,
            )
        )
    if wallet_only:
        conditions.append(_c.kind == AccountKind.WALLET.value)
    return (
        update(ACCOUNTS)
        .where(*conditions)
        .values(posted=_c.posted + bindparam("dp"), held=_c.held + bindparam("dh"))
    )


_CHANGES = {
    (guarded, wallet_only): _change_statement(guarded=guarded, wallet_only=wallet_only)
    for guarded in (False, True)
    for wallet_only in (False, True)
}
_INSERT_TRANSACTION = insert(TRANSACTIONS)
_INSERT_ENTRY = insert(ENTRIES)
_INSERT_HOLD = insert(HOLDS)
_RESOLVE_HOLD = (
    update(HOLDS)
    .where(HOLDS.c.id == bindparam("hold"), HOLDS.c.status == HoldStatus.PENDING)
    .values(
        status=bindparam("status"),
        ledger_transaction_id=bindparam("ltx"),
        resolved_at=bindparam("at"),
    )
)


def _explain_miss(account_id: str, *, wallet_only: bool) -> Callable[[Connection], Exception]:
    """A change matched no row: either the account (or wallet) is missing or the money is."""

    def explain(connection: Connection) -> Exception:
        query = select(_c.id).where(_c.id == account_id)
        if wallet_only:
            query = query.where(_c.kind == AccountKind.WALLET.value)
        if connection.execute(query).first() is None:
            return AccountNotFound(f"ledger account {account_id} does not exist")
        return InsufficientFunds(
            "the available balance does not cover this amount", wallet_id=account_id
        )

    return explain


def _apply(session: AsyncSession, changes: Sequence[_Change]) -> None:
    """Queue balance moves in account-id order; a change that lowers `available` is guarded."""
    for change in sorted(changes, key=lambda c: c.account_id):
        if change.posted == 0 and change.held == 0:
            continue
        lowers_available = change.posted - change.held < 0
        defer(
            session,
            _CHANGES[lowers_available, change.wallet_only],
            {"acct": change.account_id, "dp": change.posted, "dh": change.held},
            expect_rowcount=1,
            on_mismatch=_explain_miss(change.account_id, wallet_only=change.wallet_only),
        )


def _check_balanced(entries: Sequence[Posting]) -> None:
    if len(entries) < 2:
        raise UnbalancedPosting("a ledger transaction needs at least two entries")
    for entry in entries:
        if type(entry.amount) is not int or entry.amount == 0:
            raise UnbalancedPosting(f"entry amounts must be non-zero int centavos: {entry!r}")
    total = sum(e.amount for e in entries)
    if total != 0:
        raise UnbalancedPosting(f"entries sum to {total}, not 0")


def _write_entries(
    session: AsyncSession,
    *,
    kind: str,
    entries: Sequence[Posting],
    reference: str | None,
    description: str,
) -> str:
    now = utcnow()
    ledger_transaction_id = new_id("ltx")
    count_on_commit(session, LEDGER_POSTINGS.labels(kind))
    defer(
        session,
        _INSERT_TRANSACTION,
        {
            "id": ledger_transaction_id,
            "kind": kind,
            "reference": reference,
            "description": description[:255],
            "created_at": now,
        },
    )
    for entry in entries:
        defer(
            session,
            _INSERT_ENTRY,
            {
                "id": new_id("len"),
                "ledger_transaction_id": ledger_transaction_id,
                "account_id": entry.account_id,
                "amount": entry.amount,
                "created_at": now,
            },
        )
    return ledger_transaction_id


async def post(
    session: AsyncSession,
    *,
    kind: str,
    entries: Sequence[Posting],
    reference: str | None = None,
    description: str = "",
    wallets_only: bool = False,
    locked: LockedAccounts | None = None,
) -> str:
    """Write one balanced ledger transaction and move the balances; return its id.

    With `wallets_only`, every account must be a user wallet (an internal transfer), checked by
    the balance update itself rather than by an extra query. Like every ledger write, this is
    queued: a refusal surfaces at the session's next flush (see `unit_of_work`) — or here, at
    once, for a posting of a group whose accounts are ``locked`` (its balances move in
    :meth:`LockedAccounts.finish`).
    """
    _check_balanced(entries)
    net: dict[str, int] = defaultdict(int)
    for entry in entries:
        net[entry.account_id] += entry.amount
    if locked is not None:
        locked.apply(net, wallets_only=wallets_only)
    else:
        _apply(session, [_Change(acct, amount, 0, wallets_only) for acct, amount in net.items()])
    return _write_entries(
        session, kind=kind, entries=entries, reference=reference, description=description
    )


_LOCK_ACCOUNTS = (
    select(_c.id, _c.kind, _c.posted, _c.held, _c.allow_negative)
    .where(_c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_c.id)
    .with_for_update()
)


@dataclass(slots=True)
class _Locked:
    is_wallet: bool
    available: int
    allow_negative: bool
    delta: int = 0  # posted
    held: int = 0


class LockedAccounts:
    """Accounts locked once for a group of payments (see `kit.groupcommit`): each payment's
    guard is applied here, in memory and in arrival order, and the net balance moves are queued
    once for the whole group by :meth:`finish`.

    The queued moves keep the database's own guard, so even a wrong sum here could only make the
    group fail (and its payments run one by one), never overdraw an account.
    """

    def __init__(self, rows: Sequence[tuple[str, str, int, int, bool]]) -> None:
        self._accounts = {
            account_id: _Locked(kind == AccountKind.WALLET.value, posted - held, allow_negative)
            for account_id, kind, posted, held, allow_negative in rows
        }
        #: (account, posted, held) moved by each payment, for :meth:`rewind`.
        self._journal: list[tuple[_Locked, int, int]] = []

    def mark(self) -> int:
        return len(self._journal)

    def rewind(self, to: int) -> None:
        """Undo the moves applied since :meth:`mark` (a payment refused after its posting)."""
        while len(self._journal) > to:
            account, posted, held = self._journal.pop()
            account.available -= posted - held
            account.delta -= posted
            account.held -= held

    def apply(self, net: Mapping[str, int], *, wallets_only: bool) -> None:
        """Move the balances by one posting's net amounts, or raise having moved nothing: the
        same refusals, in the same order of preference, as the guarded updates of :func:`post`."""
        found: list[tuple[str, _Locked, int]] = []
        for account_id in sorted(net):
            account = self._accounts.get(account_id)
            if account is None or (wallets_only and not account.is_wallet):
                raise AccountNotFound(f"ledger account {account_id} does not exist")
            found.append((account_id, account, net[account_id]))
        for account_id, account, amount in found:
            if amount < 0 and not account.allow_negative and account.available + amount < 0:
                raise InsufficientFunds(
                    "the available balance does not cover this amount", wallet_id=account_id
                )
        for _account_id, account, amount in found:
            account.available += amount
            account.delta += amount
            self._journal.append((account, amount, 0))

    def hold(self, account_id: str, amount: int) -> None:
        """Reserve ``amount`` of the account's available balance, or raise having reserved
        nothing: the refusals of :func:`create_hold`'s guarded update."""
        account = self._accounts.get(account_id)
        if account is None:
            raise AccountNotFound(f"ledger account {account_id} does not exist")
        if not account.allow_negative and account.available - amount < 0:
            raise InsufficientFunds(
                "the available balance does not cover this amount", wallet_id=account_id
            )
        account.available -= amount
        account.held += amount
        self._journal.append((account, 0, amount))

    def finish(self, session: AsyncSession) -> None:
        """Queue each account's net move for the whole group (in account-id order)."""
        _apply(
            session,
            [_Change(account_id, a.delta, a.held) for account_id, a in self._accounts.items()],
        )


async def lock_accounts(session: AsyncSession, account_ids: Sequence[str]) -> LockedAccounts:
    """Lock the accounts a group of payments touches, in id order (the order every other ledger
    write takes its row locks in, so groups and single payments never deadlock each other)."""
    rows = await session.execute(_LOCK_ACCOUNTS, {"ids": sorted(set(account_ids))})
    return LockedAccounts(
        [(r.id, r.kind, int(r.posted), int(r.held), bool(r.allow_negative)) for r in rows]
    )


async def create_hold(
    session: AsyncSession,
    *,
    account_id: str,
    amount: int,
    reference: str | None = None,
    locked: LockedAccounts | None = None,
) -> str:
    """Reserve `amount` of the account's available balance; return the hold id. With
    ``locked`` (a group commit's accounts), the reservation is judged there, in memory, and
    written with the group's net moves."""
    if type(amount) is not int or amount <= 0:
        raise UnbalancedPosting(f"a hold needs a positive int amount, got {amount!r}")
    if locked is None:
        _apply(session, [_Change(account_id, 0, amount)])
    else:
        locked.hold(account_id, amount)
    hold_id = new_id("hld")
    defer(
        session,
        _INSERT_HOLD,
        {
            "id": hold_id,
            "account_id": account_id,
            "amount": amount,
            "status": HoldStatus.PENDING,
            "reference": reference,
            "created_at": utcnow(),
        },
    )
    return hold_id


async def _lock_pending_hold(session: AsyncSession, hold_id: str) -> tuple[str, int]:
    """Lock a hold row and insist it is still pending; return (account, amount)."""
    row = (
        await session.execute(
            select(HOLDS.c.account_id, HOLDS.c.amount, HOLDS.c.status)
            .where(HOLDS.c.id == hold_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    if row.status != HoldStatus.PENDING:
        raise HoldAlreadyResolved(f"hold {hold_id} is already {row.status}")
    return row.account_id, int(row.amount)


def _resolve_hold(
    session: AsyncSession, hold_id: str, status: HoldStatus, ledger_transaction_id: str | None
) -> None:
    """Pending → final, guarded by the status so a second resolution can never land."""
    defer(
        session,
        _RESOLVE_HOLD,
        {"hold": hold_id, "status": status, "ltx": ledger_transaction_id, "at": utcnow()},
        expect_rowcount=1,
        on_mismatch=lambda _c: HoldAlreadyResolved(f"hold {hold_id} was resolved concurrently"),
    )


async def post_hold(
    session: AsyncSession,
    *,
    hold_id: str,
    to_account_id: str,
    kind: str,
    reference: str | None = None,
    description: str = "",
) -> str:
    """Turn a pending hold into a posted debit to `to_account_id`; at most once per hold."""
    account_id, amount = await _lock_pending_hold(session, hold_id)
    # The debit was reserved when the hold was created: posted and held fall together.
    _apply(session, [_Change(account_id, -amount, -amount), _Change(to_account_id, amount, 0)])
    ledger_transaction_id = _write_entries(
        session,
        kind=kind,
        entries=[Posting(account_id, -amount), Posting(to_account_id, amount)],
        reference=reference or hold_id,
        description=description,
    )
    _resolve_hold(session, hold_id, HoldStatus.POSTED, ledger_transaction_id)
    return ledger_transaction_id


async def void_hold(session: AsyncSession, *, hold_id: str) -> None:
    """Release a pending hold without moving money; at most once per hold."""
    account_id, amount = await _lock_pending_hold(session, hold_id)
    _apply(session, [_Change(account_id, 0, -amount)])
    _resolve_hold(session, hold_id, HoldStatus.VOIDED, None)


async def get_balance(session: AsyncSession, account_id: str) -> Balance:
    row = (
        await session.execute(select(_c.posted, _c.held).where(_c.id == account_id))
    ).one_or_none()
    if row is None:
        raise AccountNotFound(f"ledger account {account_id} does not exist")
    return Balance(account_id, int(row.posted), int(row.held))


async def open_account(
    session: AsyncSession,
    *,
    kind: AccountKind,
    user_id: str | None = None,
    code: str | None = None,
    allow_negative: bool = False,
    currency: str = "BRL",
) -> str:
    prefix = "wal" if kind is AccountKind.WALLET else "sys"
    account_id = new_id(prefix)
    await session.execute(
        insert(ACCOUNTS).values(
            id=account_id,
            kind=kind,
            code=code,
            user_id=user_id,
            currency=currency,
            posted=0,
            held=0,
            allow_negative=allow_negative,
            created_at=utcnow(),
        )
    )
    return account_id


#: System account ids by (database, code), learned once a transaction that saw them committed:
#: they never change or go away, and every credit and payout needs one.
_SYSTEM_ACCOUNTS: dict[tuple[str, str], str] = {}


def forget_system_accounts() -> None:
    """For tests that empty the tables under a running process."""
    _SYSTEM_ACCOUNTS.clear()


async def system_account(session: AsyncSession, code: str) -> str:
    """The id of the system account named `code`, opened on first use.

    System accounts may go negative: they mirror money that lives outside PixWave (what the
    operator injected by adjustment, what sits at a gateway). Known ids cost no query — nor the
    flush of queued writes a query forces.
    """
    bind = session.bind
    engine = bind if bind is None or isinstance(bind, AsyncEngine) else bind.engine
    key = ("" if engine is None else str(engine.url), code)
    known = _SYSTEM_ACCOUNTS.get(key)
    if known is not None:
        return known
    account_id = await _find_or_open_system_account(session, code)

    async def remember() -> None:
        _SYSTEM_ACCOUNTS[key] = account_id

    after_commit(session, remember)
    return account_id


async def _find_or_open_system_account(session: AsyncSession, code: str) -> str:
    found = await session.scalar(select(_c.id).where(_c.code == code))
    if found is not None:
        return str(found)
    # Opened in a savepoint so a concurrent opener's unique-code win is simply re-read.
    await flush(session)
    try:
        async with session.begin_nested():
            return await open_account(
                session, kind=AccountKind.SYSTEM, code=code, allow_negative=True
            )
    except IntegrityError:
        # A locking read: under REPEATABLE READ a plain one would answer from this
        # transaction's snapshot, taken before the winner committed, and find nothing.
        found = await session.scalar(
            select(_c.id).where(_c.code == code).with_for_update(read=True)
        )
        if found is None:  # the winner's row is committed, or the insert would not conflict
            raise
        return str(found)
