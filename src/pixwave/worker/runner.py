"""Running jobs: inside the API (embedded default), or as `pixwave worker` / `scheduler`.

With the in-process queue, the API process is the whole deployment: it runs the jobs it
enqueues and the scheduler loop. With Redis, `pixwave worker` processes consume the stream
and exactly one `pixwave scheduler` leads (the others stand by).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
import uvloop
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from pixwave.config import Settings, get_settings
from pixwave.kit.runtime import tune_gc
from pixwave.worker.scheduler import run_scheduler

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.worker")


def runs_jobs(settings: Settings) -> bool:
    if settings.run_jobs_in_api is not None:
        return settings.run_jobs_in_api
    return settings.queue_backend == "memory"


@dataclass
class Background:
    stop_event: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def start_background_jobs(resources: Resources) -> Background:
    """The scheduler loop, and — with a Redis queue — a receiver, in this process."""
    background = Background(asyncio.Event())
    background.tasks.append(asyncio.create_task(run_scheduler(resources, background.stop_event)))
    if resources.settings.queue_backend == "redis":
        background.tasks.append(asyncio.create_task(_receive(resources)))
    return background


async def _receive(resources: Resources) -> None:
    await run_receiver_task(
        resources.broker,
        max_async_tasks=resources.settings.worker_concurrency,
        ack_time=AcknowledgeType.WHEN_EXECUTED,
        propagate_exceptions=False,
    )


async def _serve_forever(role: str) -> None:
    from pixwave.observability.logging import configure_logging
    from pixwave.resources import Resources
    from pixwave.sandbox.embedded import internal_base_url

    settings = get_settings()
    configure_logging(settings.log_level)
    resources = Resources.build(settings, sandbox_base_url=internal_base_url(settings))
    await resources.broker.startup()
    tune_gc(settings.python_gc_threshold)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(f"{role}.started", queue=settings.queue_backend)
    try:
        if role == "scheduler":
            await run_scheduler(resources, stop)
        else:
            receiver = asyncio.create_task(_receive(resources))
            await stop.wait()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
    finally:
        await resources.close()
        log.info(f"{role}.stopped")


def _worker_process() -> None:
    # uvloop, like the API: the engine's steps are mostly small socket writes (MariaDB,
    # Redis, the gateways), which the default loop makes markedly more expensive.
    uvloop.run(_serve_forever("worker"))


def run_workers(processes: int) -> None:
    """Start ``processes`` worker processes and wait for them (Ctrl-C stops all)."""
    if processes == 1:
        _worker_process()
        return
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_worker_process, daemon=False) for _ in range(processes)]
    for child in children:
        child.start()
    try:
        for child in children:
            child.join()
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        for child in children:
            child.join()


def run_scheduler_process() -> None:
    uvloop.run(_serve_forever("scheduler"))
