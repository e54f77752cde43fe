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
        assert all(json.loads(line)["level"] == "warning" for line in lines), lines
