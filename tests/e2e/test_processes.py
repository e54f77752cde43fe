"""The production shape, as separate processes: API, worker, scheduler and both simulators.

Everything talks over real sockets: MariaDB, the jobs on Redis streams or on SQS (moto's, over
HTTP: every scenario runs on both brokers), HTTP between the API/worker and the simulators,
and the simulators' webhooks back into the API. `pixwave audit` runs after each scenario.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

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
from tests.aws import CREDENTIALS, REGION
from tests.conftest import mariadb_url, recreate_mariadb_database
from tests.support import PIXWAVE, free_port

E2E_DATABASE = os.environ.get("TEST_E2E_DATABASE", "pixwave_e2e")
E2E_REDIS = os.environ.get("TEST_E2E_REDIS_URL", "redis://127.0.0.1:6379/13")
BOTO_CREDENTIALS = {name.lower(): value for name, value in CREDENTIALS.items()}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Cluster:
    workdir: Path
    env: dict[str, str]
    api_url: str
    sims: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, *args: str, ready_url: str | None = None) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [PIXWAVE, *args], cwd=self.workdir, env=self.env, stdout=out, stderr=out
            )
        process = Process(name, popen, log)
        self.processes[name] = process
        if ready_url is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if popen.poll() is not None:
                    pytest.fail(f"{name} exited:\n{log.read_text()}")
                try:
                    if httpx.get(ready_url, timeout=1).status_code < 500:
                        return process
                except httpx.TransportError:
                    time.sleep(0.1)
            pytest.fail(f"{name} did not start:\n{log.read_text()}")
        return process

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PIXWAVE, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def sqs_queue(endpoint: str) -> dict[str, str]:
    """A fresh job queue on the emulator, and the settings that point the processes at it."""
    import boto3

    client = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **BOTO_CREDENTIALS)
    url = client.create_queue(QueueName=f"pixwave-e2e-{time.monotonic_ns()}")["QueueUrl"]
    return {
        "QUEUE_CONNECTION": "sqs",
        "AWS_SQS_QUEUE": url,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
    }


@pytest.fixture(scope="module", params=["redis", "sqs"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Cluster]:
    del redis_url  # only to fail/skip loudly when Redis is missing
    recreate_mariadb_database(E2E_DATABASE)
    workdir = tmp_path_factory.mktemp("e2e")
    api_port, mp_port, efi_port = free_port(), free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DB_", "DATABASE_", "REDIS_", "MERCADOPAGO_", "GERENCIANET_", "EFI_", "AWS_")
        )
        and k != "QUEUE_CONNECTION"
    }
    if request.param == "sqs":
        env.update(sqs_queue(request.getfixturevalue("aws_endpoint")))
    env.update(
        {
            "DATABASE_URL": mariadb_url(E2E_DATABASE).replace("+aiomysql", ""),
            "REDIS_URL": E2E_REDIS,
            "APP_URL": api,
            "LOG_LEVEL": "info",
            "SANDBOX_GATEWAYS": "false",
            "MERCADOPAGO_ACCESS_TOKEN": SANDBOX_MERCADOPAGO_TOKEN,
            "MERCADOPAGO_BASE_URL": f"http://127.0.0.1:{mp_port}",
            "MERCADOPAGO_WEBHOOK_SECRET": MercadoPagoSimConfig().webhook_secret,
            "MERCADOPAGO_PAYOUTS_ENABLED": "true",
            "GERENCIANET_CLIENT_ID": SANDBOX_EFI_CLIENT_ID,
            "GERENCIANET_CLIENT_SECRET": SANDBOX_EFI_CLIENT_SECRET,
            "GERENCIANET_PIX_KEY": EfiSimConfig().pix_key,
            "EFI_BASE_URL": f"http://127.0.0.1:{efi_port}",
            "EFI_WEBHOOK_HMAC": SANDBOX_EFI_WEBHOOK_HMAC,
            "EFI_WEBHOOK_ALLOWED_IPS": "127.0.0.1",
            "EFI_WEBHOOK_MTLS_HEADER": "",
            "PAYMENT_LEASE_SECONDS": "2",
            "JOB_REDELIVERY_SECONDS": "3",
            "SWEEP_INTERVAL_SECONDS": "0.2",
            "RETRY_BASE_DELAY": "0.05",
            "AMBIGUOUS_QUERY_DELAY": "0.1",
            "GATEWAY_READ_TIMEOUT": "1",
            "CHARGE_POLL_SECONDS": "1",
            "CHARGE_POLL_MAX_SECONDS": "2",
            "SEND_POLL_SECONDS": "0.5",
            "WORKER_CONCURRENCY": "20",
        }
    )
    redis_flush(E2E_REDIS)
    sims = {"mercadopago": f"http://127.0.0.1:{mp_port}", "efi": f"http://127.0.0.1:{efi_port}"}
    c = Cluster(workdir, env, api, sims)
    try:
        c.start("mercadopago", "sandbox", "mercadopago", "--port", str(mp_port),
                "--time-scale", "0.001", ready_url=f"{sims['mercadopago']}/_sandbox")  # fmt: skip
        c.start("efi", "sandbox", "efi", "--port", str(efi_port), "--time-scale", "0.001",
                "--webhook-url", f"{api}/webhooks/efi?hmac={SANDBOX_EFI_WEBHOOK_HMAC}&ignorar=",
                ready_url=f"{sims['efi']}/_sandbox")  # fmt: skip
        for sim in sims.values():
            httpx.patch(f"{sim}/_sandbox/config", json={"settle_delay_seconds": 0.2})
        migrated = c.run("migrate")
        assert migrated.returncode == 0, migrated.stderr
        c.start("api", "api", "--port", str(api_port), ready_url=f"{api}/healthz")
        c.start("worker", "worker", "--processes", "1")
        c.start("scheduler", "scheduler")
        yield c
    finally:
        c.stop_all()


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@dataclass
class User:
    token: str
    wallet_id: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        import uuid

        return {
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": key or str(uuid.uuid4()),
        }


def admin_token(cluster: Cluster) -> str:
    result = cluster.run("admin", "create-token", "--admin")
    match = re.search(r"pxw_[A-Za-z0-9_-]{20,}", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    return match.group(0)


def new_user(cluster: Cluster, admin: str, *, balance: int = 0) -> User:
    import random

    from pixwave.pix import generate_cpf

    with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {admin}"}
        n = random.randrange(10**9)
        user = http.post(
            "/v1/users",
            json={"name": f"E2E {n}", "email": f"e2e{n}@example.com",
                  "document": generate_cpf(random.Random(n))},
            headers={**auth, "Idempotency-Key": f"user-{n}"},
        ).json()  # fmt: skip
        token = http.post(
            f"/v1/users/{user['id']}/tokens", json={}, headers={**auth, "Idempotency-Key": f"t{n}"}
        ).json()["token"]
        if balance:
            http.post(
                "/v1/admin/adjustments",
                json={"wallet_id": user["wallet_id"], "direction": "credit", "amount": balance,
                      "reason": "e2e funding"},
                headers={**auth, "Idempotency-Key": f"fund-{n}"},
            ).raise_for_status()  # fmt: skip
    return User(token, user["wallet_id"])


def wait_status(
    cluster: Cluster, user: User, transaction_id: str, *statuses: str, seconds: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
        while True:
            current: dict[str, Any] = http.get(
                f"/v1/transactions/{transaction_id}", headers=user.headers()
            ).json()
            if current["status"] in statuses:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"still {current['status']}: {current}")
            time.sleep(0.1)


def audit(cluster: Cluster) -> None:
    result = cluster.run("audit")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> str:
    return admin_token(cluster)


class TestAcrossProcesses:
    def test_deposit_paid_via_webhook_on_each_gateway(self, cluster: Cluster, admin: str) -> None:
        """API → Redis → worker → simulator; payer pays; webhook → API → worker credits."""
        user = new_user(cluster, admin)
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            try:
                for gateway in ("mercadopago", "efi"):
                    other = "efi" if gateway == "mercadopago" else "mercadopago"
                    http.patch(
                        f"/v1/gateways/{other}", json={"enabled": False}, headers=auth
                    ).raise_for_status()
                    http.patch(
                        f"/v1/gateways/{gateway}", json={"enabled": True}, headers=auth
                    ).raise_for_status()
                    created = http.post(
                        "/v1/deposits", json={"amount": 77_00}, headers=user.headers()
                    ).json()
                    ready = wait_status(cluster, user, created["id"], "awaiting_payment")
                    assert ready["gateway"] == gateway
                    paid = httpx.post(
                        f"{cluster.sims[gateway]}/_sandbox/pay", json={"brcode": ready["brcode"]}
                    )
                    assert paid.status_code == 200, paid.text
                    wait_status(cluster, user, created["id"], "succeeded")
            finally:  # a failure here must not leave a gateway off for the next test
                for gateway in ("mercadopago", "efi"):
                    http.patch(
                        f"/v1/gateways/{gateway}", json={"enabled": True}, headers=auth
                    ).raise_for_status()
            assert http.get("/v1/wallet", headers=user.headers()).json()["posted"] == 154_00
        audit(cluster)

    def test_worker_killed_mid_withdrawal_completes_once(
        self, cluster: Cluster, admin: str
    ) -> None:
        """SIGKILL while the send is in flight: a new worker asks first, and one Pix leaves."""
        user = new_user(cluster, admin, balance=50_00)
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            http.patch("/v1/gateways/mercadopago", json={"enabled": False}, headers=auth)
            try:
                httpx.put(
                    f"{cluster.sims['efi']}/_sandbox/faults/send.put",
                    json={"latency": {"fixed_ms": 1500}},
                ).raise_for_status()
                before = httpx.get(f"{cluster.sims['efi']}/_sandbox").json()["resources"]["sends"]
                created = http.post(
                    "/v1/withdrawals",
                    json={"amount": 20_00, "pix_key": "pix@bcb.gov.br"},
                    headers=user.headers(),
                ).json()
                wait_status(cluster, user, created["id"], "processing", seconds=10)
                time.sleep(0.3)  # the send is now waiting inside the simulator
                cluster.processes["worker"].stop(signal.SIGKILL)
                httpx.delete(f"{cluster.sims['efi']}/_sandbox/faults")
                cluster.start("worker-2", "worker", "--processes", "1")
                done = wait_status(cluster, user, created["id"], "succeeded", "failed", seconds=30)
            finally:
                httpx.delete(f"{cluster.sims['efi']}/_sandbox/faults")
                http.patch("/v1/gateways/mercadopago", json={"enabled": True}, headers=auth)
        assert done["status"] == "succeeded", done
        after = httpx.get(f"{cluster.sims['efi']}/_sandbox").json()["resources"]["sends"]
        assert after - before == 1
        # The killed worker's try is on record, its outcome unknown to it; the next one asked.
        sends = [
            (a["try_number"], a["outcome"]) for a in done["attempts"] if a["operation"] == "send"
        ]
        assert sends[0] == (1, "ambiguous"), done["attempts"]
        assert any(a["operation"] == "query" for a in done["attempts"]), done["attempts"]
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            wallet = http.get("/v1/wallet", headers=user.headers()).json()
        assert (wallet["posted"], wallet["held"]) == (30_00, 0)
        audit(cluster)

    def test_reconcile_command_reports(self, cluster: Cluster) -> None:
        """`pixwave reconcile --json` runs by hand and says what it examined."""
        result = cluster.run("reconcile", "--json")
        assert result.returncode == 0, result.stderr
        assert '"examined"' in result.stdout

    def test_process_then_timeout_sends_exactly_one_pix(self, cluster: Cluster, admin: str) -> None:
        """Efí processes the send and never answers: the worker asks, and one Pix leaves."""
        user = new_user(cluster, admin, balance=30_00)
        auth = {"Authorization": f"Bearer {admin}"}
        efi = cluster.sims["efi"]
        before = httpx.get(f"{efi}/_sandbox").json()["resources"]["sends"]
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            http.patch("/v1/gateways/mercadopago", json={"enabled": False}, headers=auth)
            httpx.put(
                f"{efi}/_sandbox/faults/send.put", json={"timeout_rate": 1, "hang_seconds": 5}
            ).raise_for_status()
            try:
                created = http.post(
                    "/v1/withdrawals",
                    json={"amount": 12_00, "pix_key": "+5511987654321"},
                    headers=user.headers(),
                ).json()
                done = wait_status(cluster, user, created["id"], "succeeded", "failed")
            finally:
                httpx.delete(f"{efi}/_sandbox/faults")
                http.patch("/v1/gateways/mercadopago", json={"enabled": True}, headers=auth)
        assert done["status"] == "succeeded", done
        assert [a["outcome"] for a in done["attempts"] if a["operation"] == "send"] == ["ambiguous"]
        assert httpx.get(f"{efi}/_sandbox").json()["resources"]["sends"] - before == 1
        audit(cluster)

    def test_all_gateways_down_fails_and_releases_the_hold(
        self, cluster: Cluster, admin: str
    ) -> None:
        """Both simulators refusing: the withdrawal fails, the hold is released."""
        user = new_user(cluster, admin, balance=15_00)
        for sim in cluster.sims.values():
            httpx.put(f"{sim}/_sandbox/faults/*", json={"outage": "503"}).raise_for_status()
        try:
            with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
                created = http.post(
                    "/v1/withdrawals",
                    json={"amount": 15_00, "pix_key": "pix@bcb.gov.br"},
                    headers=user.headers(),
                ).json()
                failed = wait_status(cluster, user, created["id"], "failed")
                wallet = http.get("/v1/wallet", headers=user.headers()).json()
        finally:
            for sim in cluster.sims.values():
                httpx.delete(f"{sim}/_sandbox/faults")
        assert failed["failure_code"] == "all_gateways_unavailable"
        assert (wallet["posted"], wallet["held"], wallet["available"]) == (15_00, 0, 15_00)
        audit(cluster)

    def test_partial_and_full_refund(self, cluster: Cluster, admin: str) -> None:
        """A received deposit refunded in two parts through the gateway that received it."""
        user = new_user(cluster, admin)
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            created = http.post(
                "/v1/deposits", json={"amount": 40_00}, headers=user.headers()
            ).json()
            ready = wait_status(cluster, user, created["id"], "awaiting_payment")
            httpx.post(
                f"{cluster.sims[ready['gateway']]}/_sandbox/pay", json={"brcode": ready["brcode"]}
            ).raise_for_status()
            wait_status(cluster, user, created["id"], "succeeded")
            for amount, parent_status in ((15_00, "partially_refunded"), (None, "refunded")):
                body = {} if amount is None else {"amount": amount}
                refund = http.post(
                    f"/v1/transactions/{created['id']}/refunds", json=body, headers=user.headers()
                ).json()
                assert refund["gateway"] == ready["gateway"]
                wait_status(cluster, user, refund["id"], "succeeded")
                wait_status(cluster, user, created["id"], parent_status)
            assert http.get("/v1/wallet", headers=user.headers()).json()["posted"] == 0
        audit(cluster)


class TestRevocationAcrossApiProcesses:
    """Two API processes, each with its token cache (30 s): a revocation made through one of
    them, or through the CLI, is refused by the other at once."""

    @staticmethod
    def refused_soon(base: str, user: User, seconds: float = 1.0) -> bool:
        """True once ``base`` answers 401 for the user's token — within a second, where a
        cache left alone would keep saying 200 for TOKEN_CACHE_SECONDS."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if httpx.get(f"{base}/v1/wallet", headers=user.headers(), timeout=5).status_code == 401:
                return True
            time.sleep(0.02)
        return False

    def test_a_revocation_and_a_deactivation_reach_the_other_process(
        self, cluster: Cluster, admin: str
    ) -> None:
        port = free_port()
        second = f"http://127.0.0.1:{port}"
        cluster.start("api2", "api", "--port", str(port), ready_url=f"{second}/healthz")
        try:
            ana, bia = new_user(cluster, admin), new_user(cluster, admin)
            for base in (cluster.api_url, second):  # both processes cache both tokens
                for user in (ana, bia):
                    wallet = httpx.get(f"{base}/v1/wallet", headers=user.headers(), timeout=5)
                    assert wallet.status_code == 200

            with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
                me = http.get("/v1/me", headers=ana.headers()).json()
                [token] = http.get(f"/v1/users/{me['id']}/tokens", headers=ana.headers()).json()[
                    "data"
                ]
                revoked = http.delete(
                    f"/v1/users/{me['id']}/tokens/{token['id']}", headers=ana.headers()
                )
                assert revoked.status_code == 200, revoked.text
            assert self.refused_soon(second, ana)

            bia_id = httpx.get(f"{second}/v1/me", headers=bia.headers(), timeout=5).json()["id"]
            result = cluster.run("admin", "deactivate-user", bia_id)
            assert result.returncode == 0, result.stderr
            assert self.refused_soon(second, bia)
            assert self.refused_soon(cluster.api_url, bia)
        finally:
            cluster.processes.pop("api2").stop()


def running_workers(cluster: Cluster) -> list[Process]:
    return [
        process
        for name, process in cluster.processes.items()
        if name.startswith("worker") and process.popen.poll() is None
    ]


def listening(process: Process, processes: int = 1) -> Process:
    """``process`` once each of its worker processes is listening (signals handled)."""
    deadline = time.monotonic() + 30
    while process.log.read_text().count('"message":"worker.started"') < processes:
        if process.popen.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{process.name} did not start:\n{process.log.read_text()}")
        time.sleep(0.1)
    return process


def start_worker(cluster: Cluster, name: str, processes: int = 1) -> Process:
    return listening(cluster.start(name, "worker", "--processes", str(processes)), processes)


def terminate(process: Process, seconds: float = 15) -> tuple[int, float]:
    """SIGTERM, as Kubernetes sends it; (exit code, seconds it took to exit)."""
    started = time.monotonic()
    process.popen.send_signal(signal.SIGTERM)
    code = process.popen.wait(timeout=seconds)
    return code, time.monotonic() - started


class TestWorkerStops:
    """SIGTERM to `pixwave worker`: no new jobs, the running ones finish, exit 0 — promptly."""

    def test_idle_workers_exit_at_once(self, cluster: Cluster) -> None:
        """Nothing to do (one process, then a group of two): each exits 0 within seconds,
        without waiting for a message to arrive."""
        for process in running_workers(cluster):
            code, took = terminate(listening(process))
            assert (code, took < 5) == (0, True), (took, process.log.read_text()[-2000:])
        group = start_worker(cluster, "worker-group", processes=2)
        code, took = terminate(group)
        assert (code, took < 5) == (0, True), (took, group.log.read_text()[-2000:])
        assert group.log.read_text().count('"message":"worker.stopped"') == 2
        start_worker(cluster, "worker-after-idle")

    def test_a_job_in_flight_completes_before_the_worker_exits(
        self, cluster: Cluster, admin: str
    ) -> None:
        """SIGTERM while a withdrawal's send waits 0.8 s in the gateway: the send's answer is
        recorded (not left ambiguous, as after a kill), the worker exits 0 right after, and
        the next worker finishes the payment with that one Pix."""
        user = new_user(cluster, admin, balance=20_00)
        for process in running_workers(cluster):
            terminate(listening(process))
        worker = start_worker(cluster, "worker-in-flight")
        efi = cluster.sims["efi"]
        auth = {"Authorization": f"Bearer {admin}"}
        before = httpx.get(f"{efi}/_sandbox").json()["resources"]["sends"]
        with httpx.Client(base_url=cluster.api_url, timeout=10) as http:
            http.patch("/v1/gateways/mercadopago", json={"enabled": False}, headers=auth)
            httpx.put(
                f"{efi}/_sandbox/faults/send.put", json={"latency": {"fixed_ms": 800}}
            ).raise_for_status()  # less than GATEWAY_READ_TIMEOUT: an answer, not a timeout
            try:
                created = http.post(
                    "/v1/withdrawals",
                    json={"amount": 20_00, "pix_key": "pix@bcb.gov.br"},
                    headers=user.headers(),
                ).json()
                wait_status(cluster, user, created["id"], "processing", seconds=10)
                time.sleep(0.3)  # the send is now waiting inside the simulator
                code, took = terminate(worker)
            finally:
                httpx.delete(f"{efi}/_sandbox/faults")
                http.patch("/v1/gateways/mercadopago", json={"enabled": True}, headers=auth)
            stopped = http.get(f"/v1/transactions/{created['id']}", headers=user.headers()).json()
        assert code == 0, worker.log.read_text()[-2000:]
        assert took < 5, took  # the send's remaining ~0.5 s, then closing
        sends = [
            (a["try_number"], a["outcome"]) for a in stopped["attempts"] if a["operation"] == "send"
        ]
        assert sends == [(1, "succeeded")], stopped["attempts"]
        start_worker(cluster, "worker-after-stop")
        done = wait_status(cluster, user, created["id"], "succeeded", "failed", seconds=30)
        assert done["status"] == "succeeded", done
        assert httpx.get(f"{efi}/_sandbox").json()["resources"]["sends"] - before == 1
        audit(cluster)
