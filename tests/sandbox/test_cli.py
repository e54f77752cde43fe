"""`pixwave sandbox …`: a simulator as its own process, driven from the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pixwave.cli import app
from pixwave.config import Settings
from pixwave.gateways.base import ChargeRequest, SendRequest
from pixwave.gateways.registry import build_gateway
from pixwave.kit.ids import new_id
from tests.support import PIXWAVE, free_port

runner = CliRunner()


def start(provider: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / f"{provider}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                PIXWAVE,
                "sandbox",
                provider,
                "--port",
                str(port),
                "--time-scale",
                "0.001",
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/_sandbox", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"pixwave sandbox {provider} did not start:\n{log.read_text()}")
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def efi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start("efi", tmp_path_factory.mktemp("efi"))


@pytest.fixture(scope="module")
def mercadopago(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start("mercadopago", tmp_path_factory.mktemp("mp"))


def cli(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["sandbox", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


class TestStandaloneProcess:
    def test_each_provider_runs_as_its_own_server(self, efi: str, mercadopago: str) -> None:
        """`pixwave sandbox efi|mercadopago --port N` serve the provider and the admin API."""
        assert cli("status", "--url", efi)["name"] == "efi"
        assert cli("status", "--url", mercadopago)["name"] == "mercadopago"

    async def test_a_charge_is_paid_from_the_command_line(self, efi: str) -> None:
        """`pixwave sandbox pay` pays a charge the connector created."""
        gateway = build_gateway("efi", Settings(), sandbox_url=efi)
        charge = await gateway.create_charge(
            ChargeRequest(reference=new_id("txn"), amount=15_00, expires_in=600)
        )
        paid = cli("pay", "--url", efi, charge.brcode)
        assert paid["charge_id"] == charge.charge_id
        assert (await gateway.get_charge(charge.charge_id)).status.value == "paid"
        await gateway.aclose()

    async def test_a_send_is_settled_from_the_command_line(self, mercadopago: str) -> None:
        """`pixwave sandbox settle` settles a pending payout; --reject refuses one."""
        async with httpx.AsyncClient() as http:
            await http.patch(f"{mercadopago}/_sandbox/config", json={"auto_settle_sends": False})
        gateway = build_gateway("mercadopago", Settings(), sandbox_url=mercadopago)
        first = await gateway.send_pix(
            SendRequest(reference=new_id("txn"), amount=2_00, pix_key="+5511987654321")
        )
        second = await gateway.send_pix(
            SendRequest(reference=new_id("txn"), amount=3_00, pix_key="+5511987654321")
        )
        assert cli("settle", "--url", mercadopago, first.send_id)["status"] == "approved"
        rejected = cli("settle", "--url", mercadopago, second.send_id, "--reject", "AC03")
        assert rejected["status"] == "rejected"
        await gateway.aclose()


class TestFaultsFromTheCommandLine:
    def test_error_rate_then_clear(self, efi: str) -> None:
        """`fault --error-rate 1` breaks one operation; `clear` restores it."""
        cli("fault", "--url", efi, "--operation", "oauth.token", "--error-rate", "1")
        token = httpx.post(
            f"{efi}/oauth/token", json={"grant_type": "client_credentials"}, auth=("id", "secret")
        )
        assert token.status_code == 500
        cli("clear", "--url", efi)
        token = httpx.post(
            f"{efi}/oauth/token",
            json={"grant_type": "client_credentials"},
            auth=("Client_Id_pixwave_sandbox", "Client_Secret_pixwave_sandbox"),
        )
        assert token.status_code == 200

    def test_refuse_closes_the_port_for_a_while(self, mercadopago: str) -> None:
        """A refuse outage from the CLI closes the real port, then it reopens by itself."""
        cli("fault", "--url", mercadopago, "--outage", "refuse", "--outage-seconds", "0.5")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{mercadopago}/_sandbox", timeout=1)
        for _ in range(60):
            try:
                assert httpx.get(f"{mercadopago}/_sandbox", timeout=1).status_code == 200
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        else:
            pytest.fail("the port did not reopen")

    def test_seeded_rules_replace_the_config(self, efi: str) -> None:
        """`--seed` sets the whole config with that seed, keeping the other rules."""
        cli("fault", "--url", efi, "--operation", "cob.get", "--latency-ms", "5")
        config = cli(
            "fault", "--url", efi, "--operation", "cob.put", "--error-rate", "0.5", "--seed", "9"
        )["config"]
        assert isinstance(config, dict)
        assert config["seed"] == 9
        assert set(config["rules"]) == {"cob.get", "cob.put"}
        cli("clear", "--url", efi)

    def test_advance_moves_the_clock(self, efi: str) -> None:
        """`advance` moves simulated time."""
        before = cli("status", "--url", efi)["now"]
        after = cli("advance", "--url", efi, "3600")["now"]
        assert str(after) > str(before)

    def test_an_unreachable_simulator_is_exit_code_2(self) -> None:
        """A wrong --url fails clearly instead of with a traceback."""
        result = runner.invoke(app, ["sandbox", "status", "--url", "http://127.0.0.1:9"])
        assert result.exit_code == 2
        assert "cannot reach" in result.output

    def test_a_seeded_rule_for_an_unreachable_simulator_is_exit_code_2(self) -> None:
        """`--seed` first reads the current rules: that read fails as cleanly."""
        result = runner.invoke(
            app,
            ["sandbox", "fault", "--url", "http://127.0.0.1:9", "--operation", "cob.put",
             "--error-rate", "1", "--seed", "3"],
        )  # fmt: skip
        assert result.exit_code == 2
        assert "cannot reach" in result.output

    def test_a_refused_rule_is_exit_code_1(self, efi: str) -> None:
        """The simulator's 422 (unknown operation) is shown and the command fails."""
        result = runner.invoke(
            app, ["sandbox", "fault", "--url", efi, "--operation", "nope", "--error-rate", "1"]
        )
        assert result.exit_code == 1
        assert "unknown operations" in result.output
