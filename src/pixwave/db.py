"""Database engines, the declarative base and column types.

Services receive an `AsyncSession` and never commit (`unit_of_work` says how their writes are
sent); whoever opened the session (a request
handler through `kit.idempotency`, a CLI command, later a task) commits once at the edge.
The same models and migrations run on MariaDB/MySQL 8 and on the embedded SQLite file.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import DateTime, MetaData, Table, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from pixwave.config import Settings
from pixwave.unit_of_work import MYSQL_CLIENT_FLAGS

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored as naive UTC (DATETIME(6) on MySQL) and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


#: MySQL/MariaDB errors after which the whole transaction may simply be run again: deadlock
#: (the server rolled it back) and lock wait timeout.
TRANSIENT_MYSQL_ERRORS = frozenset({1205, 1213})


def is_transient(error: BaseException) -> bool:
    """A database error that says "try the transaction again", not "this is wrong"."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    args = getattr(error.orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in TRANSIENT_MYSQL_ERRORS:
        return True
    return "database is locked" in str(error.orig)


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder: make the folder wherever one is opened
    (`pixwave migrate` or `pixwave admin …` in a fresh directory, not only `pixwave up`)."""
    if url.startswith("sqlite") and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """An engine tuned for the backend: a real pool on MySQL, one serialised writer on SQLite."""
    url = url or settings.sqlalchemy_url
    if url.startswith("sqlite"):
        ensure_sqlite_directory(url)
        # One connection serialises writers, which is what SQLite does anyway, without
        # "database is locked" errors between connections of the same process.
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=30, echo=settings.app_debug
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        # Both replaced by the cheaper equivalents below: a ping per checkout and a ROLLBACK per
        # checkin were two of a transfer's six round trips.
        pool_pre_ping=False,
        pool_reset_on_return=None,
        connect_args={
            "connect_timeout": settings.db_connect_timeout,
            "client_flag": MYSQL_CLIENT_FLAGS,
        },
        echo=settings.app_debug,
    )
    _install_pool_hygiene(engine, ping_after_idle=settings.db_ping_after_idle_seconds)
    return engine


def _install_pool_hygiene(engine: AsyncEngine, *, ping_after_idle: float) -> None:
    """Ping a connection only after it sat idle; roll back only a connection left mid-transaction.

    A connection the server closed while it sat in the pool (a restart, `wait_timeout`) is caught
    by the ping and replaced. One used milliseconds ago is handed out as is; if the server died in
    between, the request fails with 503, nothing is committed, and the pool is invalidated.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkin")
    def _idle(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since", 0.0)
        if time.monotonic() - idle_since < ping_after_idle:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool retries the checkout with a new connection
            raise DisconnectionError("connection went stale while idle") from exc

    @event.listens_for(sync_engine, "reset")
    def _rollback_if_open(dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
        if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
            return
        driver = record.driver_connection
        if driver is None or driver.get_transaction_status():
            dbapi_connection.rollback()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The sqlite3 module starts transactions itself, only before INSERT/UPDATE/DELETE: a
    # SAVEPOINT issued first would become the outermost transaction, and releasing it would
    # COMMIT at once — a write the caller later rolls back would stay. The driver is told to
    # keep out, and every transaction is begun explicitly (`_sqlite_begin`), as SQLAlchemy's
    # documentation recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def table(model: type[Base]) -> Table:
    """The Core `Table` of a mapped class (typed; `__table__` is only a FromClause to mypy)."""
    return cast(Table, model.__table__)
