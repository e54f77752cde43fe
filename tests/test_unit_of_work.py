"""Deferred writes: one round trip on MariaDB, the same semantics on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table, utcnow
from pixwave.notifications.models import OutboxEvent
from pixwave.resources import Resources
from pixwave.unit_of_work import (
    after_commit,
    defer,
    flush,
    flush_and_commit,
    group_inserts,
    mark,
    rewind,
)

_INSERT = insert(table(OutboxEvent))


def _row(id_: str) -> dict[str, object]:
    return {
        "id": id_,
        "event_type": "test",
        "aggregate_type": "test",
        "aggregate_id": id_,
        "payload": {"n": 1},
        "created_at": utcnow(),
    }


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


class TestDeferredWrites:
    async def test_queued_writes_commit_together(self, any_resources: Resources) -> None:
        """Three queued inserts land on commit."""
        async with any_resources.sessionmaker() as session:
            async with session.begin():
                for i in range(3):
                    defer(session, _INSERT, _row(f"evt_q{i}"))
            assert await _count(session) == 3

    async def test_mariadb_sends_them_in_one_round_trip(self, resources: Resources) -> None:
        """On MariaDB the queue is one multi-statement send, not one call per statement."""
        sent: list[str] = []

        def record(*args: object) -> None:
            sent.append(str(args[2]))

        event.listen(resources.engine.sync_engine, "before_cursor_execute", record)
        try:
            async with resources.sessionmaker() as session, session.begin():
                for i in range(5):
                    defer(session, _INSERT, _row(f"evt_m{i}"))
                await flush(session)
        finally:
            event.remove(resources.engine.sync_engine, "before_cursor_execute", record)
        assert not any("INSERT INTO outbox_events" in s for s in sent)  # bypassed, batched
        async with resources.sessionmaker() as session:
            assert await _count(session) == 5
            payloads = (await session.execute(select(OutboxEvent.payload))).scalars().all()
            assert payloads == [{"n": 1}] * 5  # bind processors (JSON) applied on the batch path

    async def test_duplicate_key_is_an_integrity_error(self, any_resources: Resources) -> None:
        """A failing statement in the batch surfaces as SQLAlchemy's IntegrityError."""
        async with any_resources.sessionmaker() as session:
            defer(session, _INSERT, _row("evt_dup"))
            defer(session, _INSERT, _row("evt_dup"))
            with pytest.raises(IntegrityError):
                await session.commit()
            await session.rollback()
            assert await _count(session) == 0

    async def test_missed_expectation_raises_the_chosen_error(
        self, any_resources: Resources
    ) -> None:
        """A row-count expectation that fails raises the caller's error and rolls back."""
        from sqlalchemy import bindparam, update

        update_missing = (
            update(table(OutboxEvent))
            .where(table(OutboxEvent).c.id == bindparam("target"))
            .values(event_type="x")
        )

        class Missing(Exception):
            pass

        async with any_resources.sessionmaker() as session:
            defer(session, _INSERT, _row("evt_keep"))
            defer(
                session,
                update_missing,
                {"target": "evt_absent"},
                expect_rowcount=1,
                on_mismatch=lambda _c: Missing(),
            )
            with pytest.raises(Missing):
                await session.commit()
            await session.rollback()
            assert await _count(session) == 0


class TestGroupedInserts:
    async def test_rows_of_one_statement_land_as_one_insert(self, any_resources: Resources) -> None:
        """`group_inserts`: five queued rows of one table commit, their JSON processed."""
        async with any_resources.sessionmaker() as session:
            async with session.begin():
                group_inserts(session)
                for i in range(5):
                    defer(session, _INSERT, _row(f"evt_g{i}"))
            assert await _count(session) == 5
            payloads = (await session.execute(select(OutboxEvent.payload))).scalars().all()
            assert payloads == [{"n": 1}] * 5

    async def test_mariadb_parses_one_insert_for_them(self, resources: Resources) -> None:
        """On MariaDB the server counts one INSERT statement for the five rows (one without
        `group_inserts`), on the same connection."""

        async def inserts(session: AsyncSession) -> int:
            row = (await session.execute(text("SHOW SESSION STATUS LIKE 'Com_insert'"))).one()
            return int(row[1])

        for grouped, expected in ((True, 1), (False, 5)):
            async with resources.sessionmaker() as session, session.begin():
                before = await inserts(session)
                if grouped:
                    group_inserts(session)
                for i in range(5):
                    defer(session, _INSERT, _row(f"evt_{grouped}_{i}"))
                await flush(session)
                assert await inserts(session) - before == expected

    async def test_the_rows_go_before_an_update_that_needs_them(
        self, any_resources: Resources
    ) -> None:
        """A batch of credits inserts its ledger transactions and updates the payments that
        point at them: grouped, the inserts go first, so a queued update of a row inserted in
        the same group finds it (queued before it or not)."""
        outbox = table(OutboxEvent)
        touch = (
            update(outbox)
            .where(outbox.c.id == bindparam("row_id"))
            .values(event_type=bindparam("kind"))
        )
        async with any_resources.sessionmaker() as session:
            group_inserts(session)
            defer(session, _INSERT, _row("evt_parent"))
            defer(session, touch, {"row_id": "evt_parent", "kind": "touched"}, expect_rowcount=1)
            defer(session, _INSERT, _row("evt_other"))
            await flush_and_commit(session)
            kinds = dict((await session.execute(select(outbox.c.id, outbox.c.event_type))).all())
        assert kinds == {"evt_parent": "touched", "evt_other": "test"}

    async def test_a_duplicate_in_the_group_fails_the_whole_send(
        self, any_resources: Resources
    ) -> None:
        async with any_resources.sessionmaker() as session:
            group_inserts(session)
            defer(session, _INSERT, _row("evt_one"))
            defer(session, _INSERT, _row("evt_one"))
            with pytest.raises(IntegrityError):
                await session.commit()
            await session.rollback()
            assert await _count(session) == 0

    async def test_rewind_forgets_writes_and_callbacks_since_the_mark(
        self, any_resources: Resources
    ) -> None:
        """A refused member of a group leaves nothing: neither rows nor after-commit work."""
        ran: list[str] = []

        async def note(name: str) -> None:
            ran.append(name)

        async with any_resources.sessionmaker() as session:
            defer(session, _INSERT, _row("evt_kept"))
            after_commit(session, lambda: note("kept"))
            at = mark(session)
            defer(session, _INSERT, _row("evt_dropped"))
            after_commit(session, lambda: note("dropped"))
            rewind(session, at)
            await flush_and_commit(session)
            ids = (await session.execute(select(OutboxEvent.id))).scalars().all()
        assert ids == ["evt_kept"]
        assert ran == ["kept"]
