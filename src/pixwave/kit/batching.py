"""Coalesce concurrent calls of one process into batches, without delaying a quiet system.

A call goes at once when no batch of its kind is in flight; while one is, arrivals gather into
the next batch, which leaves when the one in flight is done, after ``window_seconds`` at most,
or when it holds ``max_size``. Under load batches grow by themselves (everything that arrived
during one round trip rides the next); alone, a call pays nothing but a task switch.

Used by the group commit of transfers (`kit.groupcommit`), and by the jobs of the payments
engine: the inbox's notifications (`inbox.tasks`) and the payment looks (`payments.tasks`) a
worker holds are moved together, their credits in one database transaction per gateway
(`payments.engine.batch`). A batch may answer a caller before it is over (``Settle``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pixwave.observability.metrics import GROUP_COMMIT_SIZE

I = TypeVar("I")  # noqa: E741 - the item, as in Batcher[I, R]
R = TypeVar("R")

#: Answers the caller of item ``index`` now, before the batch is over (its outcome in the
#: returned sequence is then ignored): a slow item need not hold the others' callers.
Settle = Callable[[int, R | BaseException], None]
#: Runs one batch: one outcome per item, in order — a result, or the exception that item's
#: caller gets. Raising fails every item not settled yet with that exception.
RunBatch = Callable[[list[I], Settle[R]], Awaitable[Sequence[R | BaseException]]]


@dataclass(slots=True)
class _Waiting(Generic[I, R]):
    item: I
    future: asyncio.Future[R] = field(repr=False)


class Batcher(Generic[I, R]):
    """One per kind of work (``name``: the ``pixwave_group_commit_size`` label) and process."""

    def __init__(
        self, name: str, run: RunBatch[I, R], *, window_seconds: float, max_size: int
    ) -> None:
        self.sizes = GROUP_COMMIT_SIZE.labels(name)
        self.run = run
        self.window_seconds = window_seconds
        self.max_size = max_size
        self._open: list[_Waiting[I, R]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: I) -> R:
        """``item``'s outcome, from the next batch (its exception raised)."""
        loop = asyncio.get_running_loop()
        waiting: _Waiting[I, R] = _Waiting(item, loop.create_future())
        self._open.append(waiting)
        if not self._running or len(self._open) >= self.max_size:
            self._close()  # nothing in flight (no one to wait for), or full
        elif self._timer is None:
            self._timer = loop.call_later(self.window_seconds, self._close)
        return await waiting.future

    def _close(self) -> None:
        """Send the open batch on its way; the next call opens another."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [w for w in self._open if not w.future.done()]  # not cancelled meanwhile
        self._open = []
        if batch:
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A batch is done: those who gathered meanwhile go now, without waiting out the
        window."""
        self._running.discard(task)
        if self._open:
            self._close()

    async def _run(self, batch: list[_Waiting[I, R]]) -> None:
        self.sizes.observe(len(batch))

        def settle(index: int, outcome: R | BaseException) -> None:
            future = batch[index].future
            if future.done():  # settled already, or its caller was cancelled
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        try:
            outcomes = await self.run([w.item for w in batch], settle)
        except Exception as error:  # a bug in the batch itself: no caller may hang on it
            outcomes = [error] * len(batch)
        for index, outcome in enumerate(outcomes):
            settle(index, outcome)
