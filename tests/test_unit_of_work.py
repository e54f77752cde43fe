"""Deferred writes: one round trip on MariaDB, the same semantics on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table, utcnow
from pixwave.notifications.models import OutboxEvent
from pixwave.resources import Resources
from pixwave.unit_of_work import defer, flush

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
