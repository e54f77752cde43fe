"""The payments benchmark's asyncio load generator, run in a process of its own.

Why not wrk everywhere: these loads depend on answers (a deposit's id, then waiting until its
charge is ready; paying each charge's BR Code at the simulator that issued it), which wrk's Lua
cannot follow. httpx on uvloop in a spawned process, pinned like the report says, does; it is
light at the rates these scenarios reach (hundreds of requests per second).

Every function returns plain data (ids and wall-clock times) that the driver joins with the
timestamps the cluster wrote into the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiomysql
import httpx
import uvloop

from payments_cluster import DATABASE, DB_HOST, DB_PORT, DB_USER, Actor, affinity
from transfers import run_spawned


@dataclass
class Sent:
    """One request the generator made: what it was about and when (wall clock, seconds)."""

    transaction_id: str | None
    started: float
    answered: float
    status: int


@dataclass
class LoadResult:
    """What one load run did; ``window`` is the measured interval in wall-clock seconds."""

    sent: list[Sent] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    errors: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)


def _client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits)


async def _deposit(
    http: httpx.AsyncClient, actor: Actor, key: str, amount: int, result: LoadResult
) -> str | None:
    started = time.time()
    headers = {"Authorization": f"Bearer {actor.token}", "Idempotency-Key": key}
    for attempt in (1, 2):
        try:
            response = await http.post("/v1/deposits", json={"amount": amount}, headers=headers)
            break
        except httpx.TransportError as exc:
            # A kept-alive connection closed under us: retry once with the same key, as a
            # client should (the key makes it safe); a second failure is an error.
            name = f"transport_{type(exc).__name__}"
            if attempt == 2:
                result.errors[name] = result.errors.get(name, 0) + 1
                return None
            result.retried[name] = result.retried.get(name, 0) + 1
    answered = time.time()
    transaction_id = response.json().get("id") if response.status_code == 202 else None
    result.sent.append(Sent(transaction_id, started, answered, response.status_code))
    if response.status_code != 202:
        name = f"http_{response.status_code}"
        result.errors[name] = result.errors.get(name, 0) + 1
    return transaction_id


class ReadyWatch:
    """Resolves "is this deposit past `pending` yet?" for many waiters with one query per tick,
    so closed-loop clients wait for their charge without loading the API with polls."""

    def __init__(self, tick: float = 0.02) -> None:
        self.tick = tick
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._pool: aiomysql.Pool | None = None

    async def start(self) -> None:
        self._pool = await aiomysql.create_pool(
            host=DB_HOST, port=DB_PORT, user=DB_USER, db=DATABASE, autocommit=True, maxsize=1
        )
        self._task = asyncio.create_task(self._run())

    async def wait(self, transaction_id: str) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting[transaction_id] = future
        return await future

    async def _run(self) -> None:
        assert self._pool is not None
        while True:
            await asyncio.sleep(self.tick)
            ids = list(self.waiting)
            if not ids:
                continue
            marks = ",".join(["%s"] * len(ids))
            async with self._pool.acquire() as connection, connection.cursor() as cursor:
                await cursor.execute(
                    f"SELECT id, status FROM transactions WHERE id IN ({marks}) "  # noqa: S608
                    "AND status <> 'pending'",
                    ids,
                )
                for transaction_id, status in await cursor.fetchall():
                    future = self.waiting.pop(transaction_id, None)
                    if future is not None and not future.done():
                        future.set_result(status)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()


async def closed_deposits(
    api: str, actors: Sequence[Actor], concurrency: int, warmup: float, duration: float
) -> LoadResult:
    """``concurrency`` clients, each: create a deposit, wait until its charge is ready (or it
    failed), repeat. Throughput is what the whole pipeline sustains with that many in flight."""
    result = LoadResult()
    watch = ReadyWatch()
    await watch.start()
    stop = False
    nonce = f"{time.time_ns()}"

    async def client(number: int) -> None:
        rng = random.Random(number)
        async with _client(api, 1) as http:
            for sent in itertools.count():
                if stop:
                    return
                actor = rng.choice(actors)
                key = f"closed-{nonce}-{number}-{sent}"
                transaction_id = await _deposit(http, actor, key, rng.randint(1_00, 500_00), result)
                if transaction_id is not None:
                    await watch.wait(transaction_id)

    tasks = [asyncio.create_task(client(n)) for n in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        began = time.time()
        await asyncio.sleep(duration)
        result.window = (began, time.time())
        stop = True
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    finally:
        for task in tasks:
            task.cancel()
        await watch.stop()
    return result


async def open_deposits(
    api: str,
    actors: Sequence[Actor],
    rate: float,
    duration: float,
    *,
    connections: int = 64,
) -> LoadResult:
    """Deposits at a fixed rate whatever the answers (open loop: queueing shows in latency)."""
    result = LoadResult()
    rng = random.Random(7)
    nonce = f"{time.time_ns()}"
    in_flight: set[asyncio.Task[str | None]] = set()
    async with _client(api, connections) as http:
        began = time.time()
        result.window = (began, began + duration)
        total = int(rate * duration)
        for n in range(total):
            due = began + n / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            actor = rng.choice(actors)
            task = asyncio.create_task(
                _deposit(http, actor, f"open-{nonce}-{n}", rng.randint(1_00, 500_00), result)
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(set(in_flight), timeout=60)
    return result


async def pay_charges(
    sims: dict[str, str], charges: Sequence[tuple[str, str, str]], concurrency: int
) -> LoadResult:
    """The payers' banks: POST each charge's BR Code to `/_sandbox/pay` at its gateway's
    simulator, ``concurrency`` at a time; the simulators then notify the API."""
    result = LoadResult()
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for charge in charges:
        queue.put_nowait(charge)
    clients = {name: _client(url, concurrency) for name, url in sims.items()}

    async def payer() -> None:
        while not queue.empty():
            transaction_id, gateway, brcode = queue.get_nowait()
            started = time.time()
            try:
                response = await clients[gateway].post("/_sandbox/pay", json={"brcode": brcode})
            except httpx.HTTPError as exc:
                name = f"transport_{type(exc).__name__}"
                result.errors[name] = result.errors.get(name, 0) + 1
                continue
            result.sent.append(Sent(transaction_id, started, time.time(), response.status_code))
            if response.status_code != 200:
                name = f"pay_http_{response.status_code}"
                result.errors[name] = result.errors.get(name, 0) + 1

    began = time.time()
    try:
        await asyncio.gather(*(payer() for _ in range(concurrency)))
    finally:
        for http in clients.values():
            await http.aclose()
    result.window = (began, time.time())
    return result


# --- the process around it -------------------------------------------------------------------

LOADS: dict[str, Callable[..., Coroutine[Any, Any, LoadResult]]] = {
    "closed_deposits": closed_deposits,
    "open_deposits": open_deposits,
    "pay_charges": pay_charges,
}


def _entry(name: str, args: tuple[Any, ...], cpus: str | None, results: Connection) -> None:
    """The generator's process: pinned, on uvloop, ignoring Ctrl-C (the parent ends it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    affinity(cpus)
    try:
        results.send(uvloop.run(LOADS[name](*args)))
    except Exception as exc:
        results.send(RuntimeError(f"the {name} load failed: {exc!r}"))
        raise


def run_load(name: str, *args: Any, cpus: str | None) -> LoadResult:
    """Run one load in a process of its own (see `transfers.run_spawned`)."""
    result = run_spawned(_entry, (name, args, cpus), f"load-{name}")
    assert isinstance(result, LoadResult)
    return result


def statuses(result: LoadResult) -> Counter[int]:
    return Counter(s.status for s in result.sent)
