"""Running jobs: inside the API (embedded default), or as `pixwave worker` / `scheduler`.

With the in-process queue, the API process is the whole deployment: it runs the jobs it
enqueues and the scheduler loop. With Redis or SQS, `pixwave worker` processes take the jobs
and exactly one `pixwave scheduler` leads (the others stand by).

A worker told to stop (SIGTERM, SIGINT) takes no more jobs, lets the running ones finish and
acknowledges them for up to ``SHUTDOWN_GRACE_SECONDS``, then exits 0; a job still running
after that is left unacknowledged, so the broker redelivers it like a killed worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog
import uvloop
from taskiq import AckableMessage, AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver
from taskiq.utils import maybe_awaitable

from pixwave.bootstrap import build_resources
from pixwave.config import Settings, get_settings
from pixwave.kit.runtime import tune_gc
from pixwave.worker.scheduler import run_scheduler

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.worker")

#: How long a stopping worker lets its running jobs finish. Kubernetes gives the pod
#: terminationGracePeriodSeconds (35 in deploy/k8s) from SIGTERM to SIGKILL: this, plus closing
#: connections (tests/deploy ties the two).
SHUTDOWN_GRACE_SECONDS = 25.0
#: Pause before listening again after the broker failed (Redis or SQS unreachable).
_RETRY_SECONDS = 1.0
#: How long a stopping worker waits for the broker's pending read to be cancelled.
_STOP_READ_SECONDS = 1.0


def runs_jobs(settings: Settings) -> bool:
    if settings.run_jobs_in_api is not None:
        return settings.run_jobs_in_api
    return settings.queue_backend == "memory"


@dataclass
class Background:
    stop_event: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        """Stop the scheduler and the receiver, letting running jobs finish (bounded)."""
        self.stop_event.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*self.tasks, return_exceptions=True),
                timeout=SHUTDOWN_GRACE_SECONDS + 1,
            )
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def start_background_jobs(resources: Resources) -> Background:
    """The scheduler loop, and — with a shared queue (Redis, SQS) — a receiver, in this
    process."""
    background = Background(asyncio.Event())
    background.tasks.append(asyncio.create_task(run_scheduler(resources, background.stop_event)))
    if resources.settings.queue_backend != "memory":
        background.tasks.append(
            asyncio.create_task(
                receive_jobs(
                    resources.broker,
                    background.stop_event,
                    concurrency=resources.settings.worker_concurrency,
                )
            )
        )
    return background


class _Jobs:
    """The jobs running in this process, across receiver restarts."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[Any]] = set()
        #: Set once the grace is over: a job cut off then is not acknowledged, and a message
        #: still arriving is not started (both go back to the broker).
        self.closed = False


class _Receiver(Receiver):
    """taskiq's receiver, tracking its jobs so a stopping worker can wait for them.

    taskiq acknowledges a job once it returned *however* it ended, cancelled included; a job
    cut off at the end of the grace must stay unacknowledged to be redelivered, so every ack
    goes through a guard.
    """

    jobs: _Jobs

    async def callback(self, message: bytes | AckableMessage, raise_err: bool = False) -> None:
        if self.jobs.closed:
            return
        task = asyncio.current_task()
        assert task is not None
        self.jobs.running.add(task)
        try:
            if isinstance(message, AckableMessage):
                message = AckableMessage(data=message.data, ack=self._guarded(message.ack))
            await super().callback(message, raise_err)
        finally:
            self.jobs.running.discard(task)

    def _guarded(self, ack: Callable[[], Awaitable[None] | None]) -> Callable[[], Awaitable[None]]:
        async def guarded() -> None:
            if not self.jobs.closed:
                await maybe_awaitable(ack())

        return guarded


async def receive_jobs(
    broker: AsyncBroker,
    stop: asyncio.Event,
    *,
    concurrency: int,
    grace: float = SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Run ``broker``'s jobs, ``concurrency`` at once, each acknowledged after it ran, until
    ``stop``; then finish the running ones within ``grace`` seconds.

    At ``stop`` taskiq's receiver cancels its pending read (an XREADGROUP, an SQS long poll).
    redis-py now and then swallows that cancel and reads on — the worker then used to hang
    until the next message arrived — so the read gets ``_STOP_READ_SECONDS`` and is then
    left behind, unawaited; closing the broker ends it.
    """
    jobs = _Jobs()
    stopping = asyncio.create_task(stop.wait())
    listening: asyncio.Task[None] | None = None
    try:
        while not stop.is_set():
            receiver = _Receiver(
                broker,
                run_startup=False,
                max_async_tasks=concurrency,
                propagate_exceptions=False,
                ack_type=AcknowledgeType.WHEN_EXECUTED,
                wait_tasks_timeout=0,  # the drain below covers every receiver's jobs
            )
            receiver.jobs = jobs
            listening = asyncio.create_task(receiver.listen(stop))
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not listening.done():  # stopped: the receiver closes its read
                await asyncio.wait({listening}, timeout=_STOP_READ_SECONDS)
            if listening.done() and not stop.is_set():
                # The broker is unreachable (or its read ended): running jobs go on; listen
                # again shortly, never in a tight loop.
                if not listening.cancelled() and listening.exception():
                    log.warning("worker.receive_failed", error=repr(listening.exception()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=_RETRY_SECONDS)
        await _drain(jobs, grace)
    finally:
        stopping.cancel()
        if listening is not None and not listening.done():
            log.warning("worker.read_left_behind")
            listening.cancel()


async def _drain(jobs: _Jobs, grace: float) -> None:
    """Let the running jobs finish for up to ``grace`` seconds; cut off the rest unacked."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    if jobs.running:
        log.info("worker.finishing", jobs=len(jobs.running), grace_seconds=grace)
    while jobs.running and (left := deadline - loop.time()) > 0:
        await asyncio.wait(set(jobs.running), timeout=left)
    jobs.closed = True
    late = set(jobs.running)
    if late:
        log.warning("worker.jobs_abandoned", jobs=len(late), grace_seconds=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def _serve_forever(role: str) -> None:
    from pixwave.observability.logging import configure_logging
    from pixwave.observability.metrics import start_metrics_server
    from pixwave.sandbox.embedded import internal_base_url

    settings = get_settings()
    configure_logging(settings.log_level, settings=settings, role=role)
    # First thing: a SIGTERM while starting (a parent forwarding one) is a clean stop too.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if multiprocessing.parent_process() is None:
        # One process: it serves its own metrics. Several (`--processes N`): the parent does,
        # adding up every child's (prometheus-client's multiprocess mode).
        start_metrics_server(settings.metrics_host, settings.metrics_port)
    resources = build_resources(settings, sandbox_base_url=internal_base_url(settings))
    await resources.broker.startup()
    tune_gc(settings.python_gc_threshold)
    log.info(f"{role}.started", queue=settings.queue_backend)
    try:
        if role == "scheduler":
            await run_scheduler(resources, stop)
        else:
            await receive_jobs(resources.broker, stop, concurrency=settings.worker_concurrency)
    finally:
        await resources.close()
        log.info(f"{role}.stopped")


def _worker_process() -> None:
    # uvloop, like the API: the engine's steps are mostly small socket writes (MariaDB,
    # Redis, the gateways), which the default loop makes markedly more expensive.
    uvloop.run(_serve_forever("worker"))


def run_workers(processes: int) -> None:
    """Start ``processes`` worker processes and wait for them.

    SIGTERM or SIGINT to this process is passed to every worker, which stops gracefully;
    the command exits 0 when they all did, 1 otherwise.
    """
    if processes == 1:
        _worker_process()
        return
    from pixwave.observability.metrics import start_metrics_server

    settings = get_settings()
    start_metrics_server(settings.metrics_host, settings.metrics_port)
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_worker_process, daemon=False) for _ in range(processes)]

    def forward(_signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for child in children:
        child.start()
    for child in children:
        child.join()
    if any(child.exitcode != 0 for child in children):
        raise SystemExit(1)


def run_scheduler_process() -> None:
    uvloop.run(_serve_forever("scheduler"))
