"""Job registration, the stream broker, enqueue after commit, and the scheduler's single
leader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import taskiq_redis.redis_broker
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import text
from taskiq import AckableMessage

from pixwave.kit.locks import MemoryLocks, RedisLocks
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.broker import StreamBroker
from pixwave.worker.jobs import JOBS, PERIODIC, JobQueue, kick_after_commit, load_jobs
from pixwave.worker.scheduler import LEASE, run_scheduler


class TestRegistry:
    def test_every_job_is_registered_by_its_dotted_name(self) -> None:
        """Importing the task modules registers the engine's jobs and periodic jobs."""
        load_jobs()
        assert {"payments.advance", "inbox.handle"} <= set(JOBS)
        assert {"payments.sweep", "gateways.probe"} <= set(PERIODIC)

    async def test_unknown_jobs_are_refused(self) -> None:
        """A typo in a job name fails loudly instead of vanishing."""

        async def kicker(name: str, argument: str) -> None:
            return None

        with pytest.raises(ValueError, match="no job named"):
            await JobQueue(kicker).kick("payments.advanse", "x")


class TestAfterCommit:
    async def test_sent_only_after_commit(self, any_resources: Resources) -> None:
        """A kick queued in a transaction leaves only once it commits."""
        sent: list[tuple[str, str]] = []

        async def kicker(name: str, argument: str) -> None:
            sent.append((name, argument))

        queue = JobQueue(kicker)
        async with any_resources.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            kick_after_commit(session, queue, "payments.advance", "txn_a")
            assert sent == []
            await flush_and_commit(session)
        assert sent == [("payments.advance", "txn_a")]

    async def test_forgotten_on_rollback(self, any_resources: Resources) -> None:
        """A rolled-back transaction enqueues nothing, even if the session commits later."""
        sent: list[Any] = []

        async def kicker(name: str, argument: str) -> None:
            sent.append(name)

        queue = JobQueue(kicker)
        async with any_resources.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            kick_after_commit(session, queue, "payments.advance", "txn_b")
            await session.rollback()
            await session.execute(text("SELECT 1"))
            await flush_and_commit(session)
        assert sent == []


class TestLocksExtend:
    @pytest.mark.parametrize("kind", ["memory", "redis"])
    async def test_only_the_owner_extends(self, kind: str, resources: Resources) -> None:
        """extend() keeps a lock for its owner and refuses anyone else."""
        assert resources.redis is not None
        locks = MemoryLocks() if kind == "memory" else RedisLocks(resources.redis)
        token = await locks.acquire("x", 1.0)
        assert token is not None
        assert await locks.extend("x", token, 5.0)
        assert not await locks.extend("x", "someone-else", 5.0)
        await locks.release("x", token)
        assert not await locks.extend("x", token, 5.0)


class TestSchedulerLeader:
    async def test_one_leader_kicks_the_other_stands_by(self, resources: Resources) -> None:
        """Two schedulers on one Redis: only one holds the lease and kicks periodic jobs."""
        kicks: list[str] = []

        async def kicker(name: str, argument: str) -> None:
            kicks.append(name)

        original = resources.jobs
        resources.jobs = JobQueue(kicker)
        stop = asyncio.Event()
        try:
            first = asyncio.create_task(run_scheduler(resources, stop))
            await asyncio.sleep(0.3)
            second = asyncio.create_task(run_scheduler(resources, stop))
            await asyncio.sleep(0.5)
            assert resources.redis is not None
            holder = await resources.redis.get(f"pixwave:lock:{LEASE}")
            assert holder is not None
            stop.set()
            await asyncio.gather(first, second)
        finally:
            resources.jobs = original
        # The sweep runs every SWEEP_INTERVAL_SECONDS (1 s) and both loops together lived
        # 0.8 s: the leader kicked it once; a second leader would have kicked it again.
        assert resources.settings.sweep_interval_seconds == 1.0
        assert kicks.count("payments.sweep") == 1


class TestSchedulerClock:
    """The scheduler on a stepped clock: ten simulated seconds decide in milliseconds."""

    async def test_each_periodic_job_is_kicked_once_per_interval(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        kicks: list[str] = []

        async def kicker(name: str, argument: str) -> None:
            kicks.append(name)

        monkeypatch.setattr(any_resources, "jobs", JobQueue(kicker))
        monkeypatch.setattr(any_resources, "locks", MemoryLocks())
        now = 0.0
        end = 9.9

        def clock() -> float:
            return now

        async def wait(stop: asyncio.Event, seconds: float) -> None:
            nonlocal now
            now += seconds
            if now > end:
                stop.set()

        await run_scheduler(any_resources, asyncio.Event(), clock=clock, wait=wait)
        settings = any_resources.settings
        for name, entry in PERIODIC.items():
            interval = float(getattr(settings, entry.interval_setting))
            assert kicks.count(name) == int(end // interval) + 1, name

    async def test_a_lost_lease_stops_the_kicks(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another scheduler took over: this one stops kicking at once."""
        kicks: list[str] = []

        async def kicker(name: str, argument: str) -> None:
            kicks.append(name)

        class LosingLocks(MemoryLocks):
            async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
                return False

        monkeypatch.setattr(any_resources, "jobs", JobQueue(kicker))
        monkeypatch.setattr(any_resources, "locks", LosingLocks())
        ticks = 0

        async def wait(stop: asyncio.Event, seconds: float) -> None:
            nonlocal ticks
            ticks += 1
            if ticks >= 2:
                stop.set()

        await run_scheduler(any_resources, asyncio.Event(), clock=lambda: 0.0, wait=wait)
        assert kicks == list(PERIODIC)  # the first tick only; the second found the lease gone

    async def test_redis_failing_under_the_lease_does_not_stop_the_scheduler(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redis restarts: extending the lease raises. The scheduler stops kicking while it
        cannot prove its lease, keeps running, and leads again once Redis answers."""
        kicks: list[str] = []

        async def kicker(name: str, argument: str) -> None:
            kicks.append(name)

        class FlakyLocks(MemoryLocks):
            down = False

            async def acquire(self, name: str, ttl_seconds: float) -> str | None:
                if self.down:
                    raise ConnectionError("Connection closed by server.")
                return await super().acquire(name, ttl_seconds)

            async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
                if self.down:
                    raise ConnectionError("Connection closed by server.")
                return await super().extend(name, token, ttl_seconds)

            def restart(self) -> None:
                """Redis goes away and comes back empty."""
                self.down = True
                self._held.clear()

        locks = FlakyLocks()
        monkeypatch.setattr(any_resources, "jobs", JobQueue(kicker))
        monkeypatch.setattr(any_resources, "locks", locks)
        ticks = 0
        kicked_while_down = 0

        async def wait(stop: asyncio.Event, seconds: float) -> None:
            nonlocal ticks, kicked_while_down
            ticks += 1
            if ticks == 1:
                locks.restart()  # after the first tick
            elif ticks == 3:
                kicked_while_down = len(kicks)
                locks.down = False
            elif ticks >= 4:
                stop.set()

        # Each tick is a minute later: every periodic job is due again at every tick.
        clock = lambda: ticks * 60.0  # noqa: E731
        await run_scheduler(any_resources, asyncio.Event(), clock=clock, wait=wait)
        assert kicked_while_down == len(PERIODIC)  # only the first tick's kicks
        assert len(kicks) > len(PERIODIC)  # leading again once Redis answered


class TestStreamBroker:
    async def test_a_kicked_job_reaches_a_worker_of_the_stream(
        self, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Our sender writes what taskiq-redis's receiver reads: the worker side takes the job
        from the stream with its argument, and acknowledging it (on the broker's own client,
        building none) leaves nothing pending."""
        stream, group = "pixwave:test-jobs", "pixwave-test-workers"
        redis = Redis.from_url(redis_url)
        await redis.delete(stream)
        broker = StreamBroker(url=redis_url, queue_name=stream, consumer_group_name=group)

        async def job(argument: str = "") -> None:
            return None

        task = broker.register_task(job, task_name="test.job")
        await broker.startup()
        try:
            await task.kiq("txn_1")
            entries = await redis.xrange(stream)
            assert entries is not None
            assert len(entries) == 1
            fields = entries[0][1]
            assert fields is not None
            data = fields[b"data"]
            assert isinstance(data, bytes)
            message = broker.formatter.loads(data)
            assert (message.task_name, message.args) == ("test.job", ["txn_1"])
            async for received in broker.listen():
                assert isinstance(received, AckableMessage)
                assert broker.formatter.loads(received.data).args == ["txn_1"]

                def no_new_client(*args: object, **kwargs: object) -> None:
                    raise AssertionError("a Redis client was built to acknowledge")

                monkeypatch.setattr(taskiq_redis.redis_broker, "Redis", no_new_client)
                acked = received.ack()
                assert acked is not None
                await acked
                break
            assert (await redis.xpending(stream, group))["pending"] == 0
        finally:
            await broker.shutdown()
            await redis.delete(stream)
            await redis.aclose()

    async def test_a_consumer_group_lost_with_redis_is_made_again(self, redis_url: str) -> None:
        """Redis restarted empty: the stream and its group are gone and a job arrives. The
        first read fails (NOGROUP) and declares the group again from the stream's start; the
        next read gets the job that arrived in between."""
        stream, group = "pixwave:test-jobs-lost", "pixwave-test-workers"
        redis = Redis.from_url(redis_url)
        await redis.delete(stream)
        broker = StreamBroker(url=redis_url, queue_name=stream, consumer_group_name=group)

        async def job(argument: str = "") -> None:
            return None

        task = broker.register_task(job, task_name="test.job")
        await broker.startup()
        try:
            await redis.delete(stream)  # what a restart without persistence leaves
            await task.kiq("txn_after_restart")
            with pytest.raises(ResponseError, match="NOGROUP"):
                async for _ in broker.listen():
                    pass
            async for received in broker.listen():
                assert broker.formatter.loads(received.data).args == ["txn_after_restart"]
                break
        finally:
            await broker.shutdown()
            await redis.delete(stream)
            await redis.aclose()


async def command_calls(redis: Redis, *commands: str) -> int:
    """How many times the server ran these commands (``INFO commandstats``)."""
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in commands)


async def first_message(broker: StreamBroker) -> AckableMessage:
    """The first message the broker's listen loop yields, within 5 s."""

    async def first() -> AckableMessage:
        async for message in broker.listen():
            return message
        raise AssertionError("the listen loop ended")

    return await asyncio.wait_for(first(), timeout=5)


class TestStreamClaims:
    """What a dead worker left unacknowledged comes back, without a claim on every read."""

    STREAM, GROUP = "pixwave:test-claims", "pixwave-test-workers"

    @pytest.fixture
    async def redis(self, redis_url: str) -> Any:
        redis = Redis.from_url(redis_url)
        await redis.delete(self.STREAM)
        yield redis
        await redis.delete(self.STREAM)
        await redis.aclose()

    async def broker(self, redis_url: str, *, idle_ms: int) -> StreamBroker:
        broker = StreamBroker(
            url=redis_url,
            queue_name=self.STREAM,
            consumer_group_name=self.GROUP,
            idle_timeout=idle_ms,
            xread_block=50,
        )

        async def job(argument: str = "") -> None:
            return None

        broker.register_task(job, task_name="test.job")
        await broker.startup()
        return broker

    async def test_a_dead_workers_message_is_claimed_in_a_quiet_stream(
        self, redis_url: str, redis: Redis
    ) -> None:
        """Another consumer took the job and died; nothing new arrives. Once the message is
        idle past the redelivery time, this worker gets it — with one XAUTOCLAIM, no lock,
        no MULTI, no script."""
        broker = await self.broker(redis_url, idle_ms=300)
        try:
            await redis.xadd(self.STREAM, {b"data": b"left-by-the-dead"})
            taken = await redis.xreadgroup(self.GROUP, "dead-worker", {self.STREAM: ">"})
            assert taken
            before = await command_calls(redis, "multi", "script|exists", "evalsha", "set")
            message = await first_message(broker)
            assert message.data == b"left-by-the-dead"
            pending = await redis.xpending_range(self.STREAM, self.GROUP, "-", "+", 10)
            assert [p["consumer"] for p in pending] == [broker.consumer_name.encode()]
            acked = message.ack()
            assert acked is not None
            await acked
            assert (await redis.xpending(self.STREAM, self.GROUP))["pending"] == 0
            assert await command_calls(redis, "multi", "script|exists", "evalsha", "set") == before
        finally:
            await broker.shutdown()

    async def test_reads_do_not_each_claim(self, redis_url: str, redis: Redis) -> None:
        """With the redelivery time at 300 s, twenty messages read one by one cost no claim
        (taskiq-redis's own loop claimed after every read that brought one)."""
        broker = await self.broker(redis_url, idle_ms=300_000)
        broker.count = 1
        try:
            for i in range(20):
                await redis.xadd(self.STREAM, {b"data": str(i).encode()})
            before = await command_calls(redis, "xautoclaim")
            received = []
            async for message in broker.listen():
                received.append(message.data)
                if len(received) == 20:
                    break
            assert received == [str(i).encode() for i in range(20)]
            assert await command_calls(redis, "xautoclaim") == before
        finally:
            await broker.shutdown()

    async def test_an_entry_trimmed_before_its_claim_is_dropped(
        self, redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Redis 6.2 answers a claimed entry the stream no longer holds with no fields: it is
        acknowledged (off the pending list for good), never handed to a job."""
        broker = await self.broker(redis_url, idle_ms=10)
        acked: list[bytes] = []

        async def claim(*args: Any, **kwargs: Any) -> list[Any]:
            return [b"0-0", [(b"1-1", None), (b"1-2", {b"data": b"kept"})], []]

        async def xack(stream: str, group: str, entry_id: bytes) -> int:
            acked.append(entry_id)
            return 1

        monkeypatch.setattr(broker._client, "xautoclaim", claim)
        monkeypatch.setattr(broker._client, "xack", xack)
        try:
            assert (await first_message(broker)).data == b"kept"
            assert acked == [b"1-1"]
        finally:
            await broker.shutdown()
