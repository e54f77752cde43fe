"""The production shape for `bench/payments.py`: processes, pinning, CPU accounting, setup.

Why a module of its own: every payments scenario needs the same cluster (API, worker, scheduler,
two standalone gateway simulators, MariaDB and Redis, exactly as `tests/e2e/test_processes.py`
starts it), the same users and the same way of reading what happened back from the database.
Each process runs in its own process group, pinned with `taskset`, and is killed with its group
however the benchmark ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import redis

from pixwave.accounts import service as accounts
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.gateways.efi.spec import (
    SANDBOX_CLIENT_ID as SANDBOX_EFI_CLIENT_ID,
)
from pixwave.gateways.efi.spec import (
    SANDBOX_CLIENT_SECRET as SANDBOX_EFI_CLIENT_SECRET,
)
from pixwave.gateways.efi.spec import (
    SANDBOX_WEBHOOK_HMAC as SANDBOX_EFI_WEBHOOK_HMAC,
)
from pixwave.gateways.mercadopago.spec import SANDBOX_ACCESS_TOKEN as SANDBOX_MERCADOPAGO_TOKEN
from pixwave.migrate import upgrade
from pixwave.sandbox.efi import EfiSimConfig
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig
from transfers import Actor, free_port, parse_cpus, pinned, recreate_database
from transfers import audit as shared_audit
from transfers import create_actors as shared_create_actors

ROOT = Path(__file__).resolve().parent.parent
PIXWAVE = ROOT / ".venv" / "bin" / "pixwave"
PYTHON = ROOT / ".venv" / "bin" / "python"
DB_HOST, DB_PORT, DB_USER = "127.0.0.1", 3306, "root"
DATABASE = "pixwave_bench_payments"
#: The API, worker and scheduler get the plain URL (they pick their async driver themselves).
DATABASE_URL = f"mysql://{DB_USER}@{DB_HOST}:{DB_PORT}/{DATABASE}?charset=utf8mb4"
ASYNC_DATABASE_URL = DATABASE_URL.replace("mysql://", "mysql+aiomysql://")
REDIS_DB = 11
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
MP_WEBHOOK_SECRET = MercadoPagoSimConfig().webhook_secret
EFI_PIX_KEY = EfiSimConfig().pix_key
GATEWAYS = ("mercadopago", "efi")
JOB_STREAM, JOB_GROUP = "pixwave:jobs", "pixwave-workers"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: A simulator whose structlog is quiet: `pixwave sandbox` leaves structlog unconfigured, so
#: every request prints a console line (see bench/README.md); the simulators are the harness,
#: not the system under test, and must not spend the shared cores on that.
LAUNCH = "import sys\nfrom pixwave.cli import main\nsys.argv = ['pixwave', *sys.argv[1:]]\nmain()"
#: What-if preludes: the same processes with the QR renderer replaced by one precomputed PNG,
#: to measure what rendering costs (the Efí connector renders in the worker; the Mercado Pago
#: simulator renders on its side, as Mercado Pago does).
_FIXED_PNG = "from pixwave.pix import qr_png_base64 as _render\n_PNG = _render('pixwave')\n"
NO_QR_WORKER = (
    f"{_FIXED_PNG}import pixwave.gateways.efi.connector as _c\n"
    "_c.render_qr_png_base64 = lambda text, **_: _PNG"
)
NO_QR_SIM = (
    f"{_FIXED_PNG}import pixwave.sandbox.mercadopago.service as _s\n"
    "_s.qr_png_base64 = lambda text, **_: _PNG"
)
QUIET_SANDBOX = (
    "from pixwave.observability.logging import configure_logging\n"
    f"configure_logging('warning', json=True)\n{LAUNCH}"
)


@dataclass(frozen=True)
class Layout:
    """Which cpus (a taskset list, or None: anywhere) each kind of process runs on."""

    api: str | None
    worker: str | None
    scheduler: str | None
    sims: str | None
    generator: str | None

    def describe(self) -> str:
        def where(cpus: str | None) -> str:
            return f"cpus {cpus}" if cpus else "any cpu"

        return (
            f"API on {where(self.api)}; worker on {where(self.worker)}; scheduler on "
            f"{where(self.scheduler)}; simulators on {where(self.sims)}; load generator on "
            f"{where(self.generator)}; MariaDB and Redis unpinned"
        )


def default_layout() -> Layout:
    """Everything of the cluster on all cores, the generator on the last one.

    On two cores a static split (API, scheduler and simulators on one, the workers on the
    other) leaves a core idle whenever the work moves between stages: in the charges scenario
    it halved the charges per second against letting the kernel place the cluster's processes
    on both cores (see bench/README.md).
    """
    count = os.cpu_count() or 1
    if count < 2:
        return Layout(None, None, None, None, None)
    every = f"0-{count - 1}"
    return Layout(every, every, every, every, str(count - 1))


# --- state -----------------------------------------------------------------------------------


def recreate_state() -> None:
    """A fresh schema and an empty Redis db: each scenario starts from the same place (and no
    circuit or health window leaks from one scenario into the next)."""
    recreate_database(DATABASE)
    upgrade(ASYNC_DATABASE_URL)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def settings() -> Settings:
    return Settings(_env_file=None, database_url=ASYNC_DATABASE_URL)


async def create_actors(count: int, *, funding: int = 0) -> list[Actor]:
    """Users with a wallet and a token (unfunded unless asked), on the bench database."""
    return await shared_create_actors(count, database_url=ASYNC_DATABASE_URL, funding=funding)


async def create_admin_token() -> str:
    """An operator token, for `PATCH /v1/gateways` (what `pixwave admin create-token --admin`
    does, without a process start)."""
    resources = build_resources(settings(), gateways={})
    try:
        async with resources.sessionmaker() as session, session.begin():
            user_id = await accounts.create_admin(
                session, name="Bench Operator", email="operator@example.com"
            )
            created = await accounts.issue_token(session, user_id=user_id, name="bench")
        assert created.token is not None
        return created.token
    finally:
        await resources.close()


async def audit() -> tuple[bool, int, list[str]]:
    """Every scenario ends here: a fast wrong answer is no answer."""
    return await shared_audit(ASYNC_DATABASE_URL)


def query(sql: str, args: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """One read on the bench database (timings come from the rows the cluster wrote)."""
    connection = pymysql.connect(
        host=DB_HOST, port=DB_PORT, user=DB_USER, database=DATABASE, connect_timeout=3
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")  # columns hold naive UTC
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


# --- CPU accounting --------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def cpu_by_group(groups: Mapping[str, int], services: Sequence[str]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process group, and of named services
    (`mariadbd`, `redis-server`) found by command name. Read twice to get a run's share."""
    by_group = {pgid: name for name, pgid in groups.items()}
    totals = dict.fromkeys([*groups, *services], 0.0)
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is None:
            continue
        ticks = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        name = by_group.get(int(fields[2]))
        if name is not None:
            totals[name] += ticks
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in totals:
            totals[comm] += ticks
    return totals


# --- processes -------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the whole group we started, then SIGKILL it if it lingers (an idle taskiq
        worker may wait for its next message before it notices the signal)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Children of a group leader that exited (uvicorn or worker processes) must go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


@dataclass
class Cluster:
    """The processes of one scenario, started on free ports and always stopped on exit."""

    scratch: Path
    layout: Layout
    api_port: int = field(default_factory=free_port)
    sim_ports: dict[str, int] = field(
        default_factory=lambda: {name: free_port() for name in GATEWAYS}
    )
    processes: dict[str, Process] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def sim_url(self, gateway: str) -> str:
        return f"http://127.0.0.1:{self.sim_ports[gateway]}"

    def env(self, **overrides: str) -> dict[str, str]:
        """The exact environment the e2e test gives a full cluster against standalone
        simulators, with production timings (only the log level is lowered)."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("DB_", "DATABASE_", "REDIS_", "MERCADOPAGO_", "GERENCIANET_", "EFI_", "SANDBOX_")
            )
        }
        base.update(
            {
                "DATABASE_URL": DATABASE_URL,
                "REDIS_URL": REDIS_URL,
                "APP_URL": self.api_url,
                "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
                "SANDBOX_GATEWAYS": "false",
                # All the load comes from one address, far over any per-address limit.
                "RATE_LIMIT_ENABLED": os.environ.get("RATE_LIMIT_ENABLED", "false"),
                "MERCADOPAGO_ACCESS_TOKEN": SANDBOX_MERCADOPAGO_TOKEN,
                "MERCADOPAGO_BASE_URL": self.sim_url("mercadopago"),
                "MERCADOPAGO_WEBHOOK_SECRET": MP_WEBHOOK_SECRET,
                "MERCADOPAGO_PAYOUTS_ENABLED": "true",
                "GERENCIANET_CLIENT_ID": SANDBOX_EFI_CLIENT_ID,
                "GERENCIANET_CLIENT_SECRET": SANDBOX_EFI_CLIENT_SECRET,
                "GERENCIANET_PIX_KEY": EFI_PIX_KEY,
                "EFI_BASE_URL": self.sim_url("efi"),
                "EFI_WEBHOOK_HMAC": SANDBOX_EFI_WEBHOOK_HMAC,
                "EFI_WEBHOOK_ALLOWED_IPS": "127.0.0.1",
                "EFI_WEBHOOK_MTLS_HEADER": "",
                **self.extra_env,
                **overrides,
            }
        )
        return base

    def start(
        self, name: str, command: list[str], cpus: str | None, env: Mapping[str, str]
    ) -> Process:
        log = self.scratch / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                pinned(command, cpus),
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes[name] = process
        return process

    def start_sims(self, *, quiet: bool = True, prelude: str = "") -> None:
        """Both simulators standalone (refusable ports), fast webhook retries and settling."""
        for gateway in GATEWAYS:
            args = [
                "sandbox", gateway, "--port", str(self.sim_ports[gateway]),
                "--time-scale", "0.001", "--log-level", "warning",
            ]  # fmt: skip
            if gateway == "efi":
                args += [
                    "--webhook-url",
                    f"{self.api_url}/webhooks/efi?hmac={SANDBOX_EFI_WEBHOOK_HMAC}&ignorar=",
                ]
            if quiet or prelude:
                launch = f"{prelude}\n{QUIET_SANDBOX if quiet else LAUNCH}"
                command = [str(PYTHON), "-c", launch, *args]
            else:
                command = [str(PIXWAVE), *args]
            process = self.start(f"sim-{gateway}", command, self.layout.sims, self.env())
            wait_http(f"{self.sim_url(gateway)}/_sandbox", process)

    def start_api(self, *, workers: int, **env: str) -> None:
        command = [str(PIXWAVE), "api", "--port", str(self.api_port), "--workers", str(workers)]
        process = self.start("api", command, self.layout.api, self.env(**env))
        wait_http(f"{self.api_url}/healthz", process)

    def start_workers(
        self, *, processes: int, concurrency: int, prelude: str | None = None, **env: str
    ) -> None:
        """``processes`` × `pixwave worker --processes 1`, each its own group (what several
        worker containers are); ``prelude`` is Python run first in each (a what-if patch)."""
        args = ["worker", "--processes", "1", "--concurrency", str(concurrency)]
        command = [str(PIXWAVE), *args]
        if prelude is not None:
            command = [str(PYTHON), "-c", f"{prelude}\n{LAUNCH}", *args]
        started = [
            self.start(f"worker-{n}", command, self.layout.worker, self.env(**env))
            for n in range(1, processes + 1)
        ]
        wait_consumers(len(started), started[-1])

    def start_scheduler(self, **env: str) -> None:
        self.start("scheduler", [str(PIXWAVE), "scheduler"], self.layout.scheduler, self.env(**env))

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.stop()

    def stop_all(self) -> None:
        """SIGTERM every group at once, SIGKILL what is left after 5 s; Ctrl-C cannot cut
        this short (a second one would leave processes behind)."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            processes = list(self.processes.values())
            self.processes.clear()
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            for process in processes:
                process.stop(timeout=0)
        finally:
            signal.signal(signal.SIGINT, previous)

    def cpu(self) -> dict[str, float]:
        groups = {name: p.popen.pid for name, p in self.processes.items()}
        return cpu_by_group(groups, ("mariadbd", "redis-server"))


@contextlib.contextmanager
def cluster(scratch: Path, layout: Layout, **extra_env: str) -> Iterator[Cluster]:
    """A cluster that is torn down however the block is left (error, Ctrl-C)."""
    scratch.mkdir(parents=True, exist_ok=True)
    running = Cluster(scratch=scratch, layout=layout, extra_env=dict(extra_env))
    try:
        yield running
    finally:
        running.stop_all()


def wait_http(url: str, process: Process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-4000:]}")
        # An http:// URL we built ourselves.
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310
        ):
            if response.status < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url}:\n{process.log.read_text()[-4000:]}")


def wait_consumers(expected: int, process: Process, seconds: float = 30) -> None:
    """Workers are ready once ``expected`` connections on our Redis db are blocked reading
    the jobs stream (a consumer joins the group only when it first receives a message)."""
    client = redis_client()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-4000:]}")
            readers = [
                c
                for c in client.client_list()
                if int(c.get("db", -1)) == REDIS_DB and c.get("cmd") == "xreadgroup"
            ]
            if len(readers) >= expected:
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"{process.name} did not read {JOB_STREAM}:\n{process.log.read_text()}")


def queued_jobs() -> int:
    """Jobs in the stream not yet handed to any worker."""
    client = redis_client()
    try:
        groups = client.xinfo_groups(JOB_STREAM)
    except redis.ResponseError:
        return 0
    finally:
        client.close()
    for group in groups:
        if group["name"] in (JOB_GROUP, JOB_GROUP.encode()):
            return int(group.get("lag") or 0)
    return 0


def affinity(cpus: str | None) -> None:
    """Pin the calling process (the load generator's own process)."""
    if cpus:
        os.sched_setaffinity(0, parse_cpus(cpus))


_ID = re.compile(r"^txn_[0-9A-Z]{26}$")


def is_transaction_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


class CpuSampler:
    """Samples every process's CPU time twice a second in a thread, so a run's share can be
    cut to exactly the measured window the load generator reports afterwards."""

    def __init__(self, running: Cluster, every: float = 0.25) -> None:
        self.cluster = running
        self.every = every
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), self.cluster.cpu()))
            if self._stop.wait(self.every):
                self.samples.append((time.time(), self.cluster.cpu()))
                return

    def between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each process spent between two wall-clock times (nearest samples)."""
        if not self.samples:
            return {}
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        last = min(self.samples, key=lambda s: abs(s[0] - end))
        return {name: last[1].get(name, 0.0) - first[1].get(name, 0.0) for name in last[1]}
