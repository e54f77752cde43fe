"""The `pixwave` command on a scratch SQLite database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from pixwave.cli import app
from pixwave.config import get_settings
from tests.support import PIXWAVE, embedded_env

VALID = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
runner = CliRunner()


def _create_user(document: str) -> Result:
    return runner.invoke(
        app, ["admin", "create-user", "--name", "Ana", "--email", "a@example.com",
              "--document", document],
    )  # fmt: skip


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    yield path
    get_settings.cache_clear()


class TestAdmin:
    def test_create_user_prints_json_with_wallet(self, database: Path) -> None:
        """`admin create-user` creates the user and its wallet."""
        result = _create_user("52998224725")
        assert result.exit_code == 0, result.output
        user = json.loads(result.stdout)
        assert user["wallet_id"].startswith("wal_")

    def test_create_user_rejects_a_bad_cpf(self, database: Path) -> None:
        """A malformed CPF exits 2 with the reason."""
        result = _create_user("12345678900")
        assert result.exit_code == 2

    def test_admin_token_is_printed_once(self, database: Path) -> None:
        """`admin create-token --admin` makes an operator on first use and prints a token."""
        result = runner.invoke(app, ["admin", "create-token", "--admin"])
        assert result.exit_code == 0, result.output
        token = result.stdout.strip().splitlines()[-1]
        assert token.startswith("pxw_")
        second = runner.invoke(app, ["admin", "create-token", "--admin"])
        assert second.stdout.strip().splitlines()[-1] != token

    def test_an_admin_token_after_every_operator_was_deactivated(self, database: Path) -> None:
        """`create-token --admin` makes a new operator when none is active (never a token of a
        deactivated one, which would not work)."""
        first = runner.invoke(app, ["admin", "create-token", "--admin"])
        operator = first.output.split("token for ", 1)[1].split(" ", 1)[0]
        assert runner.invoke(app, ["admin", "deactivate-user", operator]).exit_code == 0
        second = runner.invoke(app, ["admin", "create-token", "--admin"])
        assert second.exit_code == 0, second.output
        assert operator not in second.output

    def test_token_needs_exactly_one_target(self, database: Path) -> None:
        """Neither or both of --admin/--user-id is a usage error."""
        assert runner.invoke(app, ["admin", "create-token"]).exit_code == 2


class TestAudit:
    def test_clean_ledger_exits_zero(self, database: Path) -> None:
        """A fresh ledger passes every check."""
        result = runner.invoke(app, ["audit", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ok"] is True

    def test_tampered_ledger_exits_one_with_a_report(self, database: Path) -> None:
        """A balance edited behind the ledger's back is reported and the exit code is 1."""
        import sqlite3

        _create_user("52998224725")
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE ledger_accounts SET posted = 999")
        result = runner.invoke(app, ["audit"])
        assert result.exit_code == 1
        assert "posted_matches_entries" in result.stdout
        assert "posted=999" in result.stdout


class TestPix:
    def test_decode_prints_fields(self) -> None:
        """A valid BR Code decodes to JSON fields."""
        result = runner.invoke(app, ["pix", "decode", VALID])
        assert result.exit_code == 0
        decoded = json.loads(result.stdout)
        assert decoded["valid"] is True
        assert decoded["merchant_name"] == "Fulano de Tal"

    def test_decode_rejects_a_bad_crc(self) -> None:
        """A wrong CRC exits 1 and names the error."""
        result = runner.invoke(app, ["pix", "decode", VALID[:-4] + "0000"])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["code"] == "brcode_crc_mismatch"

    def test_encode_then_decode(self, tmp_path: Path) -> None:
        """An encoded static code decodes to the same amount and key, and the QR file is a PNG."""
        png = tmp_path / "qr.png"
        result = runner.invoke(
            app,
            [
                "pix", "encode", "--key", "pix@example.com", "--name", "Loja São João",
                "--city", "São Paulo", "--amount", "1050", "--qr", str(png),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        encoded = json.loads(result.stdout)
        decoded = json.loads(runner.invoke(app, ["pix", "decode", encoded["brcode"]]).stdout)
        assert decoded["amount_centavos"] == 1050
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


class TestApiWorkers:
    def test_several_workers_need_redis(self, database: Path) -> None:
        """With the in-process queue every worker would run its own jobs and scheduler."""
        result = runner.invoke(app, ["api", "--workers", "2"])
        assert result.exit_code == 2
        assert "needs Redis" in result.output

    def test_several_workers_refuse_mounted_simulators(
        self, database: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each worker would mount its own simulator: refused, pointing at the standalone ones."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        get_settings.cache_clear()
        result = runner.invoke(app, ["api", "--workers", "2"])
        assert result.exit_code == 2, result.output
        output = " ".join(result.output.split())
        assert "`pixwave sandbox mercadopago --port 9001`" in output
        assert "*_BASE_URL" in output


class TestGatewayModes:
    @pytest.mark.parametrize("command", [["api"], ["up"], ["worker"], ["scheduler"]])
    def test_simulators_beside_credentials_do_not_start(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
    ) -> None:
        """SANDBOX_GATEWAYS=true beside a real gateway's token: exit 2, naming both."""
        monkeypatch.setenv("SANDBOX_GATEWAYS", "true")
        monkeypatch.setenv("MERCADOPAGO_ACCESS_TOKEN", "APP_USR-real")
        get_settings.cache_clear()
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "MERCADOPAGO_ACCESS_TOKEN" in result.output
        assert "SANDBOX_GATEWAYS" in result.output

    def test_production_refuses_simulators(
        self, database: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """APP_ENV=production with SANDBOX_GATEWAYS=true: exit 2."""
        monkeypatch.setenv("SANDBOX_GATEWAYS", "true")
        monkeypatch.setenv("APP_ENV", "production")
        get_settings.cache_clear()
        result = runner.invoke(app, ["api"])
        assert result.exit_code == 2
        assert "APP_ENV=production" in result.output


def _pixwave(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command in ``cwd`` on the embedded default (no database settings)."""
    return subprocess.run(
        [PIXWAVE, *args], cwd=cwd, env=embedded_env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


class TestFreshFolder:
    """Every command works in a new directory on the embedded default, in any order."""

    def test_migrate_creates_the_data_directory(self, tmp_path: Path) -> None:
        """`pixwave migrate` first: the folder and the SQLite file are created."""
        result = _pixwave(tmp_path, "migrate")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "var" / "pixwave.db").exists()

    def test_admin_commands_first(self, tmp_path: Path) -> None:
        """`admin create-token --admin` first: the schema is brought up to date on the way;
        stdout holds only the token (logs go to stderr)."""
        token = _pixwave(tmp_path, "admin", "create-token", "--admin")
        assert token.returncode == 0, token.stderr
        assert token.stdout.strip().startswith("pxw_")
        user = _pixwave(
            tmp_path, "admin", "create-user", "--name", "Ana", "--email", "a@example.com",
            "--document", "52998224725",
        )  # fmt: skip
        assert user.returncode == 0, user.stderr
        user_id = json.loads(user.stdout)["id"]
        deactivated = _pixwave(tmp_path, "admin", "deactivate-user", user_id)
        assert deactivated.returncode == 0, deactivated.stderr
        assert json.loads(deactivated.stdout)["deactivated_at"] is not None

    @pytest.mark.parametrize(
        "command", [["audit", "--json"], ["admin", "list-tokens", "--user-id", "usr_x"]]
    )
    def test_read_commands_first(self, tmp_path: Path, command: list[str]) -> None:
        """A read-only command on a folder that has nothing yet answers, not crashes."""
        result = _pixwave(tmp_path, *command)
        assert "OperationalError" not in result.stderr, result.stderr
        assert result.returncode in {0, 1}, result.stderr


class TestTokenCommands:
    def test_list_and_revoke(self, database: Path) -> None:
        """list-tokens shows prefixes and no secret; revoke-token marks it, twice is fine."""
        user_id = json.loads(_create_user("52998224725").stdout)["id"]
        token = runner.invoke(app, ["admin", "create-token", "--user-id", user_id])
        secret = token.stdout.strip().splitlines()[-1]
        listed = runner.invoke(app, ["admin", "list-tokens", "--user-id", user_id])
        assert listed.exit_code == 0, listed.output
        [entry] = json.loads(listed.stdout)
        assert secret not in listed.stdout
        assert secret.startswith(entry["prefix"])
        for _ in range(2):
            revoked = runner.invoke(app, ["admin", "revoke-token", entry["id"]])
            assert revoked.exit_code == 0, revoked.output
            assert json.loads(revoked.stdout)["revoked_at"] is not None

    def test_unknown_token_exits_one(self, database: Path) -> None:
        """Revoking a token that does not exist names the code and exits 1."""
        result = runner.invoke(app, ["admin", "revoke-token", "tok_missing"])
        assert result.exit_code == 1
        assert "token_not_found" in result.output

    def test_every_worker_logs_json_at_the_configured_level(
        self, database: Path, tmp_path: Path, redis_url: str
    ) -> None:
        """`pixwave api --workers 2`: each worker is a fresh interpreter and must set up
        logging itself — JSON lines at LOG_LEVEL, not the colourful development console.
        Without gateways configured, each worker warns once per gateway as it starts."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "REDIS_URL": redis_url,
            "DATA_DIR": str(tmp_path),
            "SANDBOX_GATEWAYS": "false",
            "LOG_LEVEL": "warning",
        }
        out = tmp_path / "api.log"

        def warnings() -> list[str]:
            return [line for line in out.read_text().splitlines() if "gateway.disabled" in line]

        with out.open("wb") as sink:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("pixwave")), "api", "--workers", "2",
                 "--port", str(port)],
                env=env, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                # A worker logs its warnings while building its resources, before its server
                # listens: wait for both, each worker's warnings and an answer.
                deadline = time.monotonic() + 60
                while not (len(warnings()) >= 4 and _answers(port)):
                    assert time.monotonic() < deadline, out.read_text()
                    assert process.poll() is None, out.read_text()
                    time.sleep(0.2)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    raise
        lines = warnings()
        assert len(lines) == 4, out.read_text()  # two gateways × two workers
        assert all(json.loads(line)["log.level"] == "warning" for line in lines), lines
