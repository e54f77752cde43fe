"""Jobs by name, and the queue that runs them.

Jobs carry one id (or nothing) and look everything else up: the database row is the truth,
the message only says "look at this now". Every job must be safe to run twice, concurrently
too — a redelivered message, a sweep and a webhook may all point at the same transaction.

Domain modules register with :func:`job` and :func:`periodic`; the broker (`broker.py`) turns
the registry into taskiq tasks. Requests and jobs enqueue with :func:`kick_after_commit`, so
a worker never runs for a write that has not committed (or was rolled back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.unit_of_work import after_commit

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.worker")

JobFunction = Callable[["JobContext", str], Awaitable[None]]
PeriodicFunction = Callable[["JobContext"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    #: The Settings field holding the interval in seconds, so operators can tune it.
    interval_setting: str
    function: PeriodicFunction


JOBS: dict[str, JobFunction] = {}
PERIODIC: dict[str, Periodic] = {}


def job(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register ``async def f(context, id)`` as the job ``name`` (``payments.advance``)."""

    def register(function: JobFunction) -> JobFunction:
        if name in JOBS and JOBS[name] is not function:
            raise ValueError(f"job {name!r} is registered twice")
        JOBS[name] = function
        return function

    return register


def periodic(name: str, interval_setting: str) -> Callable[[PeriodicFunction], PeriodicFunction]:
    """Register ``async def f(context)`` to be kicked by the scheduler every
    ``settings.<interval_setting>`` seconds."""

    def register(function: PeriodicFunction) -> PeriodicFunction:
        PERIODIC[name] = Periodic(name, interval_setting, function)
        return function

    return register


class JobQueue:
    """What the API and the jobs use to enqueue: ``await queue.kick("payments.advance", id)``."""

    def __init__(self, kicker: Callable[[str, str], Awaitable[Any]]) -> None:
        self._kicker = kicker

    async def kick(self, name: str, argument: str = "") -> None:
        if name not in JOBS and name not in PERIODIC:
            raise ValueError(f"no job named {name!r}")
        await self._kicker(name, argument)


def kick_after_commit(session: AsyncSession, queue: JobQueue, name: str, argument: str) -> None:
    """Enqueue once the session's transaction commits; nothing if it rolls back."""

    async def kick() -> None:
        await queue.kick(name, argument)

    after_commit(session, kick)


def load_jobs() -> None:
    """Import the modules that register jobs (their import is the registration)."""
    import importlib

    for module in (
        "pixwave.payments.tasks",
        "pixwave.inbox.tasks",
        "pixwave.gateways.tasks",
        "pixwave.notifications.tasks",
        "pixwave.notifications.webhooks.tasks",
    ):
        importlib.import_module(module)
