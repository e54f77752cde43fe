"""A private production-shaped cluster: its own MariaDB and Redis, the API, workers, the
scheduler and both gateway simulators standalone, every process in its own group.

Nothing here touches the shared servers on 3306/6379: the data stores are started from
scratch in a temporary directory on free ports, so SIGSTOP, SIGKILL and restarts hit only
them. Everything started is killed when the cluster's `with` block is left, whatever the
reason (an assertion, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

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
from pixwave.sandbox.efi import EfiSimConfig
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig
from tests.support import free_listening_port, free_port

ROOT = Path(__file__).resolve().parents[2]
PIXWAVE = str(ROOT / ".venv" / "bin" / "pixwave")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GATEWAYS = ("mercadopago", "efi")
MP_WEBHOOK_SECRET = MercadoPagoSimConfig().webhook_secret
EFI_WEBHOOK_HMAC = SANDBOX_EFI_WEBHOOK_HMAC
DATABASE = "pixwave_chaos"
#: `pixwave sandbox` leaves structlog unconfigured (a console line per request): quiet it.
QUIET_SANDBOX = (
    "import sys\nfrom pixwave.observability.logging import configure_logging\n"
    "configure_logging('warning', json=True)\nfrom pixwave.cli import main\n"
    "sys.argv = ['pixwave', *sys.argv[1:]]\nmain()"
)

#: The engine's timings shortened so that a fault's effects play out within seconds; every
#: name is a documented setting (docs/operations.md). The limits are off: the load is not
#: about them.
FAST_TIMINGS: dict[str, str] = {
    "PAYMENT_LEASE_SECONDS": "3",
    "JOB_REDELIVERY_SECONDS": "4",
    "SWEEP_INTERVAL_SECONDS": "0.5",
    "RETRY_BASE_DELAY": "0.05",
    "RETRY_MAX_DELAY": "1",
    "RETRY_MAX_RETRY_AFTER": "2",
    "AMBIGUOUS_QUERY_DELAY": "0.2",
    "GATEWAY_READ_TIMEOUT": "1.5",
    "GATEWAY_CONNECT_TIMEOUT": "1",
    "CHARGE_POLL_SECONDS": "2",
    "CHARGE_POLL_MAX_SECONDS": "4",
    "SEND_POLL_SECONDS": "0.5",
    "CIRCUIT_OPEN_SECONDS": "3",
    "PROBE_INTERVAL_SECONDS": "1",
    "INBOX_RETRY_SECONDS": "1",
    "WORKER_CONCURRENCY": "30",
    "DB_POOL_TIMEOUT": "5",
    "LIMIT_PER_TRANSACTION": "none",
    "LIMIT_DAILY": "none",
    "LIMIT_NIGHTTIME": "none",
    "RATE_LIMIT_ENABLED": "false",
    # Fees that make the cheaper gateway depend on the amount (Mercado Pago below R$ 150,
    # Efí above; sends: R$ 40), so that both gateways carry the steady load.
    "MERCADOPAGO_FEES": "charge=0+100bp,send=0+300bp",
    "EFI_FEES": "charge=150,send=120",
}


class MissingBinary(RuntimeError):
    """A server binary the harness needs is not installed."""


def binary(name: str, *candidates: str) -> str:
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found:
            return found
    raise MissingBinary(f"{name} is not installed (apt-get install -y mariadb-server redis-server)")


def _distinct_ports(names: tuple[str, ...] | list[str]) -> dict[str, int]:
    """A listening port per name, never the same twice (each is free only when picked)."""
    ports: dict[str, int] = {}
    for name in names:
        port = free_listening_port()
        while port in ports.values():
            port = free_listening_port()
        ports[name] = port
    return ports


@dataclass
class Process:
    """One process group we started; ``log`` collects stdout and stderr of every start."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group (a crash: nothing runs its shutdown)."""
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``timeout``."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.kill()

    def pids(self) -> list[int]:
        """Every live process of the group (uvicorn's children, worker children)."""
        if self.popen is None:
            return []
        group = self.popen.pid
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rfind(")") + 2 :].split()
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(entry.name))
        return found

    def rss_kib(self) -> int:
        """Resident memory of the whole group, KiB."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total


def wait_until(check: Callable[[], object], seconds: float, every: float = 0.1) -> bool:
    """Poll ``check`` until it is truthy (an exception counts as not yet) or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return True
        time.sleep(every)
    return False


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@dataclass
class Cluster:
    """Every process of one run. Start with :func:`running`."""

    workdir: Path
    api_processes: int = 1
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    db_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    # Below the ephemeral range: a refuse outage closes a simulator's port, and the kernel
    # could hand an ephemeral one to an outgoing connection meanwhile (seen: the port never
    # came back in time for the checker's read).
    sim_ports: dict[str, int] = field(default_factory=lambda: _distinct_ports(GATEWAYS))
    processes: dict[str, Process] = field(default_factory=dict)

    # --- addresses ----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def sim_url(self, gateway: str) -> str:
        return f"http://127.0.0.1:{self.sim_ports[gateway]}"

    @property
    def database_url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.db_port}/{DATABASE}?charset=utf8mb4"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("DB_", "DATABASE_", "REDIS_", "MERCADOPAGO_", "GERENCIANET_", "EFI_", "AWS_",
                 "SANDBOX_", "LIMIT_", "RATE_LIMIT")
            )
            and k not in ("QUEUE_CONNECTION", "APP_ENV")
        }  # fmt: skip
        base.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "APP_URL": self.api_url,
                "LOG_LEVEL": "info",
                "LOG_FORMAT": "json",
                "METRICS_ENABLED": "false",
                "SANDBOX_GATEWAYS": "false",
                "MERCADOPAGO_ACCESS_TOKEN": SANDBOX_MERCADOPAGO_TOKEN,
                "MERCADOPAGO_BASE_URL": self.sim_url("mercadopago"),
                "MERCADOPAGO_WEBHOOK_SECRET": MP_WEBHOOK_SECRET,
                "MERCADOPAGO_PAYOUTS_ENABLED": "true",
                "GERENCIANET_CLIENT_ID": SANDBOX_EFI_CLIENT_ID,
                "GERENCIANET_CLIENT_SECRET": SANDBOX_EFI_CLIENT_SECRET,
                "GERENCIANET_PIX_KEY": EfiSimConfig().pix_key,
                "EFI_BASE_URL": self.sim_url("efi"),
                "EFI_WEBHOOK_HMAC": EFI_WEBHOOK_HMAC,
                "EFI_WEBHOOK_ALLOWED_IPS": "127.0.0.1",
                "EFI_WEBHOOK_MTLS_HEADER": "",
                **FAST_TIMINGS,
                **self.extra_env,
            }
        )
        return base

    def _process(self, name: str, command: list[str], env: Mapping[str, str]) -> Process:
        process = Process(name, command, dict(env), self.workdir / f"{name}.log")
        self.processes[name] = process
        return process

    # --- data stores --------------------------------------------------------------------------
    def start_mariadb(self) -> None:
        install = binary("mariadb-install-db", "mysql_install_db")
        server = binary("mariadbd", "/usr/sbin/mariadbd", "/usr/sbin/mysqld")
        datadir = self.workdir / "mariadb"
        if not datadir.exists():
            subprocess.run(
                [install, "--no-defaults", f"--datadir={datadir}", "--skip-test-db",
                 "--auth-root-authentication-method=normal", f"--user={_user()}"],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        command = [
            server, "--no-defaults", f"--datadir={datadir}", f"--port={self.db_port}",
            "--bind-address=127.0.0.1", f"--socket={self.workdir / 'mariadb.sock'}",
            f"--pid-file={self.workdir / 'mariadb.pid'}", f"--user={_user()}",
            "--skip-grant-tables", "--innodb-buffer-pool-size=256M", "--max-connections=1000",
            "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin", "--wait-timeout=600",
        ]  # fmt: skip
        process = self.processes.get("mariadb") or self._process("mariadb", command, os.environ)
        process.start()
        if not wait_until(lambda: _mysql_ping(self.db_port), 60, every=0.2):
            raise RuntimeError(f"MariaDB did not start:\n{process.log.read_text()[-3000:]}")

    def restart_mariadb(self) -> float:
        """A clean restart (every connection dropped, the data kept): seconds it was away."""
        began = time.monotonic()
        self.processes["mariadb"].stop(timeout=60)
        self.start_mariadb()
        return time.monotonic() - began

    def start_redis(self) -> None:
        server = binary("redis-server")
        command = [
            server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        process = self.processes.get("redis") or self._process("redis", command, os.environ)
        process.start()
        if not wait_until(lambda: _redis_ping(self.redis_port), 30, every=0.1):
            raise RuntimeError(f"Redis did not start:\n{process.log.read_text()[-3000:]}")

    def restart_redis(self) -> float:
        """SIGKILL and start again, empty (no persistence): its whole state is lost."""
        began = time.monotonic()
        self.processes["redis"].kill()
        self.start_redis()
        return time.monotonic() - began

    # --- PixWave ------------------------------------------------------------------------------
    def migrate(self) -> None:
        _mysql(self.db_port, f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        done = self.run("migrate")
        if done.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PIXWAVE, *args], cwd=ROOT, env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def start_sims(self) -> None:
        for gateway in GATEWAYS:
            args = [
                "sandbox", gateway, "--port", str(self.sim_ports[gateway]),
                "--time-scale", "0.001", "--log-level", "warning",
            ]  # fmt: skip
            if gateway == "efi":
                args += [
                    "--webhook-url",
                    f"{self.api_url}/webhooks/efi?hmac={EFI_WEBHOOK_HMAC}&ignorar=",
                ]
            process = self._process(
                f"sim-{gateway}", [PYTHON, "-c", QUIET_SANDBOX, *args], self.env()
            )
            process.start()
            if not wait_until(partial(answers, f"{self.sim_url(gateway)}/_sandbox"), 30):
                raise RuntimeError(f"{gateway} simulator did not start:\n{process.log.read_text()}")
            httpx.patch(
                f"{self.sim_url(gateway)}/_sandbox/config", json={"settle_delay_seconds": 0.3}
            ).raise_for_status()

    def start_api(self) -> None:
        name = "api"
        if name not in self.processes:
            command = [PIXWAVE, "api", "--port", str(self.api_port),
                       "--workers", str(self.api_processes)]  # fmt: skip
            self._process(name, command, self.env())
        self.processes[name].start()
        self.wait_api()

    def wait_api(self, seconds: float = 60) -> None:
        if not wait_until(lambda: answers(f"{self.api_url}/healthz"), seconds):
            log = self.processes["api"].log.read_text()[-3000:]
            raise RuntimeError(f"the API did not start:\n{log}")

    def worker_names(self) -> list[str]:
        return [f"worker-{n}" for n in range(1, self.workers + 1)]

    def start_worker(self, name: str) -> None:
        if name not in self.processes:
            command = [PIXWAVE, "worker", "--processes", "1"]
            self._process(name, command, self.env())
        process = self.processes[name]
        process.start()
        started = process.starts
        if not wait_until(lambda: process.log.read_text().count('"worker.started"') >= started, 30):
            raise RuntimeError(f"{name} did not start:\n{process.log.read_text()[-3000:]}")

    def start_scheduler(self) -> None:
        if "scheduler" not in self.processes:
            self._process("scheduler", [PIXWAVE, "scheduler"], self.env())
        self.processes["scheduler"].start()

    def start(self) -> None:
        self.start_mariadb()
        self.start_redis()
        self.migrate()
        self.start_sims()
        self.start_api()
        for name in self.worker_names():
            self.start_worker(name)
        self.start_scheduler()

    def restart(self, name: str) -> None:
        """Start a process again after a kill (API: and wait until it answers)."""
        if name == "api":
            self.start_api()
        elif name == "scheduler":
            self.start_scheduler()
        elif name.startswith("worker-"):
            self.start_worker(name)
        elif name.startswith("sim-"):
            self.processes[name].start()
            gateway = name.removeprefix("sim-")
            wait_until(partial(answers, f"{self.sim_url(gateway)}/_sandbox"), 30)
        else:
            raise ValueError(name)

    def pixwave_processes(self) -> dict[str, Process]:
        return {n: p for n, p in self.processes.items() if n not in ("mariadb", "redis")}

    def stop_all(self) -> None:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for process in self.processes.values():
                process.signal_group(signal.SIGCONT)  # a stalled server must be able to exit
            order = [n for n in self.processes if n not in ("mariadb", "redis")]
            for name in order:
                self.processes[name].signal_group(signal.SIGTERM)
            deadline = time.monotonic() + 5
            for name in order:
                popen = self.processes[name].popen
                if popen is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        popen.wait(timeout=max(0.0, deadline - time.monotonic()))
                self.processes[name].kill()
            for name in ("redis", "mariadb"):
                if name in self.processes:
                    self.processes[name].stop(timeout=20)
        finally:
            signal.signal(signal.SIGINT, previous)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _mysql(port: int, sql: str) -> None:
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2)
    with connection, connection.cursor() as cursor:
        cursor.execute(sql)


def _mysql_ping(port: int) -> bool:
    _mysql(port, "SELECT 1")
    return True


def _redis_ping(port: int) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


@contextlib.contextmanager
def running(workdir: Path, **options: object) -> Iterator[Cluster]:
    """A started cluster, torn down however the block is left."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir=workdir, **options)  # type: ignore[arg-type]
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()
