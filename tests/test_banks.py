"""The third gateway family end to end: banks speaking the Central Bank's standard API Pix.

`pixwave up` with ``PIXAPI_GATEWAYS=bancoa,bancob`` and no credentials anywhere: two banks join
the demo, each its own gateway with its own mounted simulator. A deposit through a bank is
paid and credited once and can be refunded; with the primary down, a bank takes the charge; a
withdrawal never goes to a bank, whatever else is down; the ledger audits clean.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixwave.pix.documents import generate_cpf
from tests.support import PIXWAVE, admin_token_once_serving, embedded_env, free_port

BANKS = ("bancoa", "bancob")


@dataclass
class Demo:
    http: httpx.Client
    admin: dict[str, str]
    user: dict[str, str]
    workdir: Path
    #: Makes this test's idempotency keys its own on the shared server.
    key: str

    def gateway(self, name: str, **changes: Any) -> None:
        self.http.patch(f"/v1/gateways/{name}", json=changes, headers=self.admin).raise_for_status()

    def only(self, *names: str) -> None:
        """Enable ``names`` and disable every other gateway."""
        for gateway in self.http.get("/v1/gateways", headers=self.admin).json():
            self.gateway(gateway["name"], enabled=gateway["name"] in names)

    def deposit(self, amount: int, key: str) -> dict[str, Any]:
        ready = self.http.post(
            "/v1/deposits",
            json={"amount": amount},
            headers={**self.user, "Idempotency-Key": f"{self.key}-{key}", "Prefer": "wait=10"},
        )
        assert ready.status_code in (200, 202), ready.text
        body: dict[str, Any] = ready.json()
        return body

    def pay(self, charge: dict[str, Any]) -> None:
        paid = self.http.post(
            f"/sandbox/{charge['gateway']}/_sandbox/pay",
            json={"brcode": charge["brcode"]},
            headers=self.admin,
        )
        assert paid.status_code == 200, paid.text

    def wait(self, transaction_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while True:
            body: dict[str, Any] = self.http.get(
                f"/v1/transactions/{transaction_id}", headers=self.user
            ).json()
            if body["status"] in statuses:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)

    def posted(self) -> int:
        return int(self.http.get("/v1/wallet", headers=self.user).json()["posted"])


@dataclass
class Server:
    http: httpx.Client
    admin: dict[str, str]
    workdir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `pixwave up` for the module (each test has its own user); audited at the end."""
    tmp_path = tmp_path_factory.mktemp("banks")
    port = free_port()
    env = {
        **embedded_env(),
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "PIXAPI_GATEWAYS": ",".join(BANKS),
        "CHARGE_POLL_SECONDS": "0.5",
    }
    log = tmp_path / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [PIXWAVE, "up"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        admin = {"Authorization": f"Bearer {admin_token_once_serving(process, port, log)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as http:
            yield Server(http, admin, tmp_path)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    audit = subprocess.run(
        [PIXWAVE, "audit", "--json"],
        cwd=tmp_path, env=embedded_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr


@pytest.fixture
def demo(server: Server, request: pytest.FixtureRequest) -> Iterator[Demo]:
    """A new user on the shared server; every gateway enabled and fault-free afterwards."""
    http, admin = server.http, server.admin
    key = request.node.name
    user = http.post(
        "/v1/users",
        json={
            "name": "Ana",
            "email": f"{uuid.uuid4().hex[:12]}@example.com",
            "document": generate_cpf(random.Random(key)),
        },
        headers={**admin, "Idempotency-Key": f"user-{key}"},
    ).json()
    token = http.post(
        f"/v1/users/{user['id']}/tokens", json={}, headers={**admin, "Idempotency-Key": f"t-{key}"}
    ).json()["token"]
    demo = Demo(http, admin, {"Authorization": f"Bearer {token}"}, server.workdir, key)
    try:
        yield demo
    finally:
        for gateway in http.get("/v1/gateways", headers=admin).json():
            demo.gateway(gateway["name"], enabled=True)
            http.delete(f"/sandbox/{gateway['name']}/_sandbox/faults", headers=admin)


def test_both_banks_are_gateways_of_their_own(demo: Demo) -> None:
    """Each bank is listed, simulated, and able to charge and refund but not to send."""
    listed = {g["name"]: g for g in demo.http.get("/v1/gateways", headers=demo.admin).json()}
    assert set(BANKS) <= set(listed)
    for bank in BANKS:
        assert listed[bank]["simulated"] is True
        assert set(listed[bank]["operations"]) == {"charge", "refund", "query"}


def test_a_deposit_through_each_bank_is_credited_once_and_refunded(demo: Demo) -> None:
    """Deposit, pay, credit once (a second payment of the same code changes nothing); then a
    refund returns part of it through the same bank."""
    for bank in BANKS:
        demo.only(bank)
        before = demo.posted()
        charge = demo.deposit(40_00, f"dep-{bank}")
        assert (charge["status"], charge["gateway"]) == ("awaiting_payment", bank)
        demo.pay(charge)
        demo.wait(charge["id"], "succeeded")
        assert demo.posted() == before + 40_00
        refund = demo.http.post(
            f"/v1/transactions/{charge['id']}/refunds",
            json={"amount": 15_00},
            headers={**demo.user, "Idempotency-Key": f"{demo.key}-ref-{bank}"},
        )
        assert refund.status_code in (200, 202), refund.text
        done = demo.wait(refund.json()["id"], "succeeded", "failed")
        assert (done["status"], done["gateway"]) == ("succeeded", bank), done
        assert demo.posted() == before + 25_00


def test_the_primary_down_a_bank_takes_the_charge(demo: Demo) -> None:
    """Mercado Pago (first by priority) answers 503 to everything and Efí is off: the deposit
    falls back to the first bank."""
    demo.only("mercadopago", *BANKS)
    demo.http.put(
        "/sandbox/mercadopago/_sandbox/faults/*", json={"outage": "503"}, headers=demo.admin
    ).raise_for_status()
    charge = demo.deposit(12_34, "dep-fallback")
    assert (charge["status"], charge["gateway"]) == ("awaiting_payment", "bancoa"), charge
    assert {a["gateway"] for a in charge["attempts"]} == {"mercadopago", "bancoa"}
    demo.pay(charge)
    demo.wait(charge["id"], "succeeded")


def test_a_withdrawal_never_goes_to_a_bank(demo: Demo) -> None:
    """With every gateway that can send switched off, a withdrawal fails (its hold released)
    rather than reaching a bank; with Efí on, it goes to Efí."""
    demo.only(*BANKS)
    charge = demo.deposit(50_00, "dep-funds")
    demo.pay(charge)
    demo.wait(charge["id"], "succeeded")
    refused = demo.http.post(
        "/v1/withdrawals",
        json={"amount": 10_00, "pix_key": "pix@bcb.gov.br"},
        headers={**demo.user, "Idempotency-Key": f"{demo.key}-w-1"},
    )
    assert refused.status_code in (200, 202), refused.text
    failed = demo.wait(refused.json()["id"], "failed")
    assert not {a["gateway"] for a in failed["attempts"]} & set(BANKS), failed
    assert demo.http.get("/v1/wallet", headers=demo.user).json()["held"] == 0
    demo.only("efi", *BANKS)
    sent = demo.http.post(
        "/v1/withdrawals",
        json={"amount": 10_00, "pix_key": "pix@bcb.gov.br"},
        headers={**demo.user, "Idempotency-Key": f"{demo.key}-w-2"},
    )
    done = demo.wait(sent.json()["id"], "succeeded", "failed")
    assert (done["status"], done["gateway"]) == ("succeeded", "efi"), done
    assert demo.posted() == 40_00
