"""Connection pool hygiene on MariaDB: stale connections replaced, open transactions undone."""

from __future__ import annotations

import asyncio

import pymysql
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import greenlet_spawn

from pixwave.bootstrap import build_resources
from pixwave.db import is_transient
from pixwave.resources import Resources
from tests.conftest import MARIADB_HOST, MARIADB_PORT, MARIADB_USER, make_settings


def _server() -> pymysql.Connection:
    return pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user=MARIADB_USER, autocommit=True)


def _global_status(name: str) -> int:
    with _server() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        row = cursor.fetchone()
        assert row is not None
        return int(row[1])


class TestPoolHygiene:
    async def test_connection_killed_while_idle_is_replaced(self, resources: Resources) -> None:
        """A pooled connection the server closed is pinged, found dead and swapped for a new one."""
        settings = make_settings(
            database_url=resources.settings.sqlalchemy_url, db_ping_after_idle_seconds=0
        )
        fresh = build_resources(settings)
        try:
            async with fresh.sessionmaker() as session:
                victim = await session.scalar(text("SELECT CONNECTION_ID()"))
            with _server() as connection, connection.cursor() as cursor:
                cursor.execute(f"KILL {int(victim)}")
            async with fresh.sessionmaker() as session:
                survivor = await session.scalar(text("SELECT CONNECTION_ID()"))
                assert await session.scalar(text("SELECT 1")) == 1
            assert survivor != victim
        finally:
            await fresh.close()

    async def test_no_rollback_after_a_commit(self, resources: Resources) -> None:
        """A committed unit of work returns its connection without an extra ROLLBACK."""
        async with resources.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))  # warm the pool
        before = _global_status("Com_rollback")
        for _ in range(20):
            async with resources.sessionmaker() as session, session.begin():
                await session.execute(text("SELECT 1"))
        assert _global_status("Com_rollback") - before == 0

    async def test_connection_returned_mid_transaction_is_rolled_back(
        self, resources: Resources
    ) -> None:
        """Work left uncommitted on a returned connection never leaks to the next borrower."""

        def leave_open() -> None:
            raw = resources.engine.sync_engine.raw_connection()
            cursor = raw.cursor()
            cursor.execute(
                "INSERT INTO outbox_events (id, event_type, aggregate_type, aggregate_id, "
                "payload, created_at) VALUES ('evt_leak', 't', 't', 't', '{}', NOW(6))"
            )
            cursor.close()
            raw.close()  # back to the pool with the INSERT uncommitted

        await greenlet_spawn(leave_open)
        for _ in range(50):  # cycle through every pooled connection, committing on each
            async with resources.sessionmaker() as session, session.begin():
                await session.execute(text("SELECT 1"))
        with _server() as connection, connection.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM `{resources.engine.url.database}`.outbox_events "  # noqa: S608 - our test database's name
                "WHERE id = 'evt_leak'"
            )
            row = cursor.fetchone()
        assert row is not None
        assert row[0] == 0


class TestTransientErrors:
    async def test_a_real_deadlock_is_transient_and_a_duplicate_is_not(
        self, resources: Resources
    ) -> None:
        """Two transactions locking two rows in opposite orders: the server kills one with
        error 1213, which `is_transient` says to run again; a unique violation it does not."""
        engine = resources.engine
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS deadlock_probe"))
            await connection.execute(
                text("CREATE TABLE deadlock_probe (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
            )
            await connection.execute(text("INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)"))
        both_hold_one = asyncio.Barrier(2)

        async def lock(first: int, second: int) -> None:
            async with engine.begin() as connection:
                await connection.execute(
                    text("UPDATE deadlock_probe SET n = n + 1 WHERE id = :id"), {"id": first}
                )
                await both_hold_one.wait()
                await connection.execute(
                    text("UPDATE deadlock_probe SET n = n + 1 WHERE id = :id"), {"id": second}
                )

        try:
            outcomes = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(errors) == 1, outcomes
            assert is_transient(errors[0])
            with pytest.raises(IntegrityError) as duplicate:
                async with engine.begin() as connection:
                    await connection.execute(text("INSERT INTO deadlock_probe VALUES (1, 0)"))
            assert not is_transient(duplicate.value)
        finally:
            async with engine.begin() as connection:
                await connection.execute(text("DROP TABLE deadlock_probe"))
