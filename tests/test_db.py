"""Connection pool hygiene on MariaDB: stale connections replaced, open transactions undone."""

from __future__ import annotations

import pymysql
from sqlalchemy import text
from sqlalchemy.util import greenlet_spawn

from pixwave.resources import Resources
from tests.conftest import MARIADB_HOST, MARIADB_PORT, MARIADB_USER, make_settings


def _server() -> pymysql.Connection:  # type: ignore[type-arg]
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
        fresh = Resources.build(settings)
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
