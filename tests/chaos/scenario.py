"""One scenario: steady load, a fault window in its middle, the sweep window, the checker.

Scenarios run one after the other on one cluster, each with wallets of its own; the checker
sees only the transactions and gateway records of its scenario.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.checker import FinalState, Verdict, check, our_id
from tests.chaos.cluster import GATEWAYS, Cluster
from tests.chaos.faults import INJECTORS, FaultContext, FaultEvent
from tests.chaos.history import History
from tests.chaos.load import IN_FLIGHT, Load

#: Each scenario's faults: phases run one after the other over the fault window, the
#: injectors (names of :data:`faults.INJECTORS`) of a phase at the same time.
SCENARIOS: dict[str, tuple[tuple[str, ...], ...]] = {
    "steady": (),
    **{name: ((name,),) for name in INJECTORS},
    "combined": (
        ("kill_worker", "kill_scheduler", "kill_api", "gateway_5xx", "webhooks"),
        ("restart_redis", "process_then_timeout", "kill_worker", "webhooks"),
        ("stall_mariadb", "gateway_latency", "kill_api"),
        ("restart_mariadb", "gateway_429", "gateway_outage"),
    ),
    # The short version (CI): each kind of fault, its faults one after another.
    "processes": (("kill_worker",), ("kill_scheduler",), ("kill_api",)),
    "data_stores": (("restart_redis",), ("restart_mariadb",), ("stall_mariadb",)),
    "gateways": (
        ("gateway_outage",), ("gateway_latency",), ("gateway_429",), ("gateway_5xx",),
        ("process_then_timeout",),
    ),
}  # fmt: skip
#: What `make chaos` runs: every fault alone, then all of them combined.
FULL = ("steady", *INJECTORS, "combined")
#: The short version, for CI: every kind once, then combined.
SHORT = ("processes", "data_stores", "gateways", "webhooks", "combined")

_ALERT = re.compile(r'"event_type":\s*"(alert\.[a-z_]+)"')
_EVENT_ID = re.compile(r'"event_id":\s*"([^"]+)"')


@dataclass
class Options:
    rate: float = 8.0  # operations per second
    seconds: float = 30.0  # of load
    sweep: float = 60.0  # seconds after the load for every payment to finish
    wallets: int = 12
    funding: int = 100_000_00
    seed: int = 7


@dataclass
class Result:
    name: str
    verdict: Verdict
    history: History
    final: FinalState
    events: list[FaultEvent]
    began: float
    load_ended: float
    alerts: Counter[str] = field(default_factory=Counter)
    recovery_s: float | None = None
    transactions: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        v = self.verdict
        latencies = [op.acked_at - op.started for op in self.history.ops
                     if op.acked_at is not None and op.kind != "funding"]  # fmt: skip
        return {
            "scenario": self.name,
            "requests": v.requests,
            "acknowledged": v.acknowledged,
            "succeeded": v.succeeded,
            "failed": dict(sorted(v.failed.items())),
            "stuck": v.stuck,
            "duplicated": v.duplicated,
            "imbalance": v.imbalance,
            "extra_charges": v.extra_charges,
            "recovery_s": self.recovery_s,
            "alerts": dict(sorted(self.alerts.items())),
            "violations": [str(x) for x in v.violations],
            "ack_p50_ms": round(_pct(latencies, 50) * 1000, 1),
            "ack_p99_ms": round(_pct(latencies, 99) * 1000, 1),
            "gateway_movements": self.movements(),
            "http_exchanges": len(self.history.exchanges),
            "webhooks_injected": len(self.history.webhooks),
        }

    def movements(self) -> dict[str, int]:
        """Charges paid, sends settled and refunds made at the simulators, by gateway."""
        counted: Counter[str] = Counter()
        for gateway, records in self.final.records.items():
            for record in records:
                if record["moved"]:
                    counted[f"{gateway}.{record['kind']}"] += 1
        return dict(sorted(counted.items()))


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def admin_token(cluster: Cluster) -> str:
    result = cluster.run("admin", "create-token", "--admin")
    match = re.search(r"pxw_[A-Za-z0-9_-]{20,}", result.stdout + result.stderr)
    if match is None:
        raise RuntimeError(f"no admin token: {result.stdout} {result.stderr}")
    return match.group(0)


def log_offsets(cluster: Cluster) -> dict[str, int]:
    return {n: p.log.stat().st_size for n, p in cluster.pixwave_processes().items()
            if p.log.exists()}  # fmt: skip


def alerts_since(cluster: Cluster, offsets: dict[str, int]) -> Counter[str]:
    """Distinct `alert.*` events the relay published (its `event.published` log lines)."""
    seen: dict[str, str] = {}
    for name, process in cluster.pixwave_processes().items():
        if not process.log.exists():
            continue
        with process.log.open("rb") as log:
            log.seek(offsets.get(name, 0))
            for raw in log:
                line = raw.decode("utf-8", "replace")
                if "alert." not in line or "event.published" not in line:
                    continue
                kind, event = _ALERT.search(line), _EVENT_ID.search(line)
                if kind is not None:
                    seen[event.group(1) if event else line] = kind.group(1)
    return Counter(seen.values())


async def collect(
    cluster: Cluster, load: Load, admin: str, earlier: set[str], sweep: float
) -> FinalState:
    """Wait (at most ``sweep`` s) until nothing accepted is in flight, then read the final
    state: transactions, wallets, the simulators' records and the audit."""
    tokens = {w.wallet_id: w.token for w in load.wallets}
    ids = {op.transaction_id: op.wallet_id for op in load.history.ops
           if op.transaction_id and op.accepted}  # fmt: skip
    final = FinalState()
    deadline = time.monotonic() + sweep
    async with httpx.AsyncClient(base_url=cluster.api_url, timeout=10) as http:
        sem = asyncio.Semaphore(20)

        async def read(txn: str) -> None:
            async with sem:
                for _ in range(5):
                    try:
                        response = await http.get(
                            f"/v1/transactions/{txn}",
                            headers={"Authorization": f"Bearer {tokens[ids[txn]]}"},
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                        continue
                    if response.status_code == 200:
                        final.transactions[txn] = response.json()
                        return
                    if response.status_code == 404:
                        break
                    await asyncio.sleep(0.5)
                final.transactions[txn] = None

        todo = set(ids)
        paid = {op.transaction_id for op in load.history.ops if op.kind == "deposit" and op.paid}
        while True:
            await asyncio.gather(*(read(t) for t in todo))
            todo = {t for t in todo if _unsettled(final.transactions.get(t), t in paid)}
            if not todo or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        for wallet in load.wallets:
            response = await http.get(
                f"/v1/wallets/{wallet.wallet_id}", headers={"Authorization": f"Bearer {admin}"}
            )
            response.raise_for_status()
            body = response.json()
            final.wallets[wallet.wallet_id] = {
                k: int(body[k]) for k in ("posted", "held", "available")
            }
        for gateway in GATEWAYS:
            response = await http.get(f"{cluster.sim_url(gateway)}/_sandbox/records")
            response.raise_for_status()
            final.records[gateway] = [
                r for r in response.json()
                if our_id(r["parent"] if r["kind"] == "refund" else r["reference"]) not in earlier
            ]  # fmt: skip
    audit = await asyncio.to_thread(cluster.run, "audit", "--json")
    try:
        report = json.loads(audit.stdout)
        final.audit_ok, final.audit_problems = bool(report["ok"]), list(report["problems"])
    except (ValueError, KeyError):
        final.audit_ok, final.audit_problems = False, [audit.stdout[-500:], audit.stderr[-500:]]
    return final


def _unsettled(body: dict[str, Any] | None, paid: bool) -> bool:
    """Still moving: in flight, or a deposit its payer paid that is not credited yet."""
    if body is None:
        return False
    return body["status"] in IN_FLIGHT or (paid and body["status"] == "awaiting_payment")


async def run_scenario(
    cluster: Cluster, name: str, options: Options, earlier: set[str], admin: str
) -> Result:
    history = History()
    load = Load(cluster.api_url, {g: cluster.sim_url(g) for g in GATEWAYS}, admin, history,
                seed=options.seed + len(earlier))  # fmt: skip
    await load.create_wallets(options.wallets, options.funding)
    offsets = log_offsets(cluster)
    ctx = FaultContext(cluster, history, random.Random(options.seed))
    began = time.time()
    phases = SCENARIOS[name]

    async def inject() -> None:
        await asyncio.sleep(options.seconds / 4)
        for phase in phases:
            each = options.seconds / 2 / len(phases)
            await asyncio.gather(*(INJECTORS[f](ctx, each) for f in phase))

    injecting = asyncio.ensure_future(inject())
    try:
        await load.run(options.rate, options.seconds)
        await injecting
    finally:
        if not injecting.done():
            injecting.cancel()
        await ctx.http.aclose()
    load_ended = time.time()
    exited = await _all_up(cluster)
    await load.settle(options.sweep)
    await load.resolve()
    final = await collect(cluster, load, admin, earlier, options.sweep)
    await load.aclose()
    verdict = check(history, final)
    for name_, code in exited:
        verdict.add("processes", name_, f"exited by itself (code {code}) and was restarted")
    result = Result(name, verdict, history, final, ctx.events, began, load_ended,
                    alerts_since(cluster, offsets))  # fmt: skip
    result.recovery_s = recovery(result)
    return result


async def _all_up(cluster: Cluster) -> list[tuple[str, int | None]]:
    """Faults leave every process running again; a process that exited by itself is a
    defect the run reports (and restarts, so that the checker can read the final state)."""
    exited = []
    for name, process in cluster.pixwave_processes().items():
        if not process.alive():
            exited.append((name, process.popen.returncode if process.popen else None))
            await asyncio.to_thread(cluster.restart, name)
    return exited


def recovery(result: Result) -> float | None:
    """Seconds from the end of the last fault until every operation started before it had
    reached its final status (None: no fault)."""
    if not result.events:
        return None
    fault_end = max(e.ended for e in result.events)
    done = [op.terminal_at or op.acked_at or fault_end for op in result.history.ops
            if op.started <= fault_end and op.kind != "funding"]  # fmt: skip
    return round(max([0.0, *(t - fault_end for t in done)]), 2)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def write(result: Result, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    result.history.write(directory / f"{result.name}.history.jsonl")
    (directory / f"{result.name}.json").write_text(json.dumps(result.figures(), indent=2))
