"""The taskiq broker: Redis streams or Amazon SQS in production, in memory for the embedded
default.

Each process builds its broker around its own `Resources`, so a job's function gets the
engine, Redis and gateways of the process that runs it, without globals. Messages are
acknowledged only after the job has run: a worker killed mid-job leaves its message
unacknowledged, and it goes to another worker once `JOB_REDELIVERY_SECONDS` have passed. On
Redis that is XAUTOCLAIM, which each worker runs every tenth of that time (5 s at most),
between its reads (`StreamBroker.listen`); on SQS it is the visibility timeout (`sqs.py`).
SQS carries only the jobs: leases, locks and gateway health still live in Redis, which is why
QUEUE_CONNECTION=sqs needs Redis too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, assert_never, cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, InMemoryBroker
from taskiq.exceptions import SendTaskError
from taskiq_redis import RedisStreamBroker

from pixwave.config import Settings
from pixwave.observability.context import JobLogContext
from pixwave.observability.metrics import JobMetrics
from pixwave.worker.jobs import JOBS, PERIODIC, JobFunction, JobQueue, PeriodicFunction, load_jobs
from pixwave.worker.sqs import SqsBroker

if TYPE_CHECKING:
    from pixwave.resources import Resources

STREAM = "pixwave:jobs"
GROUP = "pixwave-workers"

log = structlog.get_logger("pixwave.worker")

#: A stream entry as redis-py reads it: its id and its fields.
Entry = tuple[bytes, dict[bytes, bytes]]


class StreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, sending with one long-lived client.

    Its own ``kick`` builds a Redis client object per message, and building one fills the
    client's response-callback table: ~0.2 ms of CPU per enqueued job, as much as the rest of
    the enqueue together. The client here shares the broker's connection pool.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = Redis(connection_pool=self.connection_pool)

    async def shutdown(self) -> None:
        await self._client.aclose()  # the pool itself is the broker's to close
        await super().shutdown()

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Read the stream; every so often, claim what a dead worker left unacknowledged.

        taskiq-redis's own loop claims after every read that brought messages, in a MULTI
        with a lock whose release is a script: two more round trips per read (redis-py asks
        ``SCRIPT EXISTS`` before each), and a lock that guards nothing inside a MULTI. It
        also never claims while the stream is quiet. Here XAUTOCLAIM, atomic by itself, runs
        once per ``claim_every`` seconds, after a read whatever it brought: a message waits
        ``JOB_REDELIVERY_SECONDS`` plus ``claim_every`` at most.

        A Redis restarted without its data (or a failover to a replica that never saw the
        group) answers every read with NOGROUP, and without the second half of this the
        workers would wait forever while jobs pile up in the stream: the group is made again
        from the stream's first entry — everything in it arrived after the loss — and the
        error goes up, so the worker listens again shortly."""
        try:
            async for message in self._read():
                yield message
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("worker.consumer_group_lost", stream=self.queue_name)
            try:
                await self._client.xgroup_create(
                    self.queue_name, self.consumer_group_name, id="0", mkstream=True
                )
            except ResponseError as again:  # another worker made it first (BUSYGROUP)
                if "BUSYGROUP" not in str(again):
                    raise
            raise

    @property
    def claim_every(self) -> float:
        """Seconds between two claims of one worker: a tenth of the redelivery time, 5 at most."""
        return min(self.idle_timeout / 10_000, 5.0)

    async def _read(self) -> AsyncGenerator[AckableMessage, None]:
        client, stream, group = self._client, self.queue_name, self.consumer_group_name
        next_claim = time.monotonic() + self.claim_every
        while True:
            fetched = cast(  # redis-py's RESP2 reply: [[stream, [entry, …]]], or None
                "list[tuple[bytes, list[Entry]]] | None",
                await client.xreadgroup(
                    group, self.consumer_name, {stream: ">"}, count=self.count, block=self.block
                ),
            )
            for _, entries in fetched or ():
                for entry_id, fields in entries:
                    yield self._message(entry_id, fields)
            if time.monotonic() < next_claim:
                continue
            next_claim = time.monotonic() + self.claim_every
            answer: list[Any] = await client.xautoclaim(
                stream,
                group,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                count=self.unacknowledged_batch_size,
            )
            claimed: list[Entry] = answer[1]  # [next start, claimed, deleted]
            for entry_id, fields in claimed:
                if not fields:  # trimmed from the stream meanwhile (Redis 6.2 says so this way)
                    await client.xack(stream, group, entry_id)
                    continue
                yield self._message(entry_id, fields)

    def _message(self, entry_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage:
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(entry_id.decode(), self.queue_name)
        )

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        """taskiq-redis's acknowledgement, on the long-lived client (its own builds a client
        per acknowledged message, like its ``kick``)."""

        async def ack() -> None:
            await self._client.xack(queue_name, self.consumer_group_name, id)

        return ack

    async def kick(self, message: BrokerMessage) -> None:
        queue_name = message.labels.get("queue_name") or self.queue_name
        await self._client.xadd(
            queue_name,
            {b"data": message.message},
            maxlen=self.maxlen,
            approximate=self.approximate,
        )


class BrokerConfigError(ValueError):
    """The queue settings cannot work (raised at start, before any job is taken)."""


def broker_problem(settings: Settings) -> str | None:
    """Why the queue settings cannot work, in the operator's words; None when they can."""
    if settings.queue_backend != "sqs":
        return None
    if not settings.redis_dsn:
        return (
            "QUEUE_CONNECTION=sqs needs Redis too (REDIS_URL or REDIS_HOST): SQS carries the "
            "jobs, Redis holds the payment leases, locks and gateway health every process shares"
        )
    if not settings.aws_sqs_queue:
        return "QUEUE_CONNECTION=sqs needs AWS_SQS_QUEUE, the URL of the job queue"
    return None


def build_broker(settings: Settings) -> AsyncBroker:
    """The broker QUEUE_CONNECTION asks for (middlewares go on here, for every kind)."""
    if problem := broker_problem(settings):
        raise BrokerConfigError(problem)
    broker: AsyncBroker
    match settings.queue_backend:
        case "redis":
            assert settings.redis_dsn is not None
            broker = StreamBroker(
                url=settings.redis_dsn,
                queue_name=STREAM,
                consumer_group_name=GROUP,
                maxlen=settings.job_stream_maxlen,
                approximate=True,
                idle_timeout=int(settings.job_redelivery_seconds * 1000),
                xread_block=1000,
            )
        case "sqs":
            assert settings.aws_sqs_queue is not None
            broker = SqsBroker(
                settings.aws_sqs_queue,
                visibility_seconds=settings.job_redelivery_seconds,
                region=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
                timeout_seconds=settings.aws_timeout_seconds,
                wait_seconds=settings.sqs_wait_seconds,
                receive_batch=settings.worker_concurrency,
            )
        case "memory":
            broker = InMemoryBroker(
                max_async_tasks=settings.worker_concurrency, propagate_exceptions=False
            )
        case unknown:
            assert_never(unknown)
    # Every job's log lines carry its name, id, transaction and the request that enqueued it;
    # every job is timed by name and outcome.
    return broker.with_middlewares(JobLogContext(), JobMetrics())


def _bind(resources: Resources, function: JobFunction) -> Callable[[str], Awaitable[None]]:
    async def run(argument: str = "") -> None:
        await function(resources, argument)

    return run


def _bind_periodic(
    resources: Resources, function: PeriodicFunction
) -> Callable[[str], Awaitable[None]]:
    async def run(_: str = "") -> None:
        await function(resources)

    return run


def register_jobs(broker: AsyncBroker, resources: Resources) -> None:
    """Register every job on ``broker``, bound to ``resources`` (the jobs' context)."""
    load_jobs()
    for name, function in JOBS.items():
        broker.register_task(_bind(resources, function), task_name=name)
    for name, entry in PERIODIC.items():
        broker.register_task(_bind_periodic(resources, entry.function), task_name=name)


def job_queue(broker: AsyncBroker) -> JobQueue:
    """The queue that enqueues on ``broker``: it finds each job's task when it kicks, so it
    can exist before the jobs are bound (the composition root binds them last)."""

    async def kick(name: str, argument: str) -> None:
        task = broker.find_task(name)
        if task is None:
            raise RuntimeError(f"job {name!r} is not registered on this broker")
        try:
            # The request id goes on as a label, added by JobLogContext.pre_send.
            await task.kiq(argument)
        except SendTaskError as exc:  # says only "cannot send": the reason is its cause
            if isinstance(exc.__cause__, Exception):
                raise exc.__cause__ from None
            raise

    return JobQueue(kick)
