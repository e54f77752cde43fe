"""The soak: measure capacity with a short ramp, then hold half of it for N minutes.

Reports the RSS of every process at the start and the end (flat within 10 %), latency
percentiles per minute, errors (transport errors and 5xx answers the client saw, operations
never acknowledged), the checker's verdict on the whole history, and the ledger audit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.chaos.checker import check
from tests.chaos.cluster import GATEWAYS, Cluster, running
from tests.chaos.history import History
from tests.chaos.load import Load
from tests.chaos.scenario import _pct, admin_token, collect

RAMP = (10.0, 20.0, 30.0, 45.0, 60.0, 80.0, 100.0)


class RssSampler:
    """RSS of every process group (and MariaDB, Redis) every ``every`` seconds, in a thread."""

    def __init__(self, cluster: Cluster, every: float = 10.0) -> None:
        self.cluster, self.every = cluster, every
        self.samples: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        now = time.time()
        for name, process in list(self.cluster.processes.items()):
            self.samples[name].append((now, process.rss_kib()))

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.every):
                return


async def step(load: Load, rate: float, seconds: float) -> dict[str, float]:
    """One ramp step: offered vs acknowledged rate, p99 to acknowledgement, and how many of
    the step's payments were still unfinished 5 s after it."""
    first = len(load.history.ops)
    began = time.time()
    await load.run(rate, seconds)
    await asyncio.sleep(5)
    ops = [op for op in load.history.ops[first:] if op.kind != "funding"]
    acked = [op for op in ops if op.acked_at is not None and op.acked_at <= began + seconds + 1]
    latencies = [op.acked_at - op.started for op in acked if op.acked_at is not None]
    unfinished = sum(1 for op in ops if op.accepted and op.terminal_at is None)
    return {
        "offered": rate,
        "acknowledged_per_s": round(len(acked) / seconds, 1),
        "p99_ms": round(_pct(latencies, 99) * 1000, 1),
        "unfinished_share": round(unfinished / max(1, len(ops)), 3),
    }


def keeps_up(result: dict[str, float]) -> bool:
    return (
        result["acknowledged_per_s"] >= 0.95 * result["offered"]
        and result["p99_ms"] < 1000
        and result["unfinished_share"] < 0.2
    )


async def measure_capacity(
    cluster: Cluster, admin: str, ramp_seconds: float, wallets: int
) -> tuple[float, list[dict[str, float]], set[str]]:
    load = Load(cluster.api_url, {g: cluster.sim_url(g) for g in GATEWAYS}, admin, History(),
                seed=99)  # fmt: skip
    await load.create_wallets(wallets, 10_000_000_00)
    steps, capacity = [], 0.0
    for rate in RAMP:
        result = await step(load, rate, ramp_seconds)
        steps.append(result)
        print(f"  ramp {rate:g} ops/s: {json.dumps(result)}", flush=True)
        if not keeps_up(result):
            break
        capacity = rate
    await load.settle(60)
    await load.aclose()
    ids = {op.transaction_id for op in load.history.ops if op.transaction_id}
    return capacity, steps, ids


def per_minute(history: History, began: float) -> list[dict[str, Any]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    errors: dict[int, int] = defaultdict(int)
    for op in history.ops:
        if op.acked_at is not None and op.kind != "funding":
            buckets[int((op.started - began) // 60)].append(op.acked_at - op.started)
    for exchange in history.exchanges:
        if exchange.status is None or exchange.status >= 500:
            errors[int((exchange.started - began) // 60)] += 1
    return [
        {"minute": m + 1, "acknowledged": len(buckets[m]),
         "p50_ms": round(_pct(buckets[m], 50) * 1000, 1),
         "p99_ms": round(_pct(buckets[m], 99) * 1000, 1), "errors": errors.get(m, 0)}
        for m in sorted(buckets)
    ]  # fmt: skip


async def hold(
    cluster: Cluster, admin: str, rate: float, minutes: float, wallets: int, earlier: set[str]
) -> tuple[History, Any, float, Load]:
    history = History()
    load = Load(cluster.api_url, {g: cluster.sim_url(g) for g in GATEWAYS}, admin, history,
                seed=7)  # fmt: skip
    await load.create_wallets(wallets, 10_000_000_00)
    began = time.time()
    await load.run(rate, minutes * 60)
    await load.settle(120)
    await load.resolve()
    final = await collect(cluster, load, admin, earlier, 120)
    await load.aclose()
    return history, final, began, load


def soak(args: argparse.Namespace, workdir: Path) -> int:
    with running(workdir / "cluster", workers=args.workers,
                 api_processes=args.api_processes) as cluster:  # fmt: skip
        admin = admin_token(cluster)
        if args.rate:
            rate, steps, earlier = float(args.rate), list[dict[str, float]](), set[str]()
            print(f"soak at the given {rate:g} ops/s", flush=True)
        else:
            print("capacity ramp:", flush=True)
            capacity, steps, earlier = asyncio.run(
                measure_capacity(cluster, admin, args.ramp_seconds, args.wallets)
            )
            rate = max(1.0, capacity / 2)
            print(f"capacity {capacity:g} ops/s; soak at {rate:g} ops/s", flush=True)
        print(f"soak: {args.minutes:g} minutes", flush=True)
        with RssSampler(cluster) as rss:
            history, final, began, _ = asyncio.run(
                hold(cluster, admin, rate, args.minutes, args.wallets, earlier)
            )
    verdict = check(history, final)
    minutes = per_minute(history, began)
    history.write(workdir / "soak.history.jsonl")
    memory = {}
    for name, samples in sorted(rss.samples.items()):
        inside = [(t, k) for t, k in samples if t >= began and k > 0]
        if len(inside) < 2:
            continue
        warm = next((k for t, k in inside if t >= began + 60), inside[0][1])
        end = inside[-1][1]
        memory[name] = {"start_mib": round(inside[0][1] / 1024, 1),
                        "after_1_min_mib": round(warm / 1024, 1),
                        "end_mib": round(end / 1024, 1),
                        "growth_pct": round((end - warm) / warm * 100, 1)}  # fmt: skip
    errors = sum(m["errors"] for m in minutes)
    table = Table(title=f"PixWave soak: {args.minutes:g} min at {rate:g} ops/s")
    for column in ("minute", "acknowledged", "p50 ms", "p99 ms", "errors"):
        table.add_column(column)
    for m in minutes:
        table.add_row(
            *(str(m[k]) for k in ("minute", "acknowledged", "p50_ms", "p99_ms", "errors"))
        )
    Console(width=160).print(table)
    for name, rss_figures in memory.items():
        print(f"  RSS {name}: {json.dumps(rss_figures)}")
    for violation in verdict.violations[:20]:
        print(f"  VIOLATION {violation}")
    from tests.chaos.charts import soak_charts

    for path in soak_charts(minutes, dict(rss.samples), args.charts):
        print(f"chart: {path}")
    flat = rss_flat(memory)
    figures: dict[str, Any] = {
        "suite": "soak", "minutes": args.minutes, "rate": rate, "ramp": steps,
        "requests": verdict.requests, "acknowledged": verdict.acknowledged,
        "succeeded": verdict.succeeded, "failed": dict(verdict.failed), "stuck": verdict.stuck,
        "duplicated": verdict.duplicated, "imbalance": verdict.imbalance, "errors": errors,
        "audit_ok": final.audit_ok, "violations": [str(v) for v in verdict.violations],
        "rss": memory, "rss_flat": flat, "per_minute": minutes,
    }  # fmt: skip
    (workdir / "soak.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    return 0 if verdict.ok and final.audit_ok and errors == 0 and flat else 1


def rss_flat(memory: dict[str, dict[str, float]]) -> bool:
    """PixWave's own processes (API, workers, scheduler) within 10 % of their size after the
    first minute. MariaDB, Redis and the simulators grow with the data they keep, by design."""
    own = {
        name: figures
        for name, figures in memory.items()
        if name in {"api", "scheduler"} or name.startswith("worker")
    }
    return bool(own) and all(abs(figures["growth_pct"]) <= 10 for figures in own.values())
