"""Deferred writes: queue a unit of work's writes and send them in one round trip.

A transfer is about ten INSERT/UPDATE statements. Sent one by one through a pure-Python async
driver, the round trips — not the database — dominate the cost. Writes queued with `defer` are
sent together just before the next read, savepoint or commit of the same session: on MySQL and
MariaDB as one multi-statement round trip, elsewhere (SQLite) one by one. Each queued write may
carry an expectation on its matched-row count (the ledger's guarded debits, a hold's
compare-and-set); a miss raises the error the caller chose, and the whole unit of work rolls back
as if the statement had failed on its own.

Ordering is preserved, so lock order (ledger accounts by id) is unchanged; reads always see the
unit of work's own earlier writes, because any statement executed through the session flushes
the queue first (`do_orm_execute`), and so does commit (`before_commit`).

When several expectations of one send miss, the caller hears about a missing resource
(`NotFound`) before any other refusal, whatever the statements' order: a transfer to a wallet
that does not exist is "not found", not "insufficient funds", even when the payer's debit (taken
first, in account-id order) also failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import structlog
from pymysql.constants import CLIENT
from pymysql.err import IntegrityError as MySQLIntegrityError
from pymysql.err import MySQLError
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import Executable, Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import await_only

from pixwave.exceptions import NotFound

#: What MySQL engines are opened with: matched (not changed) row counts, multi-statement sends.
MYSQL_CLIENT_FLAGS = CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS

_PENDING = "pixwave.deferred"
_GROUPED = "pixwave.grouped_inserts"
_AFTER_COMMIT = "pixwave.after_commit"
_COMMITTED = "pixwave.committed_callbacks"
_MAX_COMPILED = 512

log = structlog.get_logger("pixwave.unit_of_work")


@dataclass(frozen=True, slots=True)
class _Write:
    statement: Executable
    params: dict[str, Any]
    expect_rowcount: int | None
    #: Builds the error for a row-count miss; may query through the connection to explain it.
    on_mismatch: Callable[[Connection], Exception] | None


def defer(
    session: AsyncSession,
    statement: Executable,
    params: dict[str, Any],
    *,
    expect_rowcount: int | None = None,
    on_mismatch: Callable[[Connection], Exception] | None = None,
) -> None:
    """Queue a write. `statement` must be a module-level constant (its compiled form is cached)."""
    sync_session = session.sync_session
    if not sync_session.in_transaction():
        # Tie the queue to a transaction, so a rollback of that transaction forgets it.
        sync_session.begin()
    pending = sync_session.info.setdefault(_PENDING, [])
    pending.append(_Write(statement, params, expect_rowcount, on_mismatch))


def group_inserts(session: AsyncSession) -> None:
    """Send this transaction's queued plain INSERTs as one multi-row INSERT per statement.

    For a group commit (`kit.groupcommit`, `payments.engine.batch`), which queues the same few
    inserts for many payments: the server parses one statement per table instead of one per
    row. The inserts go first, grouped by statement in the order each statement was first
    queued — so a parent row (a ledger transaction) still goes before its children (its
    entries) and before an update that points at it (a credited transaction's ledger
    transaction); the writes that carry an expectation (balance moves, compare-and-sets)
    follow, in their order. A group has checked its guards in memory already, so a missed
    expectation is the exception, and fails the group.
    """
    sync_session = session.sync_session
    if not sync_session.in_transaction():
        sync_session.begin()
    sync_session.info[_GROUPED] = True


def mark(session: AsyncSession) -> tuple[int, int]:
    """Where the queue of writes and after-commit callbacks stands now (see :func:`rewind`)."""
    info = session.sync_session.info
    return len(info.get(_PENDING, ())), len(info.get(_AFTER_COMMIT, ()))


def rewind(session: AsyncSession, to: tuple[int, int]) -> None:
    """Forget what was queued since :func:`mark`: one payment of a group that was refused
    leaves nothing behind, and the others still commit."""
    info = session.sync_session.info
    del info.get(_PENDING, [])[to[0] :]
    del info.get(_AFTER_COMMIT, [])[to[1] :]


async def flush(session: AsyncSession) -> None:
    """Send queued writes now (needed before a savepoint, or to see a refusal early)."""
    if session.sync_session.info.get(_PENDING):
        await session.run_sync(_flush)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once the current transaction commits; forget it if it rolls back.

    This is how a job is enqueued "after commit": a worker must never look for a row that
    is not visible yet, nor run for a write that was rolled back. Callbacks run in
    :func:`flush_and_commit`; a failing one is logged, never raised — the reconciliation sweep
    re-drives anything whose job was lost.
    """
    sync_session = session.sync_session
    if not sync_session.in_transaction():
        sync_session.begin()
    sync_session.info.setdefault(_AFTER_COMMIT, []).append(callback)


async def flush_and_commit(session: AsyncSession) -> None:
    """Send the queue and commit in one hop into SQLAlchemy's sync core (one greenlet, not two),
    then run the after-commit callbacks.

    A refusal from the queue (a missed expectation) is raised before COMMIT is sent.
    """
    await session.run_sync(_flush_then_commit)
    callbacks: list[Callable[[], Awaitable[None]]] = session.sync_session.info.pop(_COMMITTED, [])
    for callback in callbacks:
        try:
            await callback()
        except Exception as exc:  # the sweep re-drives; a commit already happened
            log.warning("unit_of_work.after_commit_failed", error=repr(exc))


def _flush_then_commit(session: Session) -> None:
    _flush(session)
    session.commit()


def _flush(session: Session) -> None:
    pending: list[_Write] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    inserts: list[list[_Write]] = []
    if session.info.get(_GROUPED):
        pending, inserts = _split_inserts(pending)
    if connection.dialect.name == "mysql" and _multi_statements(connection):
        _send_together(connection, pending, inserts)
        return
    counts: list[int] = []
    try:
        for rows in inserts:
            connection.execute(rows[0].statement, [write.params for write in rows])
        for write in pending:
            counts.append(int(connection.execute(write.statement, write.params).rowcount))
    except exc.DBAPIError:
        _check_all(connection, pending, counts)  # a missed expectation is the real cause
        raise
    _check_all(connection, pending, counts)


def _split_inserts(pending: Sequence[_Write]) -> tuple[list[_Write], list[list[_Write]]]:
    """The writes with an expectation, and the plain INSERTs grouped by (statement, columns)."""
    checked: list[_Write] = []
    groups: dict[tuple[Executable, tuple[str, ...]], list[_Write]] = {}
    for write in pending:
        if write.expect_rowcount is None and isinstance(write.statement, Insert):
            groups.setdefault((write.statement, tuple(sorted(write.params))), []).append(write)
        else:
            checked.append(write)
    return checked, list(groups.values())


def _check_all(connection: Connection, writes: Sequence[_Write], counts: Sequence[int]) -> None:
    """Raise for the missed expectations among ``writes`` (``counts`` may be shorter: the
    statements that ran), preferring a missing resource to any other refusal."""
    errors = [
        _mismatch(connection, write, count)
        for write, count in zip(writes, counts, strict=False)
        if write.expect_rowcount is not None and count != write.expect_rowcount
    ]
    if errors:
        raise next((e for e in errors if isinstance(e, NotFound)), errors[0])


def _mismatch(connection: Connection, write: _Write, count: int) -> Exception:
    if write.on_mismatch is not None:
        return write.on_mismatch(connection)
    return RuntimeError(f"expected {write.expect_rowcount} row(s), matched {count}")


def _multi_statements(connection: Connection) -> bool:
    driver = connection.connection.driver_connection
    return bool(getattr(driver, "client_flag", 0) & CLIENT.MULTI_STATEMENTS)


_compiled: dict[tuple[Executable, str, tuple[str, ...]], SQLCompiler] = {}


def _compile(statement: Executable, connection: Connection, keys: tuple[str, ...]) -> SQLCompiler:
    cache_key = (statement, connection.dialect.name, keys)
    compiled = _compiled.get(cache_key)
    if compiled is None:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        compiled = cast(
            SQLCompiler,
            statement.compile(dialect=connection.dialect, column_keys=list(keys)),  # type: ignore[attr-defined]
        )
        _compiled[cache_key] = compiled
    return compiled


def _driver_values(compiled: SQLCompiler, params: dict[str, Any]) -> list[Any]:
    """Parameter values in placeholder order, through each type's bind processor."""
    values = compiled.construct_params(params)
    processors = compiled._bind_processors  # the same processors SQLAlchemy itself applies
    out: list[Any] = []
    for name in compiled.positiontup or ():
        value = values[name]
        processor = processors.get(name)
        out.append(processor(value) if callable(processor) else value)
    return out


def _send_together(
    connection: Connection, pending: Sequence[_Write], inserts: Sequence[Sequence[_Write]] = ()
) -> None:
    """One multi-statement round trip, then each statement's matched-row expectation.

    ``inserts`` (see :func:`group_inserts`) go before ``pending``, one multi-row INSERT each.
    When a statement fails, the server skips the rest; a missed expectation before it is the
    real cause (a debit to a missing account fails its guard before its entry's foreign key),
    so it is reported first.
    """
    parts: list[str] = []
    args: list[Any] = []
    for rows in inserts:
        compiled = _compile(rows[0].statement, connection, tuple(sorted(rows[0].params)))
        head, _, values = compiled.string.rpartition(" VALUES ")
        parts.append(f"{head} VALUES {', '.join([values] * len(rows))}")
        for write in rows:
            args.extend(_driver_values(compiled, write.params))
    for write in pending:
        compiled = _compile(write.statement, connection, tuple(sorted(write.params)))
        parts.append(compiled.string)
        args.extend(_driver_values(compiled, write.params))
    sql = ";\n".join(parts)
    driver = connection.connection.driver_connection
    assert driver is not None, "a live connection always has its driver connection"
    cursor = await_only(driver.cursor())
    counts: list[int] = []
    try:
        await_only(cursor.execute(sql, args))
        counts.append(int(cursor.rowcount))
        for _ in parts[1:]:
            await_only(cursor.nextset())
            counts.append(int(cursor.rowcount))
    except MySQLError as error:
        _check_all(connection, pending, counts[len(inserts) :])
        wrapper = (
            exc.IntegrityError if isinstance(error, MySQLIntegrityError) else exc.OperationalError
        )
        raise wrapper(sql, args, error) from error
    finally:
        await_only(cursor.close())
    _check_all(connection, pending, counts[len(inserts) :])


@event.listens_for(Session, "do_orm_execute")
def _flush_before_statements(state: ORMExecuteState) -> None:
    if state.session.info.get(_PENDING):
        _flush(state.session)


@event.listens_for(Session, "before_commit")
def _flush_before_commit(session: Session) -> None:
    _flush(session)


@event.listens_for(Session, "after_commit")
def _ready_after_commit(session: Session) -> None:
    callbacks = session.info.pop(_AFTER_COMMIT, None)
    if callbacks:
        session.info.setdefault(_COMMITTED, []).extend(callbacks)


@event.listens_for(Session, "after_transaction_end")
def _forget_when_transaction_ends(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the root transaction: committed (flushed) or rolled back
        session.info.pop(_PENDING, None)
        session.info.pop(_AFTER_COMMIT, None)  # still here only if it rolled back
        session.info.pop(_GROUPED, None)
