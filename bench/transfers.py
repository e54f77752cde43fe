"""Benchmark `POST /v1/transfers` over HTTP against MariaDB, next to its raw-SQL floor.

Why two runs in one invocation: a transfer's cost over HTTP is the SQL plus everything around it
(HTTP parsing, FastAPI, auth, the Redis lock, SQLAlchemy, serialisation). The floor sends the SQL
one transfer issues, in the same round trips, straight through aiomysql on the same machine,
database and concurrency, so `ratio_to_floor` says how much of what the database and driver can
do the API turns into transfers, whatever the speed of the machine it runs on.

Run: `make bench` (or `.venv/bin/python bench/transfers.py --help`). Needs MariaDB and Redis on
127.0.0.1 and `wrk` (Debian package). Prints numbers, never judges them; the last line of stdout
is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiomysql
import orjson
import pymysql
import redis
import uvloop
from pymysql.constants import CLIENT

from pixwave.accounts import service as accounts
from pixwave.accounts.auth import Principal
from pixwave.accounts.models import Role
from pixwave.accounts.schemas import UserCreate
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.kit.ids import new_id
from pixwave.ledger.audit import run_audit
from pixwave.migrate import upgrade
from pixwave.pix import generate_cpf
from pixwave.resources import Resources
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import AdjustmentCreate, AdjustmentDirection

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "lua" / "transfers.lua"
PIXWAVE = ROOT / ".venv" / "bin" / "pixwave"
DB_HOST, DB_PORT, DB_USER = "127.0.0.1", 3306, "root"
DATABASE = "pixwave_bench"
DATABASE_URL = f"mysql+aiomysql://{DB_USER}@{DB_HOST}:{DB_PORT}/{DATABASE}?charset=utf8mb4"
REDIS_URL = "redis://127.0.0.1:6379/14"
FUNDING = 100_000_000  # R$ 1,000,000.00 per wallet: no transfer can ever be refused
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Actor:
    """One wallet owner: what the generator needs to pay from (token) and to (wallet id)."""

    user_id: str
    wallet_id: str
    token: str


@dataclass
class RunResult:
    """One measured run: throughput, latency percentiles and anything that was not a 201."""

    tps: float
    p50_ms: float
    p99_ms: float
    completed: int
    errors: int
    error_detail: dict[str, int] = field(default_factory=dict)


# --- setup -----------------------------------------------------------------------------------


def recreate_database(database: str = DATABASE) -> None:
    """Start from an empty schema so every run measures the same table sizes."""
    connection = pymysql.connect(host=DB_HOST, port=DB_PORT, user=DB_USER, connect_timeout=3)
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def _resources(database_url: str) -> Resources:
    """Set-up and audit need the database only: no gateway connector is built."""
    return build_resources(Settings(_env_file=None, database_url=database_url), gateways={})


async def create_actors(
    count: int, *, database_url: str = DATABASE_URL, funding: int = FUNDING
) -> list[Actor]:
    """Users, wallets, tokens (and ``funding`` each) through the services, as an operator
    would make them."""
    resources = _resources(database_url)
    operator = Principal(
        token_id="tok_bench",  # noqa: S106 - a label, not a secret
        user_id="usr_bench",
        role=Role.ADMIN,
        wallet_id=None,
    )
    rng = random.Random(20261126)

    async def one(n: int) -> Actor:
        data = UserCreate(
            name=f"Bench User {n}", email=f"bench{n}@example.com", document=generate_cpf(rng)
        )
        async with resources.sessionmaker() as session, session.begin():
            user = await accounts.create_user(session, data)
            assert user.wallet_id is not None
            token = (await accounts.issue_token(session, user_id=user.id, name="bench")).token
            assert token is not None
            if funding:
                await wallets.adjust(
                    session,
                    operator,
                    AdjustmentCreate(
                        wallet_id=user.wallet_id,
                        direction=AdjustmentDirection.CREDIT,
                        amount=funding,
                        reason="benchmark funding",
                    ),
                )
        return Actor(user_id=user.id, wallet_id=user.wallet_id, token=token)

    try:
        # The first adjustment opens the system account; the rest may then run concurrently.
        actors = [await one(0)]
        for start in range(1, count, 20):
            batch = range(start, min(start + 20, count))
            actors += await asyncio.gather(*(one(n) for n in batch))
        return actors
    finally:
        await resources.close()


async def audit(database_url: str = DATABASE_URL) -> tuple[bool, int, list[str]]:
    """The ledger must balance after every run; a fast wrong answer is no answer."""
    resources = _resources(database_url)
    try:
        async with resources.sessionmaker() as session:
            report = await run_audit(session)
        return report.ok, report.ledger_transactions, report.problems
    finally:
        await resources.close()


# --- HTTP run --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _processes() -> Iterator[tuple[str, int, int]]:
    """(command name, process group, CPU ticks so far) of every live process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()  # the command name may hold spaces
        yield (
            raw[raw.find("(") + 1 : raw.rfind(")")],
            int(fields[2]),
            int(fields[11]) + int(fields[12]),
        )


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) so far of every live process in a process group."""
    ticks = sum(cpu for _name, group, cpu in _processes() if group == pgid)
    return ticks / os.sysconf("SC_CLK_TCK")


def mariadb_cpu_seconds() -> float:
    """CPU seconds so far of the local MariaDB server (0 when it is not found here)."""
    ticks = sum(cpu for name, _group, cpu in _processes() if name in {"mariadbd", "mysqld"})
    return ticks / os.sysconf("SC_CLK_TCK")


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """Prefix `taskset -c` so each process stays on the core the report says it runs on."""
    return ["taskset", "-c", cpus, *command] if cpus else command


@contextlib.contextmanager
def api_server(
    *, port: int, workers: int, pool: int, cpus: str | None, log: Path, group_commit: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `pixwave api` in its own process group and kill the whole group however we leave."""
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "warning",
        # Transfers touch no gateway; several API processes may not mount the demo's simulators.
        "SANDBOX_GATEWAYS": "false",
        "DB_POOL_SIZE": str(pool),
        "DB_POOL_OVERFLOW": "0",
        # Every request comes from one address at far more than its limit: the limiter (on by
        # default with Redis) stays off unless the caller sets it, with rates to match.
        "RATE_LIMIT_ENABLED": os.environ.get("RATE_LIMIT_ENABLED", "false"),
        "GROUP_COMMIT": "true" if group_commit else "false",
    }
    command = [str(PIXWAVE), "api", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            pinned(command, cpus),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(port, process, log)
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the API did not answer {url} within 30 s:\n{log.read_text()}")


def run_wrk(
    script: Path,
    url: str,
    args: Sequence[str],
    *,
    connections: int,
    duration: float,
    cpus: str | None,
    threads: int = 1,
) -> dict[str, Any]:
    """One wrk run in its own process; the script's `done()` (report.lua) prints its figures
    as a WRK_RESULT JSON line. Adds ``errors`` (by kind) and ``rate`` (created per second)."""
    command = [
        "wrk", f"--threads={threads}", f"--connections={connections}",
        f"--duration={max(1, round(duration))}s", "--timeout=10s", f"--script={script}", url,
        "--", *args,
    ]  # fmt: skip
    process = subprocess.run(
        pinned(command, cpus), capture_output=True, text=True, timeout=duration + 60, check=False
    )
    line = next((x for x in process.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({process.returncode}):\n{process.stdout}\n{process.stderr}"
        )
    data: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    errors = {f"http_{k}": int(v) for k, v in sorted(data["other_statuses"].items())}
    if data["socket_errors"]:
        errors["socket_errors"] = int(data["socket_errors"])
    if data["timeouts"]:
        errors["timeouts"] = int(data["timeouts"])
    data["errors"] = errors
    data["rate"] = data["created"] / (data["duration_us"] / 1e6)
    return data


def run_transfers(
    *,
    port: int,
    actors_file: Path,
    nonce: str,
    connections: int,
    threads: int,
    duration: float,
    cpus: str | None,
) -> RunResult:
    """Transfers through the API for ``duration`` seconds (transfers.lua)."""
    data = run_wrk(
        LUA_SCRIPT,
        f"http://127.0.0.1:{port}",
        [str(actors_file), nonce],
        connections=connections,
        duration=duration,
        cpus=cpus,
        threads=threads,
    )
    return RunResult(
        tps=data["rate"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        completed=int(data["created"]),
        errors=sum(data["errors"].values()),
        error_detail=data["errors"],
    )


# --- floor: the same SQL, no HTTP ------------------------------------------------------------
#
# The SQL text one `POST /v1/transfers` sends (read off the driver): the nine writes queued by
# the unit of work — including the idempotency record, inserted optimistically without a lookup —
# as ONE multi-statement round trip (`pixwave.unit_of_work`), then COMMIT. The pool pings a
# connection only after it idled (never under load) and rolls back only one left
# mid-transaction. The floor sends the same writes and commit with the same client flags.
# `--floor statements` sends each write on its own round trip instead, to show what sending
# them together saves.

CLIENT_FLAGS = CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS  # as pixwave.db opens MySQL engines

DEBIT = (
    "UPDATE ledger_accounts SET posted=(ledger_accounts.posted + %s), "
    "held=(ledger_accounts.held + %s) WHERE ledger_accounts.id = %s AND "
    "(ledger_accounts.allow_negative = true OR "
    "((ledger_accounts.posted - ledger_accounts.held) + %s) - %s >= %s) "
    "AND ledger_accounts.kind = %s"
)
CREDIT = (
    "UPDATE ledger_accounts SET posted=(ledger_accounts.posted + %s), "
    "held=(ledger_accounts.held + %s) WHERE ledger_accounts.id = %s "
    "AND ledger_accounts.kind = %s"
)
INSERT_LEDGER_TRANSACTION = (
    "INSERT INTO ledger_transactions (id, kind, reference, description, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
INSERT_ENTRY = (
    "INSERT INTO ledger_entries (id, ledger_transaction_id, account_id, amount, created_at) "
    "VALUES (%s, %s, %s, %s, %s)"
)
INSERT_TRANSACTION = (
    "INSERT INTO transactions (id, type, status, amount, currency, user_id, wallet_id, "
    "counterparty_wallet_id, description, refunded_amount, ledger_transaction_id, created_at, "
    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox_events (id, event_type, aggregate_type, aggregate_id, payload, "
    "created_at) VALUES (%s, %s, %s, %s, %s, %s)"
)
INSERT_KEY = (
    "INSERT INTO idempotency_keys (scope, `key`, request_method, request_path, request_hash, "
    "response_status, response_body, created_at, expires_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
FLOOR_LABELS = {"batched": "writes in one round trip", "statements": "a round trip per statement"}
FLOOR_MODES = tuple(FLOOR_LABELS)


def _now() -> datetime:
    """Naive UTC, as the UTCDateTime column type binds it."""
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def transfer_writes(
    payer: Actor, payee: Actor, amount: int, key: str
) -> list[tuple[str, tuple[Any, ...]]]:
    """The nine writes of one transfer (entries are two), in the API's order, fresh values."""
    transaction_id = new_id("txn")
    ledger_id = new_id("ltx")
    debit = (DEBIT, (-amount, 0, payer.wallet_id, -amount, 0, 0, "wallet"))
    credit = (CREDIT, (amount, 0, payee.wallet_id, "wallet"))
    # Balances move in account-id order, as the ledger does, so transfers never deadlock.
    updates = [debit, credit] if payer.wallet_id < payee.wallet_id else [credit, debit]
    now = _now()
    payload = {
        "transaction_id": transaction_id,
        "type": "transfer",
        "status": "succeeded",
        "amount": amount,
        "currency": "BRL",
        "wallet_id": payer.wallet_id,
        "gateway": None,
        "failure_code": None,
        "actor": payer.user_id,
    }
    body = orjson.dumps(
        {
            "id": transaction_id,
            "object": "transaction",
            "type": "transfer",
            "status": "succeeded",
            "amount": amount,
            "currency": "BRL",
            "wallet_id": payer.wallet_id,
            "counterparty_wallet_id": payee.wallet_id,
            **dict.fromkeys(
                ("parent_id", "gateway", "txid", "end_to_end_id", "gateway_payment_id")
            ),
            **dict.fromkeys(("pix_key", "description", "failure_code", "failure_message")),
            "refunded_amount": 0,
            "ledger_transaction_id": ledger_id,
            "created_at": _iso(now),
            "updated_at": _iso(now),
        }
    )
    request = {"amount": amount, "description": None, "to_wallet_id": payee.wallet_id}
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    request_hash = hashlib.sha256(b"POST /v1/transfers\n" + canonical).hexdigest()
    return [
        *updates,
        (INSERT_LEDGER_TRANSACTION, (ledger_id, "transfer", transaction_id, "", now)),
        (INSERT_ENTRY, (new_id("len"), ledger_id, payer.wallet_id, -amount, now)),
        (INSERT_ENTRY, (new_id("len"), ledger_id, payee.wallet_id, amount, now)),
        (
            INSERT_TRANSACTION,
            (
                transaction_id, "transfer", "succeeded", amount, "BRL", payer.user_id,
                payer.wallet_id, payee.wallet_id, None, 0, ledger_id, now, now,
            ),
        ),
        (
            INSERT_OUTBOX,
            (
                new_id("evt"), "transaction.succeeded", "transaction", transaction_id,
                json.dumps(payload), now,
            ),
        ),
        (
            INSERT_KEY,
            (
                payer.user_id, key, "POST", "/v1/transfers", request_hash, 201, body,
                now, now + IDEMPOTENCY_TTL,
            ),
        ),
    ]  # fmt: skip


async def floor_transfer(
    cursor: Any, payer: Actor, payee: Actor, amount: int, key: str, *, batched: bool
) -> bool:
    """One transfer's statements on `cursor`; False if an update matched no row (refusal)."""
    writes = transfer_writes(payer, payee, amount, key)
    counts: list[int] = []
    if batched:
        await cursor.execute(
            ";\n".join(sql for sql, _ in writes), tuple(v for _, args in writes for v in args)
        )
        counts.append(cursor.rowcount)
        for _ in writes[1:]:
            await cursor.nextset()
            counts.append(cursor.rowcount)
    else:
        for sql, args in writes:
            await cursor.execute(sql, args)
            counts.append(cursor.rowcount)
    return counts[0] == 1 and counts[1] == 1


async def floor_run(
    actors: Sequence[Actor], concurrency: int, warmup: float, duration: float, *, batched: bool
) -> RunResult:
    """`concurrency` clients, each one DB transaction per transfer, for `duration` seconds."""
    pool = await aiomysql.create_pool(
        host=DB_HOST,
        port=DB_PORT,
        user=DB_USER,
        db=DATABASE,
        charset="utf8mb4",
        autocommit=False,
        client_flag=CLIENT_FLAGS,
        minsize=concurrency,
        maxsize=concurrency,
    )
    nonce = new_id("floor")
    latencies: list[float] = []
    failures: dict[str, int] = {}
    completed = 0
    measuring = False
    stop = False

    async def client(number: int) -> None:
        nonlocal completed
        rng = random.Random(number)
        sent = 0
        while not stop:
            payer, payee = rng.sample(actors, 2)
            sent += 1
            key = f"{nonce}-{number}-{sent}"
            started = time.perf_counter()
            try:
                async with pool.acquire() as connection:
                    try:
                        async with connection.cursor() as cursor:
                            ok = await floor_transfer(
                                cursor, payer, payee, rng.randint(1, 100), key, batched=batched
                            )
                        if ok:
                            await connection.commit()
                        else:
                            await connection.rollback()
                    except pymysql.MySQLError:
                        await connection.rollback()
                        raise
            except pymysql.MySQLError as exc:
                if measuring:
                    name = f"mysql_{exc.args[0] if exc.args else type(exc).__name__}"
                    failures[name] = failures.get(name, 0) + 1
                continue
            if not measuring:
                continue
            if ok:
                completed += 1
                latencies.append(time.perf_counter() - started)
            else:
                failures["refused"] = failures.get("refused", 0) + 1

    tasks = [asyncio.create_task(client(n)) for n in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        measuring = True
        began = time.perf_counter()
        await asyncio.sleep(duration)
        measuring = False
        elapsed = time.perf_counter() - began
        stop = True
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        pool.terminate()
        await pool.wait_closed()
    latencies.sort()
    return RunResult(
        tps=completed / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        completed=completed,
        errors=sum(failures.values()),
        error_detail=failures,
    )


def floor_process(
    actors: Sequence[Actor],
    concurrency: int,
    warmup: float,
    duration: float,
    cpus: str | None,
    batched: bool,
    results: Connection,
) -> None:
    """Entry point of the floor's own process: pinned like the API server, on uvloop.

    It ignores Ctrl-C: the parent decides, and terminates it, so nothing is left half-closed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus:
        os.sched_setaffinity(0, parse_cpus(cpus))
    try:
        results.send(uvloop.run(floor_run(actors, concurrency, warmup, duration, batched=batched)))
    except Exception as exc:
        results.send(RuntimeError(f"the floor run failed: {exc!r}"))
        raise


def run_floor(
    actors: Sequence[Actor],
    concurrency: int,
    warmup: float,
    duration: float,
    cpus: str | None,
    *,
    batched: bool,
) -> RunResult:
    """The floor, in a process of its own (see `run_spawned`)."""
    result = run_spawned(
        floor_process, (actors, concurrency, warmup, duration, cpus, batched), "floor"
    )
    assert isinstance(result, RunResult)
    return result


def run_spawned(target: Callable[..., None], args: tuple[Any, ...], name: str) -> object:
    """Run ``target(*args, sender)`` in a fresh spawned process and return what it sent on
    ``sender`` (raising it if it is an exception); the process is gone when this returns.

    A load generator in its own interpreter does not share the GIL with the measuring process.
    """
    context = get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=target, args=(*args, sender), name=name, daemon=True)
    child.start()
    sender.close()
    try:
        result: object = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the {name} process died (exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.terminate()
        child.join()
    if isinstance(result, Exception):
        raise result
    return result


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def parse_cpus(spec: str) -> set[int]:
    cpus: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


# --- main ------------------------------------------------------------------------------------


def default_layout(workers: int) -> tuple[str | None, str | None]:
    """(API and floor client cpus, wrk cpus) for taskset; MariaDB and Redis stay unpinned.

    wrk gets the last core to itself unless the API has a worker for every core, in which case
    the API spans all cores (a worker pinned away from half the machine would idle).
    """
    count = os.cpu_count() or 1
    if count < 2:
        return None, None
    last = count - 1
    server_last = last if workers >= count else last - 1
    return ("0" if server_last == 0 else f"0-{server_last}"), str(last)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="API server processes")
    parser.add_argument("--wallets", type=int, default=200, help="funded wallets (and tokens)")
    parser.add_argument(
        "--db-pool", type=int, default=0, help="DB connections per API worker (0: share of -c)"
    )
    parser.add_argument(
        "--floor",
        choices=FLOOR_MODES,
        default="batched",
        help="send the floor's writes as the API does (one round trip) or one by one",
    )
    parser.add_argument(
        "--modes",
        default="grouped,alone",
        help="API modes to measure in turn, the first one reported as `http_*`: grouped "
        "(GROUP_COMMIT=true, the default) and alone (each transfer its own transaction)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--server-cpus", help="taskset list for the API and the floor client")
    parser.add_argument("--generator-cpus", help="taskset list for wrk")
    parser.add_argument("--no-pin", action="store_true", help="let the kernel place everything")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    server_cpus, generator_cpus = (None, None) if args.no_pin else default_layout(args.workers)
    server_cpus = args.server_cpus or server_cpus
    generator_cpus = args.generator_cpus or generator_cpus
    pool = args.db_pool or max(1, math.ceil(args.connections / args.workers))

    print(f"code: {code_version()}; MariaDB {mariadb_version()}; {os.cpu_count()} cpus")
    print(f"setup: database {DATABASE}, {args.wallets} funded wallets, Redis db 14")
    started = time.monotonic()
    recreate_database()
    upgrade(DATABASE_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    actors = asyncio.run(create_actors(args.wallets))
    print(f"setup: done in {time.monotonic() - started:.1f} s")
    print(
        f"layout: API ({args.workers} worker(s), {pool} DB connections each) and floor client "
        f"on cpus {server_cpus or 'any'}; wrk ({args.wrk_threads} thread(s)) on cpus "
        f"{generator_cpus or 'any'}; MariaDB and Redis unpinned"
    )

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or set(modes) - {"grouped", "alone"}:
        print("--modes takes grouped and/or alone", file=sys.stderr)
        return 2
    measured: dict[str, tuple[RunResult, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pixwave-bench-") as scratch:
        actors_file = Path(scratch) / "actors.txt"
        actors_file.write_text("".join(f"{a.token} {a.wallet_id}\n" for a in actors))
        for mode in modes:
            port = free_port()
            with api_server(
                port=port,
                workers=args.workers,
                pool=pool,
                cpus=server_cpus,
                log=Path(scratch) / f"api-{mode}.log",
                group_commit=mode == "grouped",
            ) as server:
                load = functools.partial(
                    run_transfers,
                    port=port,
                    actors_file=actors_file,
                    connections=args.connections,
                    threads=args.wrk_threads,
                    cpus=generator_cpus,
                )
                load(nonce=new_id("warm"), duration=args.warmup)
                cpu_before, db_before = group_cpu_seconds(server.pid), mariadb_cpu_seconds()
                result = load(nonce=new_id("run"), duration=args.duration)
                api_cpu = group_cpu_seconds(server.pid) - cpu_before
                db_cpu = mariadb_cpu_seconds() - db_before
            done = result.completed or 1
            measured[mode] = (result, 1000 * api_cpu / done, 1000 * db_cpu / done)
            report(f"http ({mode})", result, args.connections)
            print(
                f"http ({mode}): CPU per transfer: API {measured[mode][1]:.2f} ms, "
                f"MariaDB {measured[mode][2]:.2f} ms"
            )
    http, api_cpu_ms, db_cpu_ms = measured[modes[0]]

    floor = run_floor(
        actors,
        args.connections,
        args.warmup,
        args.duration,
        server_cpus,
        batched=args.floor == "batched",
    )
    report(f"floor ({FLOOR_LABELS[args.floor]})", floor, args.connections)

    ratio = http.tps / floor.tps if floor.tps else 0.0
    for mode, (result, _api, _db) in measured.items():
        print(f"ratio: http ({mode})/floor = {result.tps / floor.tps if floor.tps else 0.0:.2f}")
    audit_ok, ledger_transactions, problems = asyncio.run(audit())
    if audit_ok:
        print(f"audit: ok, the ledger balances ({ledger_transactions} ledger transactions)")
    else:
        print("audit: FAILED\n  " + "\n  ".join(problems))
    figures = {
        "benchmark": "transfers",
        "http_tps": round(http.tps, 1),
        "http_p50_ms": round(http.p50_ms, 2),
        "http_p99_ms": round(http.p99_ms, 2),
        "http_errors": http.errors,
        "http_api_cpu_ms": round(api_cpu_ms, 3),
        "http_mariadb_cpu_ms": round(db_cpu_ms, 3),
        "http_mode": modes[0],
        "modes": {
            mode: {
                "tps": round(result.tps, 1),
                "p50_ms": round(result.p50_ms, 2),
                "p99_ms": round(result.p99_ms, 2),
                "errors": result.errors,
                "api_cpu_ms": round(api, 3),
                "mariadb_cpu_ms": round(db, 3),
                "ratio_to_floor": round(result.tps / floor.tps, 3) if floor.tps else 0.0,
            }
            for mode, (result, api, db) in measured.items()
        },
        "floor_tps": round(floor.tps, 1),
        "floor_p50_ms": round(floor.p50_ms, 2),
        "floor_p99_ms": round(floor.p99_ms, 2),
        "floor_errors": floor.errors,
        "floor_mode": args.floor,
        "ratio_to_floor": round(ratio, 3),
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "server_cpus": server_cpus,
        "generator_cpus": generator_cpus,
        "audit_ok": audit_ok,
        "code": code_version(),
    }
    print(json.dumps(figures))
    # Times are only reported; a wrong answer (an error or an unbalanced ledger) fails the run.
    errors = sum(result.errors for result, _api, _db in measured.values())
    return 0 if audit_ok and errors == 0 and floor.errors == 0 else 1


def code_version() -> str:
    """The commit measured, marked `+dirty` when src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{'+dirty' if dirty else ''}"


def mariadb_version() -> str:
    connection = pymysql.connect(host=DB_HOST, port=DB_PORT, user=DB_USER, connect_timeout=3)
    with connection:
        return str(connection.get_server_info()).removeprefix("5.5.5-")


def report(name: str, result: RunResult, connections: int) -> None:
    detail = ", ".join(f"{k}={v}" for k, v in result.error_detail.items()) or "none"
    print(
        f"{name}: {result.tps:,.0f} transfers/s ({result.completed} in the run, "
        f"{connections} clients), p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"errors {result.errors} ({detail})"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process the benchmark started is stopped", file=sys.stderr)
        sys.exit(130)
