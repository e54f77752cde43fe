"""Group commit: concurrent idempotent payments in one database transaction and one COMMIT.

A transfer alone costs two round trips (its writes, then COMMIT), a durable log flush, a
session and a pooled connection. Under load, many arrive within a millisecond of each other.
When no group of the process is at the database, a payment goes at once (alone, so a quiet
system adds no delay); while one is, arrivals gather into the next group, which leaves when the
one in flight is done, after ``window_seconds`` at most, or when it holds ``max_size``. Then,
on one connection:

1. ``prepare`` locks every row the group touches, once, in id order, and reads what the
   payments will be judged against (for transfers: the users a period limit applies to, then
   their sums, then the ledger accounts — see `limits.group.prepare_payers`). It runs
   first: a plain read before its locks would fix REPEATABLE READ's snapshot too early;
2. one read finds the idempotency keys of the group that already have a stored answer — those
   leave the group and are replayed by the caller as usual;
3. each payment's work runs in arrival order against that locked state, in memory: a refusal
   (insufficient funds, unknown wallet, a limit) refuses that payment only — what it had queued
   is rewound, and its refusal is stored for replay like any other answer;
4. every write of the group — the net balance moves, then one multi-row INSERT per table,
   including each payment's idempotency record — goes in one round trip, then one COMMIT.

Each caller gets its own answer, exactly as if its request had run alone: the idempotency
record still commits with the effect it describes. If anything fails for the group as a whole
(a deadlock, a lost connection, a database guard that disagrees with the in-memory one), every
payment of the group is answered :class:`NotGrouped` and runs on its own through the ordinary
path, where a payment whose group did commit after all finds its key taken and replays it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson
import structlog
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pixwave.db import table
from pixwave.exceptions import PixWaveError
from pixwave.kit.batching import Batcher, Settle
from pixwave.kit.models import IdempotencyRecord
from pixwave.observability.metrics import GROUP_COMMIT_FALLBACKS
from pixwave.unit_of_work import flush_and_commit, group_inserts, mark, rewind

log = structlog.get_logger("pixwave.groupcommit")
_R = table(IdempotencyRecord).c
_TAKEN = select(_R.scope, _R.key).where(
    tuple_(_R.scope, _R.key).in_(bindparam("keys", expanding=True))
)


class NotGrouped(Exception):
    """This payment was not decided in a group (the group failed as a whole): run it on its
    own."""


class KeyTaken(Exception):
    """The key already has a stored answer: the caller replays it (or, if it has expired,
    removes it and runs again)."""


class GroupState(Protocol):
    """What ``prepare`` locked and what the payments did to it, in memory."""

    def mark(self) -> Any: ...

    def rewind(self, to: Any) -> None: ...

    def finish(self, session: AsyncSession) -> None:
        """Queue the group's net writes to the locked rows."""


S = TypeVar("S", bound=GroupState)
#: Locks and reads what a group's payments need, given each one's claim (what it touches).
Prepare = Callable[[AsyncSession, Sequence[Any]], Awaitable[S]]
GroupedWork = Callable[[AsyncSession, S], Awaitable[BaseModel]]
Store = Callable[[AsyncSession, dict[str, Any], int, bytes], None]


@dataclass(frozen=True, slots=True)
class _Job(Generic[S]):
    record: dict[str, Any]
    status_code: int
    work: GroupedWork[S]
    claim: Any


class GroupCommit(Generic[S]):
    """One per kind of payment (``name``: its metrics label) and process; ``submit`` is called
    under the key's lock. Groups form as `kit.batching` says."""

    def __init__(
        self,
        name: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: Store,
        *,
        prepare: Prepare[S],
        window_seconds: float,
        max_size: int,
    ) -> None:
        self.fallbacks = GROUP_COMMIT_FALLBACKS.labels(name)
        self.sessionmaker = sessionmaker
        self.store = store
        self.prepare = prepare
        self.batcher: Batcher[_Job[S], Response] = Batcher(
            name, self._run, window_seconds=window_seconds, max_size=max_size
        )

    async def submit(
        self,
        record: dict[str, Any],
        status_code: int,
        work: GroupedWork[S],
        claim: Any,
    ) -> Response:
        """Run ``work`` in the next group; its answer, or its refusal raised (stored either
        way), or :class:`KeyTaken`, or :class:`NotGrouped`."""
        return await self.batcher.submit(_Job(record, status_code, work, claim))

    async def _run(
        self, jobs: list[_Job[S]], _settle: Settle[Response]
    ) -> Sequence[Response | Exception]:
        """A group's members are answered together: their writes commit together."""
        try:
            return await self._commit(jobs)
        except Exception as error:
            log.warning("groupcommit.failed", size=len(jobs), error=repr(error))
            self.fallbacks.inc(len(jobs))
            return [NotGrouped("the group failed; running alone")] * len(jobs)

    async def _commit(self, jobs: list[_Job[S]]) -> list[Response | Exception]:
        outcomes: list[Response | Exception] = []
        async with self.sessionmaker() as session:
            state = await self.prepare(session, [job.claim for job in jobs])
            keys = [(job.record["scope"], job.record["key"]) for job in jobs]
            taken = {tuple(row) for row in await session.execute(_TAKEN, {"keys": keys})}
            group_inserts(session)
            for job, key in zip(jobs, keys, strict=True):
                if key in taken:
                    outcomes.append(KeyTaken())
                    continue
                outcomes.append(await self._one(session, state, job))
            state.finish(session)
            await flush_and_commit(session)
        return outcomes

    async def _one(self, session: AsyncSession, state: S, job: _Job[S]) -> Response | Exception:
        """One payment's work on the group's session; a refusal rewinds only its own writes."""
        queued, applied = mark(session), state.mark()
        try:
            result = await job.work(session, state)
        except PixWaveError as refusal:
            rewind(session, queued)
            state.rewind(applied)
            if refusal.status_code < 500:
                self.store(
                    session, job.record, refusal.status_code, orjson.dumps(refusal.problem())
                )
            return refusal
        body = result.__pydantic_serializer__.to_json(result)
        self.store(session, job.record, job.status_code, body)
        return Response(body, status_code=job.status_code, media_type="application/json")
