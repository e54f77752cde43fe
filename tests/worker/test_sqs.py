"""SQS as the job broker (against moto's SQS over HTTP), the queue settings it needs, and a
worker's graceful stop on both shared brokers."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from redis.asyncio import Redis
from taskiq import AsyncBroker
from taskiq.exceptions import SendTaskError
from typer.testing import CliRunner

from pixwave.cli import app
from pixwave.config import get_settings
from pixwave.worker.broker import (
    BrokerConfigError,
    StreamBroker,
    build_broker,
    job_queue,
    register_jobs,
)
from pixwave.worker.runner import receive_jobs
from pixwave.worker.sqs import DelayTooLong, MessageTooLarge, SqsBroker, region_of
from tests.aws import REGION
from tests.conftest import make_settings

QUEUE = "pixwave-jobs-test"


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)


def create_queue(endpoint: str, **attributes: str) -> str:
    return str(
        sqs_client(endpoint).create_queue(QueueName=QUEUE, Attributes=attributes)["QueueUrl"]
    )


def counts(endpoint: str, queue_url: str) -> tuple[int, int, int]:
    """(waiting, in flight, delayed) messages on the queue."""
    names = ["", "NotVisible", "Delayed"]
    attributes = sqs_client(endpoint).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=[f"ApproximateNumberOfMessages{n}" for n in names]
    )["Attributes"]
    visible = int(attributes.get("ApproximateNumberOfMessages", 0))
    return (
        visible,
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def sqs_broker(endpoint: str, queue_url: str, **overrides: Any) -> SqsBroker:
    options: dict[str, Any] = {
        "visibility_seconds": 30,
        "region": REGION,
        "endpoint_url": endpoint,
        "timeout_seconds": 5,
        "wait_seconds": 1,
        **overrides,
    }
    return SqsBroker(queue_url, **options)


@pytest.fixture
def queue_url(aws: str) -> str:
    return create_queue(aws)


class Recorder:
    """A job that records its argument; ``hold`` keeps it running that many seconds."""

    def __init__(self, hold: float = 0.0) -> None:
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.done: list[str] = []

        async def run(argument: str = "") -> None:  # taskiq registers functions
            self.started.set()
            await asyncio.sleep(hold)
            self.done.append(argument)
            self.finished.set()

        self.run = run


class TestSqsBroker:
    async def test_a_kicked_job_runs_and_is_deleted(self, aws: str, queue_url: str) -> None:
        """Kick → receive → run → ack: the job ran with its argument and the queue is empty."""
        broker = sqs_broker(aws, queue_url)
        job = Recorder()
        task = broker.register_task(job.run, task_name="test.job")
        await broker.startup()
        stop = asyncio.Event()
        try:
            worker = asyncio.create_task(receive_jobs(broker, stop, concurrency=5))
            await task.kiq("txn_1")
            await asyncio.wait_for(job.finished.wait(), timeout=10)
            stop.set()
            await asyncio.wait_for(worker, timeout=5)
        finally:
            await broker.shutdown()
        assert job.done == ["txn_1"]
        assert counts(aws, queue_url) == (0, 0, 0)

    async def test_an_unacknowledged_message_comes_back_after_the_visibility_timeout(
        self, aws: str, queue_url: str
    ) -> None:
        """A worker that received a job and died: hidden for the visibility timeout, then
        another worker gets the same job."""
        dead, alive = (sqs_broker(aws, queue_url, visibility_seconds=1) for _ in range(2))
        task = dead.register_task(Recorder().run, task_name="test.job")
        await dead.startup()
        await alive.startup()
        try:
            await task.kiq("txn_2")
            async for received in dead.listen():  # taken, never acknowledged
                first = dead.formatter.loads(received.data)
                break
            assert counts(aws, queue_url)[:2] == (0, 1)  # hidden from everyone else
            started = time.monotonic()
            async for received in alive.listen():
                again = alive.formatter.loads(received.data)
                acked = received.ack()
                assert acked is not None
                await acked
                break
            waited = time.monotonic() - started
        finally:
            await dead.shutdown()
            await alive.shutdown()
        assert (again.task_id, again.args) == (first.task_id, ["txn_2"])
        assert 0.5 < waited < 5, waited
        assert counts(aws, queue_url) == (0, 0, 0)

    async def test_messages_received_but_not_started_are_released_at_once(
        self, aws: str, queue_url: str
    ) -> None:
        """A receive brings up to ten; those the worker never started are visible again when
        it stops listening, not after the visibility timeout."""
        broker = sqs_broker(aws, queue_url, visibility_seconds=300)
        task = broker.register_task(Recorder().run, task_name="test.job")
        await broker.startup()
        try:
            for n in range(3):
                await task.kiq(f"txn_{n}")
            listening = broker.listen()
            taken = await anext(listening)
            await listening.aclose()
            await taken.ack()  # type: ignore[misc]
        finally:
            await broker.shutdown()
        assert counts(aws, queue_url) == (2, 0, 0)

    async def test_a_message_above_the_queue_limit_is_refused_before_sending(
        self, aws: str
    ) -> None:
        """The queue's own MaximumMessageSize is read at start; a bigger job raises, naming
        both sizes, and nothing is sent."""
        queue_url = create_queue(aws, MaximumMessageSize="1024")
        broker = sqs_broker(aws, queue_url)
        task = broker.register_task(Recorder().run, task_name="test.job")
        await broker.startup()
        try:
            assert broker.max_message_bytes == 1024
            with pytest.raises(SendTaskError) as refused:
                await task.kiq("x" * 2000)
            assert isinstance(refused.value.__cause__, MessageTooLarge)
            assert re.search(r"test\.job is \d+ bytes.*at most 1024", str(refused.value.__cause__))
            await task.kiq("txn_small")
        finally:
            await broker.shutdown()
        assert counts(aws, queue_url) == (1, 0, 0)

    async def test_the_job_queue_raises_the_reason(self, aws: str) -> None:
        """What the engine's kick (and the after-commit log) sees is why, not taskiq's bare
        "cannot send"."""
        broker = sqs_broker(aws, create_queue(aws, MaximumMessageSize="1024"))
        register_jobs(broker, cast(Any, None))  # kicking never touches resources
        queue = job_queue(broker)
        await broker.startup()
        try:
            with pytest.raises(MessageTooLarge, match="at most 1024"):
                await queue.kick("payments.advance", "txn_" + "x" * 2000)
        finally:
            await broker.shutdown()

    async def test_a_delay_beyond_fifteen_minutes_is_refused(
        self, aws: str, queue_url: str
    ) -> None:
        """SQS holds a message 900 s at most: 901 raises (pointing at the sweep); 2 s is
        sent as a delayed message."""
        broker = sqs_broker(aws, queue_url)
        task = broker.register_task(Recorder().run, task_name="test.job")
        await broker.startup()
        try:
            with pytest.raises(SendTaskError) as refused:
                await task.kicker().with_labels(delay=901).kiq("txn_late")
            assert isinstance(refused.value.__cause__, DelayTooLong)
            assert "sweep" in str(refused.value.__cause__)
            assert counts(aws, queue_url) == (0, 0, 0)
            await task.kicker().with_labels(delay=2).kiq("txn_soon")
        finally:
            await broker.shutdown()
        assert counts(aws, queue_url) == (0, 0, 1)

    async def test_an_idle_long_poll_is_not_a_timeout(self, aws: str, queue_url: str) -> None:
        """The long poll's read timeout is longer than the poll: an empty queue waits quietly
        for SQS_WAIT_SECONDS even when AWS_TIMEOUT_SECONDS is shorter."""
        broker = sqs_broker(aws, queue_url, timeout_seconds=0.3, wait_seconds=1)
        await broker.startup()
        try:
            with pytest.raises(TimeoutError):  # ours, not botocore's ReadTimeoutError
                await asyncio.wait_for(anext(broker.listen()), timeout=2.5)
        finally:
            await broker.shutdown()

    async def test_every_call_has_a_deadline(self, silent_endpoint: str) -> None:
        """An endpoint that accepts connections and never answers: start-up fails within the
        timeout (two tries) instead of hanging."""
        broker = SqsBroker(
            f"{silent_endpoint}/000000000000/jobs",
            visibility_seconds=30,
            region=REGION,
            endpoint_url=silent_endpoint,
            timeout_seconds=0.3,
            wait_seconds=0,
        )
        started = time.monotonic()
        with pytest.raises((ReadTimeoutError, ConnectTimeoutError)):
            await broker.startup()
        await broker.shutdown()
        assert time.monotonic() - started < 5


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not closing.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        closing.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


# --- a worker's graceful stop, on both shared brokers -----------------------------------------

STREAM, GROUP = "pixwave:test-stop", "pixwave-test-stop"


@pytest.fixture(params=["redis", "sqs"])
async def shared_broker(request: pytest.FixtureRequest, redis_url: str) -> tuple[str, AsyncBroker]:
    """A broker as a worker has it. The SQS long poll (5 s) is cancelled at a stop; Redis's
    XREADGROUP blocks 1 s as in production (redis-py sometimes finishes a blocking read it
    was asked to cancel, so that second bounds a stop)."""
    broker: AsyncBroker
    if request.param == "redis":
        redis = Redis.from_url(redis_url)
        await redis.delete(STREAM)
        await redis.aclose()
        broker = StreamBroker(
            url=redis_url,
            queue_name=STREAM,
            consumer_group_name=GROUP,
            xread_block=1000,
            idle_timeout=300_000,
        )
    else:
        endpoint = request.getfixturevalue("aws")
        broker = sqs_broker(endpoint, create_queue(endpoint), wait_seconds=5)
    return request.param, broker


async def unacknowledged(kind: str, broker: AsyncBroker, redis_url: str) -> int:
    """Messages a worker took and did not acknowledge."""
    if kind == "redis":
        redis = Redis.from_url(redis_url)
        try:
            return int((await redis.xpending(STREAM, GROUP))["pending"])
        finally:
            await redis.aclose()
    assert isinstance(broker, SqsBroker)
    assert broker._endpoint_url is not None
    return counts(broker._endpoint_url, broker.queue_url)[1]


class TestGracefulStop:
    async def test_an_idle_worker_stops_at_once(
        self, shared_broker: tuple[str, AsyncBroker]
    ) -> None:
        """Stopping does not wait for the next message, nor for SQS's long poll."""
        _, broker = shared_broker
        await broker.startup()
        stop = asyncio.Event()
        try:
            worker = asyncio.create_task(receive_jobs(broker, stop, concurrency=5))
            await asyncio.sleep(0.5)  # inside the blocking read now
            stop.set()
            started = time.monotonic()
            await asyncio.wait_for(worker, timeout=10)
        finally:
            await broker.shutdown()
        assert time.monotonic() - started < 1.5

    async def test_a_running_job_finishes_and_is_acknowledged(
        self, shared_broker: tuple[str, AsyncBroker], redis_url: str
    ) -> None:
        """Stop while a job runs: it completes, is acknowledged, and the worker returns."""
        kind, broker = shared_broker
        job = Recorder(hold=0.5)
        task = broker.register_task(job.run, task_name="test.job")
        await broker.startup()
        stop = asyncio.Event()
        try:
            worker = asyncio.create_task(receive_jobs(broker, stop, concurrency=5, grace=10))
            await task.kiq("txn_running")
            await asyncio.wait_for(job.started.wait(), timeout=10)
            stop.set()
            started = time.monotonic()
            await asyncio.wait_for(worker, timeout=10)
            elapsed = time.monotonic() - started
            assert job.done == ["txn_running"]
            assert elapsed < 2, elapsed
            assert await unacknowledged(kind, broker, redis_url) == 0
        finally:
            await broker.shutdown()

    async def test_a_job_outliving_the_grace_is_left_for_redelivery(
        self, shared_broker: tuple[str, AsyncBroker], redis_url: str
    ) -> None:
        """A job still running when the grace ends is cut off and *not* acknowledged, so the
        broker hands it to another worker like a killed worker's."""
        kind, broker = shared_broker
        job = Recorder(hold=60)
        task = broker.register_task(job.run, task_name="test.job")
        await broker.startup()
        stop = asyncio.Event()
        try:
            worker = asyncio.create_task(receive_jobs(broker, stop, concurrency=5, grace=0.3))
            await task.kiq("txn_slow")
            await asyncio.wait_for(job.started.wait(), timeout=10)
            stop.set()
            await asyncio.wait_for(worker, timeout=5)
            assert job.done == []
            assert await unacknowledged(kind, broker, redis_url) == 1
        finally:
            await broker.shutdown()


# --- the settings SQS needs ---------------------------------------------------------------------


class TestConfiguration:
    def test_sqs_without_redis_is_refused(self) -> None:
        """Leases, locks and gateway health live in Redis: SQS alone cannot run the engine."""
        settings = make_settings(queue_connection="sqs", aws_sqs_queue="https://q.example/1/j")
        with pytest.raises(BrokerConfigError, match="needs Redis"):
            build_broker(settings)

    def test_sqs_without_a_queue_url_is_refused(self, redis_url: str) -> None:
        """QUEUE_CONNECTION=sqs without AWS_SQS_QUEUE names the missing setting."""
        settings = make_settings(queue_connection="sqs", redis_url=redis_url)
        with pytest.raises(BrokerConfigError, match="AWS_SQS_QUEUE"):
            build_broker(settings)

    def test_sqs_settings_reach_the_broker(self, redis_url: str) -> None:
        """The visibility timeout is JOB_REDELIVERY_SECONDS (rounded up); the long poll's
        read timeout outlasts SQS_WAIT_SECONDS; the queue URL's region wins over another."""
        settings = make_settings(
            queue_connection="sqs",
            redis_url=redis_url,
            aws_sqs_queue="https://sqs.sa-east-1.amazonaws.com/123456789012/pixwave-jobs",
            job_redelivery_seconds=2.5,
            sqs_wait_seconds=20,
            aws_timeout_seconds=3,
            aws_default_region="us-east-1",
        )
        broker = build_broker(settings)
        assert isinstance(broker, SqsBroker)
        assert broker.visibility_seconds == 3
        assert broker.client_config.connect_timeout == 3
        assert broker.client_config.read_timeout == 23
        assert broker._session.region_name == "sa-east-1"

    def test_region_of_a_queue_url(self) -> None:
        """AWS queue URLs name their region; emulators and custom endpoints do not."""
        assert region_of("https://sqs.us-east-1.amazonaws.com/1/q") == "us-east-1"
        assert region_of("https://sqs.cn-north-1.amazonaws.com.cn/1/q") == "cn-north-1"
        assert region_of("http://127.0.0.1:5000/1/q") is None

    @pytest.mark.parametrize("command", [["worker"], ["scheduler"], ["api"]])
    def test_the_commands_refuse_sqs_without_redis(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, command: list[str]
    ) -> None:
        """Exit 2 at start with the reason, before any process is spawned."""
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        monkeypatch.setenv("QUEUE_CONNECTION", "sqs")
        monkeypatch.setenv("AWS_SQS_QUEUE", "https://sqs.us-east-1.amazonaws.com/1/jobs")
        for name in ("REDIS_URL", "REDIS_HOST"):
            monkeypatch.delenv(name, raising=False)
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, command)
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 2, result.output
        assert "needs Redis" in result.output
