"""Benchmark the payments engine end to end, each scenario next to a baseline from the same run.

Scenarios (all by default, `--scenario NAME` for some):

- `deposits`: `POST /v1/deposits` accepted (202) per second, against `/healthz` on the same
  server: the no-op rate is the ceiling of the HTTP stack on this machine, so the ratio says how
  much of it a deposit's own work (auth, idempotency, two inserts, the job message) leaves.
- `charges`: deposits until their charge is ready (`awaiting_payment`, BR Code and QR), through
  worker processes and the standalone simulators; against the same pipeline with the QR
  renderer replaced by a fixed image, which says what rendering costs.
- `webhooks`: charges paid at the simulators, whose webhooks credit the wallets; against the
  API's ingest-only rate (signed notifications posted with no worker running).
- `credits`: the notifications of paid charges waiting in the inbox, drained by the workers
  alone (no payer, ingest or webhook delivery meanwhile): the credit path's own cost, with
  `ENGINE_BATCH` on and off (`--credit-modes`), each on a fresh backlog in the same run.
- `cached_get`: `GET /v1/transactions/{id}` with the Redis cache, against
  `TRANSACTION_CACHE_SECONDS=0`.
- `failover`: steady deposits while the preferred gateway's port is closed; the seconds before
  the cut are the baseline (success rate, time to QR), duplicates are counted at the simulators.

Every scenario ends with the ledger audit. Run: `.venv/bin/python bench/payments.py --help`.
Needs MariaDB and Redis on 127.0.0.1 and `wrk`. Prints numbers and whether each goal was met,
never asserts a time; the last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from payments_cluster import (
    GATEWAYS,
    MP_WEBHOOK_SECRET,
    NO_QR_SIM,
    NO_QR_WORKER,
    ROOT,
    Actor,
    Cluster,
    CpuSampler,
    Layout,
    audit,
    cluster,
    create_actors,
    create_admin_token,
    default_layout,
    query,
    queued_jobs,
    recreate_state,
)
from payments_load import LoadResult, run_load
from pixwave.gateways.efi.spec import (
    SANDBOX_CLIENT_ID as SANDBOX_EFI_CLIENT_ID,
)
from pixwave.gateways.efi.spec import (
    SANDBOX_CLIENT_SECRET as SANDBOX_EFI_CLIENT_SECRET,
)
from pixwave.gateways.mercadopago.spec import SANDBOX_ACCESS_TOKEN as SANDBOX_MERCADOPAGO_TOKEN
from pixwave.pix import build_dynamic_brcode, build_static_brcode, qr_png_base64
from transfers import code_version, mariadb_version, percentile, run_wrk

LUA = ROOT / "bench" / "lua"
SCENARIOS = ("deposits", "withdrawals", "charges", "webhooks", "credits", "cached_get", "failover")

#: The issue's goals, as (figure, comparison, target).
GOALS: dict[str, tuple[str, str, float]] = {
    "deposits ≥ 2,000/s": ("deposits_per_s", ">=", 2000),
    "deposits p99 ≤ 50 ms": ("deposits_p99_ms", "<=", 50),
    "charges ready ≥ 500/s": ("charges_per_s", ">=", 500),
    "time to QR p99 ≤ 250 ms": ("charges_open_p99_ms", "<=", 250),
    "webhooks credited ≥ 2,000/s": ("webhooks_credited_per_s", ">=", 2000),
    "credits from a backlog ≥ 1,000/s": ("credits_per_s", ">=", 1000),
    "cached GET ≥ 8,000/s": ("cached_get_per_s", ">=", 8000),
    "failover: stops touching the cut gateway ≤ 1 s": ("failover_touch_stop_s", "<=", 1.0),
    "failover: success during the cut = 100 %": ("failover_success_pct", ">=", 100.0),
    "failover: duplicate payments = 0": ("failover_duplicates", "<=", 0),
}


@dataclass
class Report:
    """What the scenarios found: figures for the JSON line, wrong answers for the exit code."""

    figures: dict[str, Any] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)

    def audit(self, scenario: str) -> None:
        ok, ledger_transactions, problems = asyncio.run(audit())
        self.figures[f"{scenario}_audit_ok"] = ok
        if ok:
            print(f"  audit: ok, the ledger balances ({ledger_transactions} ledger transactions)")
        else:
            print("  audit: FAILED\n    " + "\n    ".join(problems))
            self.wrong.append(f"{scenario}: unbalanced ledger")


@dataclass
class Shared:
    """Ready deposits left by the webhooks scenario, reused by `cached_get` in the same run."""

    actors: list[Actor] = field(default_factory=list)
    transaction_ids: list[str] = field(default_factory=list)


# --- small helpers ---------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def pct(values: Sequence[float], p: float) -> float:
    return percentile(sorted(values), p)


def error_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none"


def wrk_options(args: argparse.Namespace, layout: Layout) -> dict[str, Any]:
    """What every wrk run of a scenario shares: its connections and its core."""
    return {"connections": args.connections, "cpus": layout.generator}


def cpu_line(cpu: dict[str, float], count: int, what: str) -> str:
    """CPU milliseconds per unit of work for each process kind, biggest first."""
    merged = merge_workers(cpu)
    ordered = sorted(merged.items(), key=lambda item: -item[1])
    parts = [f"{name} {seconds * 1000 / max(count, 1):.1f}" for name, seconds in ordered]
    return (
        f"CPU ms per {what}: "
        + ", ".join(parts)
        + f" (total {sum(merged.values()) * 1000 / max(count, 1):.1f})"
    )


def merge_workers(cpu: dict[str, float]) -> dict[str, float]:
    """The worker processes as one line: they share the same queue."""
    merged: dict[str, float] = {}
    for name, seconds in cpu.items():
        key = "worker" if name.startswith("worker-") else name
        merged[key] = merged.get(key, 0.0) + seconds
    return merged


def cpu_per(cpu: dict[str, float], count: int) -> dict[str, float]:
    merged = merge_workers(cpu)
    return {name: round(seconds * 1000 / max(count, 1), 2) for name, seconds in merged.items()}


def wait_until(check: Callable[[], bool], seconds: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


def event_times(event: str) -> dict[str, tuple[float, float, str | None]]:
    """transaction id → (created, when `event` was written, gateway), from the outbox."""
    rows = query(
        "SELECT t.id, UNIX_TIMESTAMP(t.created_at), UNIX_TIMESTAMP(o.created_at), t.gateway "
        "FROM transactions t JOIN outbox_events o ON o.aggregate_id = t.id "
        "WHERE o.event_type = %s",
        (event,),
    )
    return {r[0]: (float(r[1]), float(r[2]), r[3]) for r in rows}


def statuses_of(ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join(["%s"] * len(chunk))
        rows = query(
            f"SELECT id, status, failure_code FROM transactions WHERE id IN ({marks})",  # noqa: S608
            chunk,
        )
        found.update({r[0]: (r[1], r[2]) for r in rows})
    return found


def count_not(ids: Sequence[str], status: str) -> int:
    return sum(1 for s, _ in statuses_of(ids).values() if s == status)


def all_in(ids: Sequence[str], status: str) -> Callable[[], bool]:
    """A check for `wait_until`: every one of ``ids`` has reached ``status``."""
    return lambda: count_not(ids, status) == len(ids)


def quiet(seconds: float = 60) -> bool:
    """No job waiting, no deposit pending and every webhook handled: the next run starts from
    rest. (Jobs delivered but never acknowledged, e.g. by a stopped worker, are not waited
    for: they go back to the queue only after JOB_REDELIVERY_SECONDS.)"""

    def idle() -> bool:
        unhandled = query("SELECT COUNT(*) FROM inbox_events WHERE processed_at IS NULL")[0][0]
        pending = query("SELECT COUNT(*) FROM transactions WHERE status = 'pending'")[0][0]
        return queued_jobs() == 0 and int(unhandled) == 0 and int(pending) == 0

    return wait_until(idle, seconds, every=0.2)


def write_actors(path: Path, actors: Sequence[Actor]) -> Path:
    path.write_text("".join(f"{a.token} {a.wallet_id}\n" for a in actors))
    return path


def qr_render_ms(samples: int = 30) -> dict[str, float]:
    """CPU ms of one QR render for each gateway's code shape (static with txid at Mercado
    Pago, dynamic with a location at Efí), measured here, in this process."""
    codes = {
        "mercadopago": build_static_brcode(
            key="d4f9b1c2-6a3e-4f70-8b21-5c9d0e7a1f33",
            merchant_name="PIXWAVE SANDBOX",
            merchant_city="SAO PAULO",
            amount_centavos=123_45,
            txid="MPSANDBOX1234567890",
        ),
        "efi": build_dynamic_brcode(
            location_url="pix.sandbox.efipay.com.br/v2/" + "ab12" * 8,
            merchant_name="PIXWAVE SANDBOX",
            merchant_city="SAO PAULO",
        ),
    }
    result = {}
    for gateway, code in codes.items():
        qr_png_base64(code)
        started = time.process_time()
        for _ in range(samples):
            qr_png_base64(code)
        result[gateway] = (time.process_time() - started) / samples * 1000
    return result


# --- setup shared by charges, webhooks and cached_get ---------------------------------------


def start_cluster(
    c: Cluster, args: argparse.Namespace, *, no_qr: bool = False, workers: bool = True
) -> None:
    c.start_sims(prelude=NO_QR_SIM if no_qr else "")
    c.start_api(workers=args.pipeline_api_workers)
    if workers:
        c.start_workers(
            processes=args.worker_processes,
            concurrency=args.worker_concurrency,
            prelude=NO_QR_WORKER if no_qr else None,
        )
    c.start_scheduler()


def prepare_ready_deposits(c: Cluster, args: argparse.Namespace, actors: list[Actor]) -> list[str]:
    """N deposits created and waited for until every charge is ready (not measured)."""
    load = run_load(
        "open_deposits", c.api_url, actors, 200.0, args.charges / 200.0, cpus=c.layout.generator
    )
    ids = [s.transaction_id for s in load.sent if s.transaction_id]
    if len(ids) < args.charges * 0.95:
        raise RuntimeError(f"setup: {len(ids)} deposits accepted ({error_text(load.errors)})")
    ready = wait_until(lambda: count_not(ids, "awaiting_payment") == len(ids), 300, every=0.5)
    if not ready:
        raise RuntimeError("setup: not every charge became ready within 300 s")
    return ids


# --- scenario 1: deposits accepted -----------------------------------------------------------


def owners_post(
    c: Cluster,
    sampler: CpuSampler,
    args: argparse.Namespace,
    common: dict[str, Any],
    script: str,
    actors_file: Path,
) -> tuple[dict[str, Any], dict[str, float]]:
    """A wrk script that POSTs as wallet owners: its warm-up, then the measured run (fresh
    keys) and the processes' CPU over it."""
    lua = LUA / script
    run_wrk(lua, c.api_url, [str(actors_file), "warm"], duration=args.warmup, **common)
    began = time.time()
    measured = run_wrk(
        lua, c.api_url, [str(actors_file), uuid.uuid4().hex], duration=args.duration, **common
    )
    return measured, sampler.between(began, time.time())


def scenario_deposits(args: argparse.Namespace, layout: Layout, scratch: Path, out: Report) -> None:
    print("deposits: POST /v1/deposits accepted (202) per second, next to /healthz")
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets))
    actors_file = write_actors(scratch / "actors.txt", actors)
    with cluster(scratch, layout) as c, CpuSampler(c) as sampler:
        c.start_api(workers=args.api_workers)
        common = wrk_options(args, layout)
        accepted, cpu = owners_post(c, sampler, args, common, "deposits.lua", actors_file)
        healthz = run_wrk(
            LUA / "healthz.lua",
            c.api_url,
            [],
            duration=args.baseline_duration,
            **common,
        )
    ratio = accepted["rate"] / healthz["rate"] if healthz["rate"] else 0.0
    print(
        f"  accepted: {accepted['rate']:,.0f} deposits/s ({accepted['created']} in the run, "
        f"{args.connections} clients), p50 {accepted['p50_us'] / 1000:.1f} ms, "
        f"p99 {accepted['p99_us'] / 1000:.1f} ms, errors {error_text(accepted['errors'])}"
    )
    print(f"  {cpu_line(cpu, accepted['created'], 'deposit')}")
    print(
        f"  baseline /healthz: {healthz['rate']:,.0f} requests/s, p99 "
        f"{healthz['p99_us'] / 1000:.1f} ms; ratio deposits/healthz = {ratio:.2f}"
    )
    if accepted["errors"]:
        out.wrong.append(f"deposits: {error_text(accepted['errors'])}")
    out.figures.update(
        deposits_per_s=round(accepted["rate"], 1),
        deposits_p50_ms=round(accepted["p50_us"] / 1000, 2),
        deposits_p99_ms=round(accepted["p99_us"] / 1000, 2),
        deposits_errors=sum(accepted["errors"].values()),
        deposits_cpu_ms=cpu_per(cpu, accepted["created"]),
        healthz_per_s=round(healthz["rate"], 1),
        deposits_ratio_to_healthz=round(ratio, 3),
    )
    out.audit("deposits")


# --- scenario 1b: withdrawals accepted -------------------------------------------------------

#: Group commit on (the default) and off, each measured on a fresh API process in the same run.
WITHDRAWAL_MODES = {"grouped": "true", "alone": "false"}


def scenario_withdrawals(
    args: argparse.Namespace, layout: Layout, scratch: Path, out: Report
) -> None:
    """What accepting a withdrawal costs: the limits judged, the amount held, the transaction
    recorded, its job enqueued — with `GROUP_COMMIT` on and off (the in-run baseline), each on
    a fresh API process; the jobs wait in the queue (no worker), so nothing is sent."""
    print("withdrawals: POST /v1/withdrawals accepted (202) per second, grouped and alone")
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets, funding=100_000_000))
    actors_file = write_actors(scratch / "actors.txt", actors)
    by_mode: dict[str, dict[str, Any]] = {}
    for mode, flag in WITHDRAWAL_MODES.items():
        with cluster(scratch / mode, layout) as c, CpuSampler(c) as sampler:
            c.start_api(workers=args.api_workers, GROUP_COMMIT=flag)
            common = wrk_options(args, layout)
            accepted, cpu = owners_post(c, sampler, args, common, "withdrawals.lua", actors_file)
        print(
            f"  {mode}: {accepted['rate']:,.0f} withdrawals/s ({accepted['created']} in the run, "
            f"{args.connections} clients), p50 {accepted['p50_us'] / 1000:.1f} ms, "
            f"p99 {accepted['p99_us'] / 1000:.1f} ms, errors {error_text(accepted['errors'])}"
        )
        print(f"    {cpu_line(cpu, accepted['created'], 'withdrawal')}")
        if accepted["errors"]:
            out.wrong.append(f"withdrawals ({mode}): {error_text(accepted['errors'])}")
        by_mode[mode] = {
            "per_s": round(accepted["rate"], 1),
            "p99_ms": round(accepted["p99_us"] / 1000, 2),
            "cpu_ms": cpu_per(cpu, accepted["created"]),
        }
    grouped, alone = by_mode["grouped"], by_mode["alone"]
    ratio = grouped["per_s"] / alone["per_s"] if alone["per_s"] else 0.0
    api = (grouped["cpu_ms"].get("api", 0), alone["cpu_ms"].get("api", 0))
    print(f"  grouped/alone: rate × {ratio:.2f}; API CPU ms {api[0]:.2f} vs {api[1]:.2f}")
    out.figures.update(
        withdrawals_per_s=grouped["per_s"],
        withdrawals_p99_ms=grouped["p99_ms"],
        withdrawals_cpu_ms=grouped["cpu_ms"],
        withdrawals_modes=by_mode,
        withdrawals_grouped_over_alone=round(ratio, 2),
    )
    out.audit("withdrawals")


# --- scenario 2: charges ready ---------------------------------------------------------------


@dataclass
class ChargesRun:
    rate: float
    ready: int
    latencies: list[float]
    by_gateway: Counter[str]
    cpu: dict[str, float]
    errors: dict[str, int]


def charges_window(load: LoadResult, cpu: dict[str, float]) -> ChargesRun:
    """Charges that became ready inside the measured window, and their time to QR."""
    began, ended = load.window
    ready = event_times("transaction.awaiting_payment")
    inside = [v for v in ready.values() if began <= v[1] < ended]
    return ChargesRun(
        rate=len(inside) / (ended - began),
        ready=len(inside),
        latencies=[v[1] - v[0] for v in inside],
        by_gateway=Counter(v[2] or "?" for v in inside),
        cpu=cpu,
        errors=dict(load.errors),
    )


def only_gateway(c: Cluster, admin: str, gateway: str) -> None:
    """Route every charge to one gateway (the other disabled, as an operator would)."""
    with httpx.Client(base_url=c.api_url, timeout=10) as http:
        for name in GATEWAYS:
            http.patch(
                f"/v1/gateways/{name}",
                json={"enabled": name == gateway},
                headers={"Authorization": f"Bearer {admin}"},
            ).raise_for_status()


#: CHARGE_POLL_SECONDS in the charges scenario: longer than the whole scenario.
CHARGES_FIRST_LOOK_SECONDS = 3600


def charges_runs(
    args: argparse.Namespace, layout: Layout, scratch: Path, *, no_qr: bool
) -> dict[str, tuple[ChargesRun, ChargesRun | None]]:
    """Per gateway (the other disabled): a closed-loop run (capacity), then — with the real
    renderer — an open-loop run at 70 % of it (time to QR when the pipeline keeps up).

    One gateway at a time because routing follows live latency: with both enabled, which one
    takes the charges varies from run to run, and their costs differ by half.
    """
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets))
    admin = asyncio.run(create_admin_token())
    runs: dict[str, tuple[ChargesRun, ChargesRun | None]] = {}
    # Every charge made here stays unpaid: with the default first look after 30 s, one run's
    # charges would be polled inside the next run's window and their cost counted against it.
    with cluster(scratch, layout, CHARGE_POLL_SECONDS=str(CHARGES_FIRST_LOOK_SECONDS)) as c:
        start_cluster(c, args, no_qr=no_qr)
        for gateway in GATEWAYS:
            only_gateway(c, admin, gateway)
            quiet(30)
            with CpuSampler(c) as sampler:
                load = run_load(
                    "closed_deposits", c.api_url, actors, args.inflight, args.warmup,
                    args.duration, cpus=layout.generator,
                )  # fmt: skip
            closed = charges_window(load, sampler.between(*load.window))
            if no_qr:
                runs[gateway] = (closed, None)
                continue
            quiet(30)
            rate = max(1.0, 0.7 * closed.rate)
            with CpuSampler(c) as sampler:
                load = run_load(
                    "open_deposits", c.api_url, actors, rate, args.duration, cpus=layout.generator
                )
                ids = [s.transaction_id for s in load.sent if s.transaction_id]
                wait_until(all_in(ids, "awaiting_payment"), 60, every=0.5)
            ready = event_times("transaction.awaiting_payment")
            inside = [ready[i] for i in ids if i in ready]
            opened = ChargesRun(
                rate=rate,
                ready=len(inside),
                latencies=[v[1] - v[0] for v in inside],
                by_gateway=Counter(v[2] or "?" for v in inside),
                cpu=sampler.between(*load.window),
                errors=dict(load.errors),
            )
            if len(inside) != len(ids):
                opened.errors["not_ready"] = len(ids) - len(inside)
            runs[gateway] = (closed, opened)
    return runs


def scenario_charges(args: argparse.Namespace, layout: Layout, scratch: Path, out: Report) -> None:
    print("charges: deposits until their charge is ready (awaiting_payment), one gateway at a time")
    runs = charges_runs(args, layout, scratch / "qr", no_qr=False)
    out.audit("charges")
    bare_runs = charges_runs(args, layout, scratch / "no-qr", no_qr=True)
    out.audit("charges_no_qr")
    render = qr_render_ms()
    where = {"mercadopago": "in the Mercado Pago simulator", "efi": "in the worker"}
    for gateway in GATEWAYS:
        closed, opened = runs[gateway]
        bare, _ = bare_runs[gateway]
        assert opened is not None
        print(
            f"  {gateway}: {closed.rate:,.1f} charges/s with {args.inflight} deposits in flight "
            f"(time to QR p50 {ms(pct(closed.latencies, 50))} ms, "
            f"p99 {ms(pct(closed.latencies, 99))} ms)"
        )
        print(f"    {cpu_line(closed.cpu, closed.ready, 'charge')}")
        print(
            f"    at 70 % of that ({opened.rate:.1f} deposits/s, open loop): time to QR "
            f"p50 {ms(pct(opened.latencies, 50))} ms, p99 {ms(pct(opened.latencies, 99))} ms "
            f"({opened.ready} charges)"
        )
        cluster_ms = sum(closed.cpu.values()) * 1000 / max(closed.ready, 1)
        share = render[gateway] / cluster_ms * 100 if cluster_ms else 0.0
        ratio = closed.rate / bare.rate if bare.rate else 0.0
        print(
            f"    QR render {render[gateway]:.1f} ms ({where[gateway]}) of {cluster_ms:.1f} CPU ms "
            f"per charge ({share:.0f} %); baseline with a fixed PNG: {bare.rate:,.1f} charges/s "
            f"({cpu_line(bare.cpu, bare.ready, 'charge')}); with/without = {ratio:.2f}"
        )
        for run in (closed, opened, bare):
            if run.errors:
                out.wrong.append(f"charges ({gateway}): {error_text(run.errors)}")
        prefix = "charges_mp" if gateway == "mercadopago" else "charges_efi"
        out.figures.update(
            {
                f"{prefix}_per_s": round(closed.rate, 1),
                f"{prefix}_p50_ms": ms(pct(closed.latencies, 50)),
                f"{prefix}_p99_ms": ms(pct(closed.latencies, 99)),
                f"{prefix}_cpu_ms": cpu_per(closed.cpu, closed.ready),
                f"{prefix}_open_rate": round(opened.rate, 1),
                f"{prefix}_open_p50_ms": ms(pct(opened.latencies, 50)),
                f"{prefix}_open_p99_ms": ms(pct(opened.latencies, 99)),
                f"{prefix}_qr_render_ms": round(render[gateway], 2),
                f"{prefix}_qr_share_pct": round(share, 1),
                f"{prefix}_no_qr_per_s": round(bare.rate, 1),
                f"{prefix}_no_qr_cpu_ms": cpu_per(bare.cpu, bare.ready),
            }
        )
    best = max(GATEWAYS, key=lambda g: runs[g][0].rate)
    best_open = runs[best][1]
    assert best_open is not None
    out.figures.update(
        charges_per_s=round(runs[best][0].rate, 1),
        charges_open_p99_ms=ms(pct(best_open.latencies, 99)),
        charges_best_gateway=best,
    )


# --- scenario 3: webhooks credited -----------------------------------------------------------


def signed_notifications(path: Path, count: int) -> Path:
    """Pre-signed Mercado Pago notifications, one per line, each a new event (its own id)."""
    ts = str(int(time.time()))
    lines = []
    for n in range(count):
        data_id = str(900_000_000 + n)
        request_id = str(uuid.uuid4())
        manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
        digest = hmac.new(MP_WEBHOOK_SECRET.encode(), manifest.encode(), hashlib.sha256)
        body = json.dumps(
            {"id": 800_000_000 + n, "type": "payment", "action": "payment.updated",
             "api_version": "v1", "live_mode": False, "data": {"id": data_id}},
            separators=(",", ":"),
        )  # fmt: skip
        lines.append(f"{data_id} {request_id} ts={ts},v1={digest.hexdigest()} {body}\n")
    path.write_text("".join(lines))
    return path


def scenario_webhooks(
    args: argparse.Namespace, layout: Layout, scratch: Path, out: Report, shared: Shared
) -> None:
    print(f"webhooks: {args.charges} charges paid at the simulators, credited via their webhooks")
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets))
    with cluster(scratch, layout) as c:
        start_cluster(c, args)
        ids = prepare_ready_deposits(c, args, actors)
        if not quiet():
            raise RuntimeError("setup: the cluster did not come to rest")
        rows = query(
            "SELECT id, gateway, brcode FROM transactions WHERE status = 'awaiting_payment'"
        )
        charges = [(r[0], r[1], r[2]) for r in rows]
        sims = {g: c.sim_url(g) for g in GATEWAYS}
        with CpuSampler(c) as sampler:
            pay = run_load("pay_charges", sims, charges, args.payers, cpus=layout.generator)
            credited = wait_until(
                lambda: count_not(ids, "succeeded") == len(ids), args.settle_timeout, every=0.1
            )
            done = time.time()
        began = pay.window[0]
        cpu = sampler.between(began, done)
        # Baseline: the API alone ingesting signed notifications (no worker takes the jobs).
        for name in [n for n in c.processes if n.startswith("worker-")]:
            c.stop(name)
        notifications = signed_notifications(scratch / "notifications.txt", 50_000)
        common = wrk_options(args, layout)
        ingest = run_wrk(
            LUA / "webhooks.lua", c.api_url, [str(notifications)],
            duration=args.baseline_duration, **common,
        )  # fmt: skip
    succeeded = event_times("transaction.succeeded")
    paid_at = {s.transaction_id: s.answered for s in pay.sent}
    credit_times = [succeeded[i][1] for i in ids if i in succeeded]
    lags = [succeeded[i][1] - paid_at[i] for i in ids if i in succeeded and i in paid_at]
    received = [
        float(r[0])
        for r in query(
            "SELECT UNIX_TIMESTAMP(received_at) FROM inbox_events WHERE received_at >= "
            "FROM_UNIXTIME(%s)",
            (began,),
        )
        if float(r[0]) <= done
    ]
    span = (max(credit_times) - began) if credit_times else 0.0
    rate = len(credit_times) / span if span else 0.0
    ingest_span = (max(received) - min(received)) if len(received) > 1 else 0.0
    ingested = len(received) / ingest_span if ingest_span else 0.0
    mix = Counter(gateway for _, gateway, _ in charges)
    print(
        f"  paid {len(pay.sent)} charges ({', '.join(f'{g} {n}' for g, n in mix.items())}) in "
        f"{pay.window[1] - began:.1f} s "
        f"({len(pay.sent) / (pay.window[1] - began):,.0f}/s, {args.payers} payers); "
        f"errors {error_text(pay.errors)}"
    )
    print(
        f"  credited: {len(credit_times)}/{len(ids)}, the last {span:.1f} s after the first "
        f"payment = {rate:,.1f} credits/s; "
        f"pay → credit p50 {ms(pct(lags, 50))} ms, p99 {ms(pct(lags, 99))} ms"
    )
    print(f"  webhooks ingested meanwhile: {len(received)} at {ingested:,.1f}/s")
    print(f"  {cpu_line(cpu, len(credit_times), 'credit')}")
    print(
        f"  baseline, ingest only (signed MP notifications, no worker): {ingest['rate']:,.0f}/s, "
        f"p99 {ingest['p99_us'] / 1000:.1f} ms, errors {error_text(ingest['errors'])}; "
        f"credited/ingest = {rate / ingest['rate'] if ingest['rate'] else 0:.2f}"
    )
    if not credited:
        out.wrong.append(f"webhooks: {len(ids) - len(credit_times)} deposits not credited")
    if pay.errors or ingest["errors"]:
        out.wrong.append(f"webhooks: {error_text({**pay.errors, **ingest['errors']})}")
    out.figures.update(
        webhooks_credited_per_s=round(rate, 1),
        webhooks_credited=len(credit_times),
        webhooks_by_gateway=dict(mix),
        webhooks_all_credited_s=round(span, 2),
        webhooks_pay_to_credit_p50_ms=ms(pct(lags, 50)),
        webhooks_pay_to_credit_p99_ms=ms(pct(lags, 99)),
        webhooks_ingested_per_s=round(ingested, 1),
        webhooks_cpu_ms=cpu_per(cpu, len(credit_times)),
        webhooks_ingest_only_per_s=round(ingest["rate"], 1),
        webhooks_ingest_only_p99_ms=round(ingest["p99_us"] / 1000, 2),
    )
    out.audit("webhooks")
    shared.actors, shared.transaction_ids = actors, ids


# --- scenario 3b: credits from a backlog ----------------------------------------------------

#: The engine's two modes, each measured on its own backlog in the same run.
CREDIT_MODES = {"batched": "true", "alone": "false"}


def unhandled_events() -> int:
    return int(query("SELECT COUNT(*) FROM inbox_events WHERE processed_at IS NULL")[0][0])


def scenario_credits(args: argparse.Namespace, layout: Layout, scratch: Path, out: Report) -> None:
    """What the workers alone cost per credit: the notifications of paid charges wait in the
    inbox (workers and scheduler stopped), then the workers start and drain them. Nothing
    else runs meanwhile — no payer, no simulator webhook, no ingest — so the figures are the
    credit path's own: the worker, the gateway read it makes (the simulator), MariaDB, Redis.
    Once per `ENGINE_BATCH` mode, each on a fresh backlog, alternating as `--credit-modes`."""
    modes = [m.strip() for m in args.credit_modes.split(",") if m.strip()]
    print(
        f"credits: {args.charges} paid charges' notifications waiting in the inbox, drained by "
        f"the workers; modes {', '.join(modes)} (ENGINE_BATCH)"
    )
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets))
    by_mode: dict[str, dict[str, Any]] = {}
    # Charges are looked at by their notifications only: a poll must not credit first.
    with cluster(scratch, layout, CHARGE_POLL_SECONDS="3600") as c:
        start_cluster(c, args)
        sims = {g: c.sim_url(g) for g in GATEWAYS}
        for mode in modes:
            ids = prepare_ready_deposits(c, args, actors)
            if not quiet():
                raise RuntimeError("setup: the cluster did not come to rest")
            for name in [n for n in c.processes if n.startswith("worker-")] + ["scheduler"]:
                c.stop(name)
            marks = ",".join(["%s"] * len(ids))
            rows = query(
                f"SELECT id, gateway, brcode FROM transactions WHERE id IN ({marks})",  # noqa: S608
                ids,
            )
            pay = run_load(
                "pay_charges", sims, [(r[0], r[1], r[2]) for r in rows], args.payers,
                cpus=layout.generator,
            )  # fmt: skip
            if not wait_until(lambda n=len(ids): unhandled_events() >= n, 120, every=0.2):
                raise RuntimeError(f"setup: {unhandled_events()} of {len(ids)} notifications")
            with CpuSampler(c) as sampler:
                c.start_workers(
                    processes=args.worker_processes,
                    concurrency=args.worker_concurrency,
                    ENGINE_BATCH=CREDIT_MODES[mode],
                )
                credited = wait_until(all_in(ids, "succeeded"), args.settle_timeout, every=0.1)
            succeeded = event_times("transaction.succeeded")
            times = sorted(succeeded[i][1] for i in ids if i in succeeded)
            # From the first credit to the last: the workers' start-up is not the credit path.
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            count = len(times) - 1
            cpu = sampler.between(times[0], times[-1]) if times else {}
            rate = count / span if span else 0.0
            print(
                f"  {mode}: credited {len(times)}/{len(ids)} in {span:.2f} s = "
                f"{rate:,.1f} credits/s; paid with errors {error_text(pay.errors)}"
            )
            print(f"    {cpu_line(cpu, count, 'credit')}")
            if not credited:
                out.wrong.append(f"credits ({mode}): {len(ids) - len(times)} not credited")
            by_mode[mode] = {
                "credits_per_s": round(rate, 1),
                "credited": len(times),
                "cpu_ms": cpu_per(cpu, count),
            }
            c.start_scheduler()
    first = by_mode[modes[0]]
    out.figures.update(
        credits_per_s=first["credits_per_s"],
        credits_cpu_ms=first["cpu_ms"],
        credits_modes=by_mode,
    )
    if "batched" in by_mode and "alone" in by_mode:
        batched, alone = by_mode["batched"], by_mode["alone"]
        ratio = batched["credits_per_s"] / alone["credits_per_s"] if alone["credits_per_s"] else 0
        worker = (batched["cpu_ms"].get("worker", 0), alone["cpu_ms"].get("worker", 0))
        print(
            f"  batched/alone: rate × {ratio:.2f}; worker CPU ms per credit "
            f"{worker[0]:.2f} vs {worker[1]:.2f}"
        )
        out.figures["credits_batched_over_alone"] = round(ratio, 2)
    out.audit("credits")


# --- scenario 4: cached GET ------------------------------------------------------------------


def scenario_cached_get(
    args: argparse.Namespace, layout: Layout, scratch: Path, out: Report, shared: Shared
) -> None:
    print("cached_get: GET /v1/transactions/{id}, Redis cache on vs TRANSACTION_CACHE_SECONDS=0")
    if not shared.transaction_ids:
        recreate_state()
        shared.actors = asyncio.run(create_actors(args.wallets))
        with cluster(scratch / "setup", layout) as c:
            start_cluster(c, args, no_qr=True)
            shared.transaction_ids = prepare_ready_deposits(c, args, shared.actors)
    owners = {a.wallet_id: a.token for a in shared.actors}
    rows = query("SELECT id, wallet_id, LENGTH(qr_png_base64) FROM transactions")
    wanted = set(shared.transaction_ids)
    lines = [f"{owners[r[1]]} {r[0]}\n" for r in rows if r[0] in wanted]
    body_kb = statistics.mean(int(r[2] or 0) for r in rows if r[0] in wanted) / 1024
    ids_file = scratch / "get_ids.txt"
    ids_file.write_text("".join(lines))
    results = {}
    for label, seconds in (("cache", "30"), ("no_cache", "0")):
        with cluster(scratch / label, layout) as c, CpuSampler(c) as sampler:
            c.start_api(workers=args.api_workers, TRANSACTION_CACHE_SECONDS=seconds)
            common = wrk_options(args, layout)
            run_wrk(LUA / "get.lua", c.api_url, [str(ids_file)], duration=args.warmup, **common)
            began = time.time()
            result = run_wrk(
                LUA / "get.lua",
                c.api_url,
                [str(ids_file)],
                duration=args.duration,
                **common,
            )
            result["cpu"] = sampler.between(began, time.time())
        results[label] = result
    cached, uncached = results["cache"], results["no_cache"]
    for label, result in results.items():
        print(
            f"  {'cache on ' if label == 'cache' else 'cache off'}: {result['rate']:,.0f} GETs/s "
            f"over {len(lines)} ids (QR image ≈ {body_kb:.1f} KB each), p50 "
            f"{result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, errors "
            f"{error_text(result['errors'])}; {cpu_line(result['cpu'], result['created'], 'GET')}"
        )
        if result["errors"]:
            out.wrong.append(f"cached_get ({label}): {error_text(result['errors'])}")
    ratio = cached["rate"] / uncached["rate"] if uncached["rate"] else 0.0
    print(f"  ratio cached/uncached = {ratio:.2f}")
    out.figures.update(
        cached_get_per_s=round(cached["rate"], 1),
        cached_get_p50_ms=round(cached["p50_us"] / 1000, 2),
        cached_get_p99_ms=round(cached["p99_us"] / 1000, 2),
        cached_get_cpu_ms=cpu_per(cached["cpu"], cached["created"]),
        uncached_get_per_s=round(uncached["rate"], 1),
        uncached_get_p99_ms=round(uncached["p99_us"] / 1000, 2),
        uncached_get_cpu_ms=cpu_per(uncached["cpu"], uncached["created"]),
        cached_get_ratio=round(ratio, 2),
    )
    out.audit("cached_get")


# --- scenario 5: failover --------------------------------------------------------------------


class CircuitWatch:
    """Polls `GET /v1/gateways` ten times a second: when each charge circuit opened, closed."""

    def __init__(self, api: str, token: str) -> None:
        self.api = api
        self.token = token
        self.seen: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="circuit-watch", daemon=True)

    def __enter__(self) -> CircuitWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=5) as http:
            while not self._stop.wait(0.1):
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    gateways = http.get(
                        "/v1/gateways", headers={"Authorization": f"Bearer {self.token}"}
                    ).json()
                    self.seen.append(
                        (
                            time.time(),
                            {g["name"]: g["operations"]["charge"]["circuit"] for g in gateways},
                        )
                    )

    def first(self, gateway: str, state: str, after: float) -> float | None:
        return next((t for t, s in self.seen if t >= after and s.get(gateway) == state), None)


def charges_at_simulators(c: Cluster) -> Counter[tuple[str, str]]:
    """(transaction id, gateway) → charges found at that gateway's simulator, read through
    the providers' own list APIs (MP payments search; Efí `GET /v2/cob`)."""
    found: Counter[tuple[str, str]] = Counter()
    mp = httpx.Client(
        base_url=c.sim_url("mercadopago"),
        headers={"Authorization": f"Bearer {SANDBOX_MERCADOPAGO_TOKEN}"},
        timeout=30,
    )
    with mp:
        for offset in itertools.count(0, 1000):
            page = mp.get(
                "/v1/payments/search",
                params={"limit": 1000, "offset": offset, "sort": "id", "criteria": "asc"},
            ).json()
            for payment in page["results"]:
                found[(str(payment.get("external_reference")), "mercadopago")] += 1
            if offset + 1000 >= page["paging"]["total"]:
                break
    with httpx.Client(base_url=c.sim_url("efi"), timeout=30) as efi:
        token = efi.post(
            "/oauth/token",
            auth=(SANDBOX_EFI_CLIENT_ID, SANDBOX_EFI_CLIENT_SECRET),
            json={"grant_type": "client_credentials"},
        ).json()["access_token"]
        now = datetime.now(UTC)
        window: dict[str, Any] = {
            "inicio": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fim": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "paginacao.itensPorPagina": 1000,
        }
        for number in itertools.count():
            page = efi.get(
                "/v2/cob",
                params={**window, "paginacao.paginaAtual": number},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            for cob in page["cobs"]:
                txid = str(cob["txid"])  # our txid is the transaction id without its "_"
                found[(f"txn_{txid[3:]}" if txid.startswith("txn") else txid, "efi")] += 1
            if number + 1 >= page["parametros"]["paginacao"]["quantidadeDePaginas"]:
                break
    return found


def scenario_failover(args: argparse.Namespace, layout: Layout, scratch: Path, out: Report) -> None:
    print(
        f"failover: {args.failover_rate:g} deposits/s for {args.failover_duration} s; the "
        f"preferred gateway refuses connections for {args.outage} s from second {args.cut_at}"
    )
    recreate_state()
    actors = asyncio.run(create_actors(args.wallets))
    admin = asyncio.run(create_admin_token())
    cut: dict[str, Any] = {}
    with cluster(scratch, layout) as c:
        start_cluster(c, args)

        def cut_primary() -> None:
            """Once `cut_at` seconds of traffic went in, close the busiest gateway's port."""
            wanted = int(args.failover_rate * args.cut_at)
            wait_until(lambda: query("SELECT COUNT(*) FROM transactions")[0][0] >= wanted, 60, 0.05)
            recent = query(
                "SELECT gateway, COUNT(*) FROM gateway_attempts WHERE operation = 'charge' "
                "AND created_at >= UTC_TIMESTAMP(6) - INTERVAL 3 SECOND GROUP BY gateway"
            )
            primary = max(recent, key=lambda r: r[1])[0] if recent else "efi"
            cut["gateway"], cut["at"] = primary, time.time()
            with contextlib.suppress(httpx.HTTPError):  # the closing port may drop the answer
                httpx.put(
                    f"{c.sim_url(primary)}/_sandbox/faults/*",
                    json={"outage": args.outage_kind, "outage_seconds": args.outage},
                    timeout=5,
                )

        cutter = threading.Thread(target=cut_primary, name="cutter", daemon=True)
        with CircuitWatch(c.api_url, admin) as watch:
            cutter.start()
            load = run_load(
                "open_deposits", c.api_url, actors, args.failover_rate, args.failover_duration,
                cpus=layout.generator,
            )  # fmt: skip
            cutter.join()
            ids = [s.transaction_id for s in load.sent if s.transaction_id]
            wait_until(
                lambda: all(s != "pending" for s, _ in statuses_of(ids).values()),
                args.settle_timeout,
                every=0.5,
            )
        at_sims = charges_at_simulators(c)
    if "at" not in cut:
        raise RuntimeError("failover: the cut never happened")
    primary, cut_at, outage_end = cut["gateway"], cut["at"], cut["at"] + args.outage
    rows = query(
        "SELECT id, UNIX_TIMESTAMP(created_at), status, gateway, failure_code FROM transactions "
        "WHERE type = 'cash_in'"
    )
    created = {r[0]: (float(r[1]), r[2], r[3], r[4]) for r in rows}
    ready = event_times("transaction.awaiting_payment")
    during = [i for i, v in created.items() if cut_at <= v[0] < outage_end]
    before = [i for i, v in created.items() if v[0] < cut_at]
    ok_during = [i for i in during if created[i][1] == "awaiting_payment"]
    failures = Counter(created[i][3] or created[i][1] for i in during if i not in ok_during)
    attempts = query(
        "SELECT a.transaction_id, UNIX_TIMESTAMP(a.created_at), a.try_number, a.outcome, "
        "UNIX_TIMESTAMP(t.created_at) FROM gateway_attempts a JOIN transactions t ON "
        "t.id = a.transaction_id WHERE a.gateway = %s AND a.operation = 'charge' "
        "AND a.created_at >= FROM_UNIXTIME(%s) AND a.created_at < FROM_UNIXTIME(%s)",
        (primary, cut_at, outage_end),
    )
    touches = [float(a[1]) for a in attempts]
    new_touches = [float(a[1]) for a in attempts if float(a[4]) >= cut_at]
    touch_stop = (max(touches) - cut_at) if touches else 0.0
    new_stop = (max(new_touches) - cut_at) if new_touches else 0.0
    opened = watch.first(primary, "open", cut_at)
    # Duplicates: a transaction with more than one charge anywhere; orphans: a charge at a
    # gateway the transaction does not name.
    per_transaction: Counter[str] = Counter()
    orphans = 0
    for (transaction_id, gateway), n in at_sims.items():
        per_transaction[transaction_id] += n
        if transaction_id in created and created[transaction_id][2] != gateway:
            orphans += n
    duplicates = sum(n - 1 for n in per_transaction.values() if n > 1)
    unknown = sum(n for t, n in per_transaction.items() if t not in created)
    with_charge = sum(1 for v in created.values() if v[2] is not None)
    lat_before = [ready[i][1] - ready[i][0] for i in before if i in ready]
    lat_during = [ready[i][1] - ready[i][0] for i in during if i in ready]
    share_during = Counter(created[i][2] for i in ok_during)
    success = len(ok_during) / len(during) * 100 if during else 0.0
    print(
        f"  cut {primary} at {datetime.fromtimestamp(cut_at, UTC):%H:%M:%S.%f} "
        f"({args.outage_kind}, {args.outage} s); its charge circuit opened after "
        f"{f'{opened - cut_at:.2f} s' if opened else 'never (within the run)'}"
    )
    print(
        f"  attempts at {primary} during the cut: {len(touches)} "
        f"(last {touch_stop:.2f} s after the cut; by deposits created after it: "
        f"{len(new_touches)}, last {new_stop:.2f} s after)"
    )
    print(
        f"  during the cut: {len(ok_during)}/{len(during)} deposits got their charge "
        f"({success:.1f} %; by gateway {dict(share_during)}; failures {dict(failures) or 'none'})"
        f", time to QR p50 {ms(pct(lat_during, 50))} ms, p99 {ms(pct(lat_during, 99))} ms"
    )
    print(
        f"  baseline before the cut: {len(before)} deposits, "
        f"{sum(1 for i in before if created[i][1] == 'awaiting_payment')} ready, time to QR "
        f"p50 {ms(pct(lat_before, 50))} ms, p99 {ms(pct(lat_before, 99))} ms"
    )
    print(
        f"  charges at the simulators: {sum(at_sims.values())} for {with_charge} deposits with "
        f"a charge; duplicates {duplicates}, charges at a gateway the deposit does not name "
        f"{orphans}, charges for unknown references {unknown}"
    )
    if duplicates or orphans or unknown:
        out.wrong.append(f"failover: duplicates {duplicates}, orphans {orphans}, unknown {unknown}")
    if load.errors:
        out.wrong.append(f"failover: {error_text(load.errors)}")
    out.figures.update(
        failover_gateway_cut=primary,
        failover_circuit_open_s=round(opened - cut_at, 2) if opened else None,
        failover_touches=len(touches),
        failover_touch_stop_s=round(touch_stop, 2),
        failover_new_payment_touch_stop_s=round(new_stop, 2),
        failover_during=len(during),
        failover_success_pct=round(success, 1),
        failover_failures=dict(failures),
        failover_p99_ms_during=ms(pct(lat_during, 99)),
        failover_p99_ms_before=ms(pct(lat_before, 99)),
        failover_duplicates=duplicates,
        failover_orphans=orphans,
    )
    out.audit("failover")


# --- main ------------------------------------------------------------------------------------


def goals(figures: dict[str, Any]) -> dict[str, bool | None]:
    verdicts: dict[str, bool | None] = {}
    for label, (name, op, target) in GOALS.items():
        value = figures.get(name)
        if value is None:
            verdicts[label] = None
            continue
        verdicts[label] = value >= target if op == ">=" else value <= target
    return verdicts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    add("--duration", type=int, default=10, help="seconds per measured run")
    add("--warmup", type=int, default=3, help="seconds before each measured run")
    add("--baseline-duration", type=int, default=5, help="seconds of the wrk baselines")
    add("--connections", type=int, default=16, help="wrk connections")
    add("--api-workers", type=int, default=2, help="API processes for the wrk scenarios")
    add("--pipeline-api-workers", type=int, default=1, help="API processes next to the workers")
    add("--worker-processes", type=int, default=2, help="`pixwave worker` processes")
    add("--worker-concurrency", type=int, default=50, help="jobs at once per worker process")
    add("--wallets", type=int, default=100, help="wallets (and tokens) the load spreads over")
    add("--inflight", type=int, default=32, help="deposits in flight (charges, closed loop)")
    add("--charges", type=int, default=300, help="ready charges to pay (webhooks, cached_get)")
    add("--payers", type=int, default=16, help="concurrent payers at the simulators")
    add(
        "--credit-modes",
        default="batched,alone",
        help="ENGINE_BATCH modes of the credits scenario, in order (batched, alone)",
    )
    add("--settle-timeout", type=float, default=120, help="seconds to wait for credits")
    add("--failover-rate", type=float, default=10, help="deposits per second (failover)")
    add("--failover-duration", type=int, default=20, help="seconds of steady deposits")
    add("--cut-at", type=float, default=6, help="second of the run the gateway is cut")
    add("--outage", type=float, default=8, help="seconds the gateway stays cut")
    add("--outage-kind", choices=("refuse", "503"), default="refuse", help="how it fails")
    add("--server-cpus", help="taskset list for every cluster process")
    add("--generator-cpus", help="taskset list for wrk and the asyncio load generator")
    add("--no-pin", action="store_true", help="let the kernel place everything")
    add("--keep", type=Path, help="keep every process's log and scratch file in this directory")
    return parser.parse_args(argv)


def layout_of(args: argparse.Namespace) -> Layout:
    base = Layout(None, None, None, None, None) if args.no_pin else default_layout()
    server = args.server_cpus or base.api
    return Layout(server, server, server, server, args.generator_cpus or base.generator)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    layout = layout_of(args)
    chosen = [s for s in SCENARIOS if not args.scenario or s in args.scenario]
    print(f"code: {code_version()}; MariaDB {mariadb_version()}; {os.cpu_count()} cpus")
    print(f"layout: {layout.describe()}")
    print(
        f"cluster: API ({args.pipeline_api_workers} process(es); {args.api_workers} for the wrk "
        f"scenarios), {args.worker_processes} worker process(es) × {args.worker_concurrency} "
        f"jobs, 1 scheduler, both simulators standalone; database pixwave_bench_payments, "
        f"Redis db 11"
    )
    report = Report()
    shared = Shared()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            scratch = str(args.keep)
        else:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="pixwave-bench-"))
        for name in chosen:
            where = Path(scratch) / name
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            began = time.monotonic()
            if name == "deposits":
                scenario_deposits(args, layout, where, report)
            elif name == "withdrawals":
                scenario_withdrawals(args, layout, where, report)
            elif name == "charges":
                scenario_charges(args, layout, where, report)
            elif name == "webhooks":
                scenario_webhooks(args, layout, where, report, shared)
            elif name == "credits":
                scenario_credits(args, layout, where, report)
            elif name == "cached_get":
                scenario_cached_get(args, layout, where, report, shared)
            elif name == "failover":
                scenario_failover(args, layout, where, report)
            print(f"  ({time.monotonic() - began:.0f} s)")
    verdicts = goals(report.figures)
    print("goals:")
    for label, met in verdicts.items():
        if met is not None:
            print(f"  {'met    ' if met else 'NOT met'}  {label}")
    if report.wrong:
        print("wrong answers:\n  " + "\n  ".join(report.wrong))
    figures = {
        "benchmark": "payments",
        **report.figures,
        "goals_met": {k: v for k, v in verdicts.items() if v is not None},
        "scenarios": chosen,
        "duration_s": args.duration,
        "server_cpus": layout.api,
        "generator_cpus": layout.generator,
        "total_s": round(time.monotonic() - started),
        "code": code_version(),
    }
    print(json.dumps(figures))
    # Times are only reported; a wrong answer (an error, a missing credit, a duplicate charge,
    # an unbalanced ledger) fails the run.
    return 1 if report.wrong else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        sys.exit(130)
