"""Exactly one scheduler: kicks the periodic jobs (the sweep, the gateway probe) on time.

Any number of `pixwave scheduler` processes may run; a Redis lease (renewed every second,
expiring after a few) lets exactly one of them kick, and a standby takes over within the lease
when the leader dies. The embedded default runs the same loop inside `pixwave up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from pixwave.worker.jobs import PERIODIC, load_jobs

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.scheduler")

LEASE = "scheduler:leader"
LEASE_SECONDS = 5.0
TICK_SECONDS = 0.25


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def hold_lease(resources: JobContext, token: str | None) -> str | None:
    """Take or renew the leader's lease: the token while this scheduler leads, else None."""
    try:
        if token is None:
            token = await resources.locks.acquire(LEASE, LEASE_SECONDS)
            if token is not None:
                log.info("scheduler.leading")
        elif not await resources.locks.extend(LEASE, token, LEASE_SECONDS):
            log.warning("scheduler.lease_lost")
            token = None
    except Exception as exc:
        # Redis restarting or unreachable: the lease cannot be proven held, so stop kicking
        # (a standby may lead once Redis is back) and try again next tick, instead of exiting
        # and leaving every periodic job unkicked.
        log.warning("scheduler.lease_failed", error=repr(exc))
        token = None
    return token


async def run_scheduler(
    resources: JobContext,
    stop: asyncio.Event,
    *,
    clock: Callable[[], float] = time.monotonic,
    wait: Callable[[asyncio.Event, float], Awaitable[None]] = pause,
) -> None:
    """Lead (or stand by) until ``stop``; while leading, kick each periodic job every
    ``settings.<interval_setting>`` seconds. ``clock`` and ``wait`` are injectable, so tests
    step through time instead of sleeping."""
    load_jobs()
    token: str | None = None
    due: dict[str, float] = {}
    try:
        while not stop.is_set():
            token = await hold_lease(resources, token)
            if token is not None:
                now = clock()
                for name, entry in PERIODIC.items():
                    if due.get(name, 0.0) <= now:
                        due[name] = now + float(getattr(resources.settings, entry.interval_setting))
                        try:
                            await resources.jobs.kick(name)
                        except Exception as exc:  # Redis blip: the next tick tries again
                            log.warning("scheduler.kick_failed", job=name, error=repr(exc))
            await wait(stop, TICK_SECONDS if token else 1.0)
    finally:
        if token is not None:
            try:
                await resources.locks.release(LEASE, token)
            except Exception as exc:  # it expires by itself
                log.warning("scheduler.release_failed", error=repr(exc))
