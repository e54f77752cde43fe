"""The faults, each an async function that keeps injecting until its window closes.

Every injector records what it did and when (:class:`FaultEvent`), so the report and the
charts can place each fault on the timeline. Process faults act on the cluster's own process
groups and data stores; gateway faults use the simulators' `/_sandbox/faults` rules on both
gateways at once; webhook faults replay, duplicate, reorder and forge the simulators' own
notifications into the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pixwave.sandbox.mercadopago.webhooks import signed_headers
from tests.chaos.cluster import GATEWAYS, MP_WEBHOOK_SECRET, Cluster
from tests.chaos.history import History, WebhookSent

#: Operations of each simulator that move money (charges, sends, refunds).
MONEY_OPERATIONS: dict[str, tuple[str, ...]] = {
    "mercadopago": ("payments.create", "payouts.create", "refunds.create"),
    "efi": ("cob.put", "send.put", "devolucao.put"),
}


@dataclass
class FaultEvent:
    name: str
    target: str
    started: float
    ended: float
    detail: str = ""


@dataclass
class FaultContext:
    cluster: Cluster
    history: History
    rng: random.Random
    events: list[FaultEvent] = field(default_factory=list)
    #: injector name → the simulator fault rules it has in force.
    gateway_rules: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))

    def record(self, name: str, target: str, started: float, detail: str = "") -> None:
        self.events.append(FaultEvent(name, target, started, time.time(), detail))


Injector = Callable[[FaultContext, float], Awaitable[None]]


async def _until(deadline: float) -> bool:
    return time.monotonic() < deadline


# --- processes -------------------------------------------------------------------------------


def _killer(kind: str) -> Injector:
    """SIGKILL a process of ``kind`` at random moments, restart it after a short while."""

    async def inject(ctx: FaultContext, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        await asyncio.sleep(ctx.rng.uniform(0.2, min(1.0, seconds / 3)))
        while True:
            names = [n for n in ctx.cluster.processes if n == kind or n.startswith(f"{kind}-")]
            name = ctx.rng.choice(names)
            process = ctx.cluster.processes[name]
            started = time.time()
            children = [pid for pid in process.pids() if pid != process.pid]
            if children and ctx.rng.random() < 0.5:
                # One process of a group (a uvicorn worker): its supervisor replaces it.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(ctx.rng.choice(children), signal.SIGKILL)
                ctx.record(f"kill_{kind}", f"{name} (one child)", started, "SIGKILL")
            else:
                await asyncio.to_thread(process.kill)
                await asyncio.sleep(ctx.rng.uniform(0.3, 1.5))
                await asyncio.to_thread(ctx.cluster.restart, name)
                ctx.record(f"kill_{kind}", name, started, "SIGKILL, restart")
            await asyncio.sleep(ctx.rng.uniform(1.0, 3.0))
            if not await _until(deadline):
                return

    return inject


kill_worker = _killer("worker")
kill_scheduler = _killer("scheduler")
kill_api = _killer("api")


async def restart_redis(ctx: FaultContext, seconds: float) -> None:
    """Redis killed and started again empty, twice in the window."""
    for _ in range(2):
        await asyncio.sleep(seconds / 3)
        started = time.time()
        await asyncio.to_thread(ctx.cluster.restart_redis)
        ctx.record("restart_redis", "redis", started, "SIGKILL, state lost")


async def restart_mariadb(ctx: FaultContext, seconds: float) -> None:
    """MariaDB restarted once (every connection dropped; the data kept)."""
    await asyncio.sleep(seconds / 3)
    started = time.time()
    await asyncio.to_thread(ctx.cluster.restart_mariadb)
    ctx.record("restart_mariadb", "mariadb", started, "SIGTERM, restart")


async def stall_mariadb(ctx: FaultContext, seconds: float) -> None:
    """MariaDB frozen (SIGSTOP) longer than the payment lease, then thawed (SIGCONT)."""
    lease = float(ctx.cluster.env()["PAYMENT_LEASE_SECONDS"])
    stall = lease + 2.0
    await asyncio.sleep(max(0.5, (seconds - stall) / 2))
    mariadb = ctx.cluster.processes["mariadb"]
    started = time.time()
    mariadb.signal_group(signal.SIGSTOP)
    try:
        await asyncio.sleep(stall)
    finally:
        mariadb.signal_group(signal.SIGCONT)
    ctx.record("stall_mariadb", "mariadb", started, f"SIGSTOP {stall:g} s")


# --- gateways --------------------------------------------------------------------------------


async def _apply(ctx: FaultContext) -> None:
    """PUT the union of every active gateway fault (several may run at once, e.g. in the
    combined scenario) on both simulators; none left: clear them."""
    merged: dict[str, dict[str, Any]] = {}
    for rules in ctx.gateway_rules.values():
        for operation, rule in rules.items():
            merged[operation] = {**merged.get(operation, {}), **rule}
    for gateway in GATEWAYS:
        url = f"{ctx.cluster.sim_url(gateway)}/_sandbox/faults"
        own = {op: rule for op, rule in merged.items() if op in _ops(gateway)}
        with contextlib.suppress(httpx.HTTPError):  # a closed port (refuse) reopens by itself
            if own:
                response = await ctx.http.put(url, json={"seed": ctx.rng.randrange(1 << 30),
                                                         "rules": own})  # fmt: skip
                response.raise_for_status()
            else:
                await ctx.http.delete(url)


def _ops(gateway: str) -> tuple[str, ...]:
    return (*MONEY_OPERATIONS[gateway], "*")


def _gateway_fault(name: str, build: Callable[[float], list[dict[str, Any]]]) -> Injector:
    """Apply each rule set of ``build`` in turn over the window, on both gateways at once."""

    async def inject(ctx: FaultContext, seconds: float) -> None:
        phases = build(seconds)
        each = seconds / len(phases)
        for phase in phases:
            started = time.time()
            rules = {k: v for k, v in phase.items() if k != "_pause"}
            try:
                if rules:
                    ctx.gateway_rules[name] = rules
                    await _apply(ctx)
                await asyncio.sleep(phase.get("_pause", each))
            finally:
                if ctx.gateway_rules.pop(name, None) is not None:
                    await _apply(ctx)
            ctx.record(name, "both gateways", started, json.dumps(rules, sort_keys=True))

    return inject


def _money(rule: dict[str, Any]) -> dict[str, Any]:
    return {op: rule for ops in MONEY_OPERATIONS.values() for op in ops}


def _outage(seconds: float) -> list[dict[str, Any]]:
    """503 with Retry-After, a pause, then the ports closed (connection refused)."""
    refuse = {"outage": "refuse", "outage_seconds": max(1.0, seconds / 3)}
    return [{"*": {"outage": "503", "retry_after": 1}}, {"_pause": 1.0}, {"*": refuse}]


def _latency(seconds: float) -> list[dict[str, Any]]:
    """Spikes around the client's read timeout: some calls answer late, some time out."""
    del seconds
    return [{"*": {"latency": {"mean_ms": 700, "stddev_ms": 500}}}]


def _storm_429(seconds: float) -> list[dict[str, Any]]:
    del seconds
    return [{"*": {"rate_limit": 3, "retry_after": 1}}]


def _burst_5xx(seconds: float) -> list[dict[str, Any]]:
    del seconds
    return [{"*": {"error_rate": 0.5, "error_status": 503}}]


def _process_then_timeout(seconds: float) -> list[dict[str, Any]]:
    """Half of the money-moving calls are performed and never answered."""
    del seconds
    return [_money({"timeout_rate": 0.5, "hang_seconds": 3})]


gateway_outage = _gateway_fault("gateway_outage", _outage)
gateway_latency = _gateway_fault("gateway_latency", _latency)
gateway_429 = _gateway_fault("gateway_429", _storm_429)
gateway_5xx = _gateway_fault("gateway_5xx", _burst_5xx)
process_then_timeout = _gateway_fault("process_then_timeout", _process_then_timeout)


# --- webhooks --------------------------------------------------------------------------------


async def _deliveries(ctx: FaultContext, gateway: str) -> list[dict[str, Any]]:
    response = await ctx.http.get(f"{ctx.cluster.sim_url(gateway)}/_sandbox/webhooks")
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


async def _post_webhook(
    ctx: FaultContext, gateway: str, delivery: dict[str, Any], kind: str, *, forge: bool = False
) -> None:
    url, body = delivery["url"], delivery["body"]
    headers = {"content-type": "application/json"}
    if gateway == "mercadopago":
        query = parse_qs(urlsplit(url).query)
        data_id = (query.get("data.id") or [""])[0]
        headers.update(signed_headers(MP_WEBHOOK_SECRET, data_id))
        if forge:
            headers["x-signature"] = f"ts={int(time.time())},v1={uuid.uuid4().hex * 2}"
    elif forge:
        url = url.replace("hmac=", "hmac=forged")
    started = time.time()
    try:
        response = await ctx.http.post(url, content=body.encode(), headers=headers)
        status: int | None = response.status_code
    except httpx.HTTPError:
        status = None
    ctx.history.webhooks.append(WebhookSent(kind, gateway, started, status, forge))


async def webhooks(ctx: FaultContext, seconds: float) -> None:
    """Duplicates at once, replays of old ones (late), a shuffled batch (out of order), and
    forged ones (bad signature / bad hmac), in rounds until the window closes."""
    deadline = time.monotonic() + seconds
    seen: dict[str, list[dict[str, Any]]] = {g: [] for g in GATEWAYS}
    while await _until(deadline):
        started = time.time()
        for gateway in GATEWAYS:
            try:
                current = await _deliveries(ctx, gateway)
            except httpx.HTTPError:
                continue
            fresh = current[len(seen[gateway]) :]
            old = seen[gateway]
            seen[gateway] = current
            for delivery in fresh[-10:]:  # duplicates of what was just sent
                await _post_webhook(ctx, gateway, delivery, "duplicate")
            for delivery in ctx.rng.sample(old, min(5, len(old))):  # late replays
                await _post_webhook(ctx, gateway, delivery, "late")
            batch = list(fresh[-6:])
            ctx.rng.shuffle(batch)  # out of order
            for delivery in batch:
                await _post_webhook(ctx, gateway, delivery, "out_of_order")
            for delivery in ctx.rng.sample(current, min(3, len(current))):
                await _post_webhook(ctx, gateway, delivery, "forged", forge=True)
            await _spoof(ctx, gateway, current)
        ctx.record("webhooks", "both gateways", started,
                   "duplicate, late, out of order, forged, spoofed")  # fmt: skip
        await asyncio.sleep(1.0)


async def _spoof(ctx: FaultContext, gateway: str, deliveries: list[dict[str, Any]]) -> None:
    """Correctly signed notifications that lie: a charge nobody paid announced as paid (as
    if the signing secret had leaked). The API must ask the gateway before crediting; the
    checker's balances prove it did."""
    response = await ctx.http.get(f"{ctx.cluster.sim_url(gateway)}/_sandbox/records")
    unpaid = [r for r in response.json() if r["kind"] == "charge" and not r["moved"]]
    if not deliveries or not unpaid:
        return
    template = deliveries[-1]
    for charge in ctx.rng.sample(unpaid, min(3, len(unpaid))):
        if gateway == "mercadopago":
            body = json.loads(template["body"])
            body["data"] = {"id": charge["id"]}
            body["action"] = "payment.updated"
            base = template["url"].split("?")[0]
            url = f"{base}?data.id={charge['id']}&type=payment"
        else:
            body = {"pix": [{"endToEndId": f"E00000000{uuid.uuid4().hex[:23]}",
                             "txid": charge["reference"],
                             "valor": f"{charge['amount'] // 100}.{charge['amount'] % 100:02d}",
                             "chave": "spoof@example.com",
                             "horario": "2026-12-06T10:00:00.000Z"}]}  # fmt: skip
            url = template["url"]
        await _post_webhook(ctx, gateway, {"url": url, "body": json.dumps(body)}, "spoofed")


INJECTORS: dict[str, Injector] = {
    "kill_worker": kill_worker,
    "kill_scheduler": kill_scheduler,
    "kill_api": kill_api,
    "restart_redis": restart_redis,
    "restart_mariadb": restart_mariadb,
    "stall_mariadb": stall_mariadb,
    "gateway_outage": gateway_outage,
    "gateway_latency": gateway_latency,
    "gateway_429": gateway_429,
    "gateway_5xx": gateway_5xx,
    "process_then_timeout": process_then_timeout,
    "webhooks": webhooks,
}
