"""The README's tour, run as written: its bash block, taken from README.md, against `make run`.

Only the two lines a reader fills in (`API=` and `ADMIN=`) are replaced; everything else runs as
printed. The promised results are then checked through the API.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import admin_token_once_serving, embedded_env, free_port

ROOT = Path(__file__).resolve().parents[1]
#: Printed by the script after the tour, so the test knows the ids the tour made.
TRAILER = """
for name in ANA_TOKEN ANA_WALLET DEPOSIT_ID GATEWAY SECOND WITHDRAWAL; do
  printf 'TOUR %s=%s\\n' "$name" "${!name}"
done
"""


def tour_block() -> str:
    """The first bash block under "## A first tour" in README.md."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first tour", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "the README tour has no ```bash block"
    return match.group(1)


def fill_in(block: str, *, api: str, admin: str) -> str:
    """Replace the reader's two lines; every other line stays exactly as printed."""
    lines = block.splitlines()
    for prefix, value in (("API=", api), ("ADMIN=", admin)):
        matches = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        assert len(matches) == 1, f"the tour must set {prefix} exactly once"
        lines[matches[0]] = f"{prefix}{value}"
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`make run` on a random port with its data in a scratch folder: (api, admin token, env)."""
    make, curl = shutil.which("make"), shutil.which("curl")
    if make is None or curl is None:
        pytest.fail("the README tour needs make and curl (.ci/run installs them)")
    port = free_port()
    env = embedded_env()
    env.update(
        {"PORT": str(port), "DATA_DIR": str(tmp_path / "var"), "LOG_LEVEL": "warning",
         "COLUMNS": "200"}
    )  # fmt: skip
    log = tmp_path / "make-run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [make, "--no-print-directory", "run"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        token = admin_token_once_serving(process, port, log, seconds=120)
        yield f"http://localhost:{port}", token, env
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(
    http: httpx.Client, path: str, token: str, done: Any, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = http.get(path, headers={"Authorization": f"Bearer {token}"}).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_the_readme_tour_runs_as_written(
    make_run: tuple[str, str, dict[str, str]], tmp_path: Path
) -> None:
    """Two users, a transfer replayed safely, a deposit paid and credited, a failover with
    attempts on both gateways, a withdrawal settled, and `pixwave audit` clean."""
    api, admin, env = make_run
    script = "set -euo pipefail\n" + fill_in(tour_block(), api=api, admin=admin) + TRAILER
    (tmp_path / "tour.sh").write_text(script)
    run = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(tmp_path / "tour.sh")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output  # the last command is `pixwave audit`
    assert "posted_matches_entries" in output, output
    assert "problem" not in output.lower(), output
    found = dict(re.findall(r"^TOUR (\w+)=(.*)$", run.stdout, re.MULTILINE))
    assert found.get("ANA_TOKEN", "").startswith("pxw_"), output

    # 4: the transfer ran once; its replay said so
    assert len(re.findall(r"(?i)^idempotent-replayed: true", run.stdout, re.MULTILINE)) == 1

    with httpx.Client(base_url=api.replace("localhost", "127.0.0.1"), timeout=10) as http:
        token = found["ANA_TOKEN"]
        # 5–6: the first deposit was paid in the sandbox and credited
        first = _wait_for(
            http, f"/v1/transactions/{found['DEPOSIT_ID']}", token,
            lambda t: t["status"] == "succeeded",
        )  # fmt: skip
        assert first["status"] == "succeeded", first
        assert first["gateway"] == found["GATEWAY"] == "mercadopago"  # the configured priority

        # 7: the next deposit tried the dead gateway, then went through the other one
        second = _wait_for(
            http, f"/v1/transactions/{_id(found['SECOND'])}", token,
            lambda t: t["status"] == "awaiting_payment",
        )  # fmt: skip
        assert second["status"] == "awaiting_payment", second
        assert second["gateway"] == "efi"
        tried = [(a["gateway"], a["outcome"]) for a in second["attempts"]]
        assert ("mercadopago", "unavailable") in tried, tried
        assert ("efi", "succeeded") in tried, tried
        assert re.search(r'"name":"mercadopago".*?"state":"down"', run.stdout), run.stdout

        # 8: the withdrawal settled; the wallet holds what the tour says
        withdrawal = _wait_for(
            http, f"/v1/transactions/{_id(found['WITHDRAWAL'])}", token,
            lambda t: t["status"] == "succeeded",
        )  # fmt: skip
        assert withdrawal["status"] == "succeeded", withdrawal
        wallet = http.get("/v1/wallet", headers={"Authorization": f"Bearer {token}"}).json()
        assert wallet["posted"] == 10_000 - 2_550 + 5_000 - 2_000
        assert wallet["held"] == 0


def _id(transaction_json: str) -> str:
    match = re.search(r'"id":"(txn_[^"]+)"', transaction_json)
    assert match, transaction_json
    return match.group(1)


class TestTourExtraction:
    def test_the_block_sets_api_and_admin_once_and_uses_them(self) -> None:
        """Every request goes to $API; BR Codes and URLs with `*` are quoted."""
        block = tour_block()
        assert "localhost:8000/v1" not in block
        assert block.count("curl ") == block.count('"$API/')
        assert 'faults/*"' in block  # quoted: the shell must not glob it
        assert '\\"$BRCODE\\"' in block
