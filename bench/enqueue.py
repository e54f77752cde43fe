"""Enqueueing a job on the Redis stream: PixWave's `StreamBroker` next to taskiq-redis's own
`RedisStreamBroker` (the baseline), in the same run, against the same Redis.

Every deposit, withdrawal and refund request enqueues one job after its commit, so the cost of
`kiq` is paid once per accepted payment. Both brokers send the same message to the same kind of
stream; they differ in how they reach Redis (one long-lived client vs. a client object built per
message). Prints CPU and wall time per enqueue for each, alternating rounds so that machine
noise hits both alike, and ends with one JSON line. Needs Redis on 127.0.0.1:6379 (uses db 13).

    .venv/bin/python bench/enqueue.py [--jobs 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from taskiq_redis import RedisStreamBroker

from pixwave.worker.broker import StreamBroker
from transfers import code_version

REDIS_URL = "redis://127.0.0.1:6379/13"
STREAM = "pixwave:bench-enqueue"
ARGUMENT = "txn_01M8BSR600C91MEP4P2BE33MBM"  # a transaction id, what our jobs carry


async def job(_: str = "") -> None:
    return None


async def measure(broker: RedisStreamBroker, jobs: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per enqueue over ``jobs`` enqueues."""
    task = broker.register_task(job, task_name="bench.job")
    for _ in range(200):  # warm the pool and the code paths
        await task.kiq(ARGUMENT)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(jobs):
        await task.kiq(ARGUMENT)
    return (
        (time.process_time() - cpu) / jobs * 1e6,
        (time.perf_counter() - wall) / jobs * 1e6,
    )


async def run(jobs: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    redis = Redis.from_url(REDIS_URL)
    results: dict[str, list[tuple[float, float]]] = {"taskiq-redis": [], "pixwave": []}
    try:
        for _ in range(rounds):
            for name, kind in (("taskiq-redis", RedisStreamBroker), ("pixwave", StreamBroker)):
                await redis.delete(STREAM)
                broker = kind(url=REDIS_URL, queue_name=STREAM, maxlen=10_000, approximate=True)
                await broker.startup()
                try:
                    results[name].append(await measure(broker, jobs))
                finally:
                    await broker.shutdown()
    finally:
        await redis.delete(STREAM)
        await redis.aclose()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000, help="enqueues per round and broker")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians are reported)")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.jobs, args.rounds))
    figures: dict[str, object] = {"benchmark": "enqueue", "jobs": args.jobs, "rounds": args.rounds}
    cpu_us: dict[str, float] = {}
    for name, samples in results.items():
        cpu = cpu_us[name] = statistics.median(s[0] for s in samples)
        wall = statistics.median(s[1] for s in samples)
        print(f"{name:>12}: {cpu:6.0f} µs CPU, {wall:6.0f} µs wall per enqueue (medians)")
        key = name.replace("-", "_")
        figures[f"{key}_cpu_us"], figures[f"{key}_wall_us"] = round(cpu, 1), round(wall, 1)
    ratio = cpu_us["pixwave"] / cpu_us["taskiq-redis"]
    print(f"ratio: CPU per enqueue pixwave/taskiq-redis = {ratio:.2f}")
    figures["cpu_ratio"] = round(ratio, 3)
    figures["code"] = code_version()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
