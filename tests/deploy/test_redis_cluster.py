"""PixWave's Redis scripts on Redis Cluster: every script's keys live in one hash slot.

A script may only touch keys of one slot on a cluster. Two checks: the slots of every key a
script is handed — or builds from a key base it is handed — computed for the real classes
driven through a recording fake; and the same classes run against a real three-master
cluster (`redis-server --cluster-enabled yes`), started and stopped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import (
    CircuitState,
    GatewaySettings,
    HealthConfig,
    HealthState,
    RedisHealthStore,
)
from pixwave.kit.locks import RedisLocks
from pixwave.payments.cache import TransactionCache
from pixwave.payments.lease import RedisLeases
from pixwave.worker.scheduler import LEASE
from tests.deploy.tools import require_tool

GATEWAYS = ["mercadopago", "efi"]
CLUSTER_PORTS = (7100, 7101, 7102)


# --- the slots, computed --------------------------------------------------------------------


@dataclass
class Call:
    keys: list[str]
    args: list[Any]


@dataclass
class RecordingRedis:
    """Stands in for redis.asyncio.Redis: records each script call and answers like Redis
    would for an empty database."""

    calls: list[Call] = field(default_factory=list)
    answers: dict[int, Any] = field(default_factory=dict)

    def register_script(self, script: str) -> Any:
        async def run(keys: list[str], args: list[Any] | None = None) -> Any:
            self.calls.append(Call(list(keys), list(args or [])))
            answer = self.answers.get(id(run))
            return answer(keys) if callable(answer) else answer

        self.answers[id(run)] = 1
        run.script = script  # type: ignore[attr-defined]
        return run

    def answer(self, script: Any, value: Any) -> None:
        self.answers[id(script)] = value

    async def set(self, *args: Any, **kwargs: Any) -> bool:
        return True


def _slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


class TestSlotsOfEveryScriptCall:
    async def test_locks(self) -> None:
        """Release and extend touch one key (the scheduler's lease is such a lock)."""
        redis = RecordingRedis()
        locks = RedisLocks(redis)  # type: ignore[arg-type]
        await locks.release(LEASE, "t")
        await locks.extend(LEASE, "t", 5)
        assert [len(call.keys) for call in redis.calls] == [1, 1]

    async def test_payment_lease_and_its_note(self) -> None:
        """Taking the lease (and leaving a note) and letting go are one slot each."""
        redis = RecordingRedis()
        leases = RedisLeases(redis, RedisLocks(redis))  # type: ignore[arg-type]
        await leases.enter("txn_01J0000000000000000000000", 30, note=True)
        await leases.leave("txn_01J0000000000000000000000", "token")
        assert len(redis.calls) == 2
        for call in redis.calls:
            assert len(call.keys) == 2
            assert len(_slots(call.keys)) == 1, call.keys

    async def test_transaction_cache_lookup(self) -> None:
        """The lookup reads the version key and the data key it builds from KEYS[2]."""
        redis = RecordingRedis()
        cache = TransactionCache(redis, 30)  # type: ignore[arg-type]
        redis.answer(cache._lookup, [b"7", None])
        assert await cache.get("txn_01J0000000000000000000000") == ("7", None)
        (call,) = redis.calls
        version_key, data_key = call.keys
        assert len(_slots([version_key, data_key, data_key + "7"])) == 1

    async def test_health_scripts(self) -> None:
        """Record, allow, snapshot and the router's view over every gateway: the declared
        keys and the window keys built from the key bases share one slot."""
        redis = RecordingRedis()
        store = RedisHealthStore(redis, HealthConfig(), gateways=GATEWAYS)  # type: ignore[arg-type]
        redis.answer(store._record, [b"", 0, 0, 0])
        redis.answer(store._snapshot, [0, 0, 0, 0, -1, 0])
        redis.answer(store._view, [0, 0, 0, 0, -1, 0, None, None] * len(GATEWAYS))
        await store.record("mercadopago", "charge", Outcome.UNAVAILABLE, 120)
        await store.allow("efi", "send")
        await store.snapshot("efi", "refund")
        await store.view(GATEWAYS, "charge")
        assert len(redis.calls) == 4
        every_key: list[str] = []
        for call in redis.calls:
            bases = [arg for arg in call.args if isinstance(arg, str) and arg.endswith(":")]
            built = [base + suffix for base in bases for suffix in ("b:1", "l:1", "streak")]
            assert len(_slots(call.keys + built)) == 1, call.keys + built
            every_key += call.keys + built
        # The view spans gateways, so the whole store shares one slot.
        assert len(_slots(every_key)) == 1

    def test_keys_of_different_payments_spread_over_the_cluster(self) -> None:
        """Per-payment keys are tagged by the payment, not by one global tag."""
        cache = TransactionCache(RecordingRedis(), 30)  # type: ignore[arg-type]
        slots = {key_slot(cache._keys(f"txn_{i:026d}")[0].encode()) for i in range(50)}
        assert len(slots) > 40


# --- the scripts, run on a real cluster -----------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Three masters on 127.0.0.1:7100-7102, slots spread by `redis-cli --cluster create`."""
    server = require_tool("redis-server", "apt-get install redis-server")
    cli = require_tool("redis-cli", "apt-get install redis-tools")
    busy = [port for port in CLUSTER_PORTS if not _port_free(port)]
    assert not busy, f"ports {busy} are taken: stop what listens there"
    base = tmp_path_factory.mktemp("redis-cluster")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in CLUSTER_PORTS:
            directory = base / str(port)
            directory.mkdir()
            processes.append(
                subprocess.Popen(
                    [
                        server,
                        "--port", str(port),
                        "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(directory / "nodes.conf"),
                        "--dir", str(directory),
                        "--save", "",
                        "--appendonly", "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in CLUSTER_PORTS:
            _wait(lambda port=port: not _port_free(port), 10, f"redis-server on {port}")
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in CLUSTER_PORTS),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        _wait(lambda: _cluster_ok(cli), 30, "cluster_state:ok on every node")
        yield "127.0.0.1", CLUSTER_PORTS[0]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
                process.wait()


def _cluster_ok(cli: str) -> bool:
    for port in CLUSTER_PORTS:
        info = subprocess.run(
            [cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, check=False
        ).stdout
        if "cluster_state:ok" not in info:
            return False
    return True


@pytest.fixture
async def client(cluster: tuple[str, int]) -> AsyncIterator[RedisCluster]:
    host, port = cluster
    redis = RedisCluster(host=host, port=port, socket_timeout=3)
    await redis.initialize()
    yield redis
    await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await redis.aclose()


class TestOnARealCluster:
    async def test_the_cluster_has_three_masters(self, client: RedisCluster) -> None:
        """The keys under test land on different nodes, so a cross-slot script would fail."""
        assert len(client.get_primaries()) == 3

    async def test_locks_and_the_scheduler_lease(self, client: RedisCluster) -> None:
        """Acquire, extend and release run on the cluster."""
        locks = RedisLocks(client)  # type: ignore[arg-type]
        token = await locks.acquire(LEASE, 5)
        assert token is not None
        assert await locks.acquire(LEASE, 5) is None
        assert await locks.extend(LEASE, token, 5)
        await locks.release(LEASE, token)
        assert await locks.acquire(LEASE, 5) is not None

    async def test_payment_leases_and_notes(self, client: RedisCluster) -> None:
        """The two-key scripts work for many payments (spread over every node)."""
        leases = RedisLeases(client, RedisLocks(client))  # type: ignore[arg-type]
        for i in range(20):
            transaction_id = f"txn_{i:026d}"
            owner = await leases.enter(transaction_id, 5, note=False)
            assert owner is not None
            assert await leases.enter(transaction_id, 5, note=True) is None
            assert await leases.extend(transaction_id, owner, 5)
            assert await leases.leave(transaction_id, owner) is True

    async def test_transaction_cache(self, client: RedisCluster) -> None:
        """Put, get under the current version, invalidate, miss."""
        cache = TransactionCache(client, 30)  # type: ignore[arg-type]
        for i in range(20):
            transaction_id = f"txn_{i:026d}"
            version, body = await cache.get(transaction_id)
            assert (version, body) == ("0", None)
            await cache.put(transaction_id, version, b'{"status":"pending"}')
            assert await cache.get(transaction_id) == ("0", b'{"status":"pending"}')
            await cache.invalidate(transaction_id)
            assert await cache.get(transaction_id) == ("1", None)

    async def test_gateway_health(self, client: RedisCluster) -> None:
        """Failures open a circuit; the router's one-script view of every gateway, operator
        settings and the remembered state all work on the cluster."""
        store = RedisHealthStore(client, HealthConfig(), gateways=GATEWAYS)  # type: ignore[arg-type]
        for _ in range(5):
            await store.record("mercadopago", "charge", Outcome.UNAVAILABLE, 100)
        await store.record("efi", "charge", Outcome.SUCCEEDED, 80)
        assert not await store.allow("mercadopago", "charge")
        assert await store.allow("efi", "charge")
        assert await store.set_settings("efi", priority=5) == GatewaySettings(
            enabled=True, priority=5
        )
        view = await store.view(GATEWAYS, "charge")
        assert view[0][1].circuit is CircuitState.OPEN
        assert view[1][0].priority == 5
        assert view[1][1].samples == 1
        assert await store.snapshot("efi", "charge") == view[1][1]
        assert await store.swap_state("efi", HealthState.UP) is None
        assert await store.swap_state("efi", HealthState.DOWN) is HealthState.UP


async def test_concurrent_leases_on_the_cluster(client: RedisCluster) -> None:
    """Twenty runners race for one payment on the cluster: exactly one gets it."""
    leases = RedisLeases(client, RedisLocks(client))  # type: ignore[arg-type]
    tokens = await asyncio.gather(*(leases.enter("txn_race", 5, note=True) for _ in range(20)))
    assert sum(token is not None for token in tokens) == 1


def test_hash_tags_decide_the_slot() -> None:
    """Only the first `{…}` of a key is hashed: the key names above rely on it."""
    assert (
        key_slot(b"pixwave:lock:txn:{abc}") == key_slot(b"pixwave:poke:{abc}") == key_slot(b"abc")
    )
    assert key_slot(b"pixwave:{health}:settings:efi") == key_slot(b"health")
