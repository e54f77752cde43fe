"""The embedded default (`pixwave up`): SQLite, in-process locks, nothing else to install."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import PIXWAVE, admin_token_once_serving, embedded_env, free_port


def _assert_audit_clean(workdir: Path) -> None:
    """`pixwave audit` on the embedded database the run left behind."""
    audit = subprocess.run(
        [PIXWAVE, "audit", "--json"],
        cwd=workdir,
        env=embedded_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`pixwave up` in a scratch directory: (base url, admin token, working dir)."""
    port = free_port()
    env = {**embedded_env(), "PORT": str(port), "LOG_LEVEL": "warning", "COLUMNS": "200"}
    log = tmp_path / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [PIXWAVE, "up"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        token = admin_token_once_serving(process, port, log)
        yield f"http://127.0.0.1:{port}", token, tmp_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_newcomer_flow_on_the_embedded_default(embedded: tuple[str, str, Path]) -> None:
    """Start, create two users, fund one, transfer, replay, and the ledger audits clean."""
    base, admin_token, workdir = embedded
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/docs").status_code == 200
        users = []
        for i, document in enumerate(("52998224725", "11144477735")):
            response = http.post(
                "/v1/users",
                json={"name": f"User {i}", "email": f"u{i}@example.com", "document": document},
                headers={**admin, "Idempotency-Key": f"user-{i}"},
            )
            assert response.status_code == 201, response.text
            users.append(response.json())
        token = http.post(
            f"/v1/users/{users[0]['id']}/tokens", json={}, headers={**admin, "Idempotency-Key": "t"}
        ).json()["token"]
        funded = http.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": users[0]["wallet_id"],
                "direction": "credit",
                "amount": 10_000,
                "reason": "seed",
            },
            headers={**admin, "Idempotency-Key": "seed"},
        )
        assert funded.status_code == 201
        payer = {"Authorization": f"Bearer {token}", "Idempotency-Key": "pay-1"}
        body = {"to_wallet_id": users[1]["wallet_id"], "amount": 1_234}
        first = http.post("/v1/transfers", json=body, headers=payer)
        replay = http.post("/v1/transfers", json=body, headers=payer)
        assert first.status_code == replay.status_code == 201
        assert replay.headers["Idempotent-Replayed"] == "true"
        wallet = http.get("/v1/wallet", headers={"Authorization": f"Bearer {token}"}).json()
        assert wallet["available"] == 10_000 - 1_234
    assert (workdir / "var" / "pixwave.db").exists()
    _assert_audit_clean(workdir)


def _ana(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    """Create Ana (with her wallet) and return the Authorization header of her new token."""
    user = http.post(
        "/v1/users",
        json={"name": "Ana", "email": "ana@example.com", "document": "52998224725"},
        headers={**admin, "Idempotency-Key": "ana"},
    ).json()
    token = http.post(
        f"/v1/users/{user['id']}/tokens", json={}, headers={**admin, "Idempotency-Key": "ta"}
    ).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_deposit_pay_and_fail_over_on_the_embedded_default(
    embedded: tuple[str, str, Path],
) -> None:
    """The tour: deposit, pay the QR in the sandbox, see the balance; kill that gateway and
    the next deposit goes through the other — and the ledger still balances."""
    base, admin_token, workdir = embedded
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, timeout=15) as http:
        auth = _ana(http, admin)
        used: list[str] = []
        for round_ in range(2):
            ready = http.post(
                "/v1/deposits",
                json={"amount": 50_00, "description": f"depósito {round_}"},
                headers={**auth, "Idempotency-Key": f"dep-{round_}", "Prefer": "wait=10"},
            )
            assert ready.status_code == 200, ready.text
            charge = ready.json()
            assert charge["status"] == "awaiting_payment"
            assert charge["gateway"] not in used
            used.append(charge["gateway"])
            paid = http.post(
                f"/sandbox/{charge['gateway']}/_sandbox/pay",
                json={"brcode": charge["brcode"]},
                headers=admin,
            )
            assert paid.status_code == 200, paid.text
            deadline = time.monotonic() + 15
            while (
                http.get(f"/v1/transactions/{charge['id']}", headers=auth).json()["status"]
                != "succeeded"
            ):
                assert time.monotonic() < deadline, "the deposit was never credited"
                time.sleep(0.1)
            # Kill the gateway that just worked; the next deposit must use the other one.
            http.put(
                f"/sandbox/{charge['gateway']}/_sandbox/faults/*",
                json={"outage": "503"},
                headers=admin,
            ).raise_for_status()
        assert sorted(used) == ["efi", "mercadopago"]
        assert http.get("/v1/wallet", headers=auth).json()["posted"] == 100_00
    _assert_audit_clean(workdir)


def _reconcile(workdir: Path) -> subprocess.CompletedProcess[str]:
    """`pixwave reconcile --json` from another shell: no PORT, the default configuration."""
    env = {k: v for k, v in embedded_env().items() if k not in {"PORT", "HOST"}}
    return subprocess.run(
        [PIXWAVE, "reconcile", "--json"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _deposit(base: str, admin_token: str) -> tuple[str, dict[str, str]]:
    """A deposit awaiting payment on the embedded default: (its id, the owner's headers)."""
    with httpx.Client(base_url=base, timeout=15) as http:
        auth = _ana(http, {"Authorization": f"Bearer {admin_token}"})
        ready = http.post(
            "/v1/deposits",
            json={"amount": 10_00},
            headers={**auth, "Idempotency-Key": "d", "Prefer": "wait=10"},
        )
        assert ready.json()["status"] == "awaiting_payment", ready.text
        return ready.json()["id"], auth


def test_reconcile_reaches_the_running_servers_simulators(
    embedded: tuple[str, str, Path],
) -> None:
    """`pixwave up` on another port: reconcile, run without PORT, still asks its simulators."""
    base, admin_token, workdir = embedded
    _deposit(base, admin_token)
    result = _reconcile(workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["unreachable"] == {}
    assert summary["examined"] == 1
    assert summary["after"] == {"awaiting_payment": 1}


def test_reconcile_without_the_server_says_so_and_writes_nothing(
    embedded: tuple[str, str, Path],
) -> None:
    """The simulators are gone with their server: exit 2 naming them, histories unchanged."""
    base, admin_token, workdir = embedded
    deposit_id, auth = _deposit(base, admin_token)
    attempts = httpx.get(f"{base}/v1/transactions/{deposit_id}", headers=auth).json()["attempts"]
    (workdir / "var" / "pixwave-up.json").unlink()  # as if the server had stopped
    result = _reconcile(workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert set(summary["unreachable"]) == {"mercadopago", "efi"}
    assert summary["skipped"] == {"mercadopago": 1}
    assert "could not reach mercadopago" in result.stderr
    after = httpx.get(f"{base}/v1/transactions/{deposit_id}", headers=auth).json()["attempts"]
    assert after == attempts
