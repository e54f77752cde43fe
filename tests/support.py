"""Helpers every test directory may use: free ports and the embedded server's start.

Test modules import from here, never each other's private helpers.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

#: The `pixwave` command of the interpreter running the tests.
PIXWAVE = shutil.which("pixwave", path=str(Path(sys.executable).parent)) or "pixwave"

#: Settings that would take a run off the embedded default and its demo gateways.
_NOT_EMBEDDED = ("DB_", "DATABASE_", "REDIS_", "MERCADOPAGO_", "GERENCIANET_", "EFI_", "SANDBOX_")


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env() -> dict[str, str]:
    """The caller's environment without any database, Redis or gateway setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_NOT_EMBEDDED)}


def admin_token_once_serving(
    process: subprocess.Popen[bytes], port: int, log: Path, seconds: float = 30
) -> str:
    """Wait until the server on ``port`` answers, then the admin token its first start printed
    (fails the test with the server's log otherwise)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, "the server exited:\n" + log.read_text()
        assert time.monotonic() < deadline, "the server did not answer:\n" + log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    match = re.search(r"pxw_[A-Za-z0-9_-]{20,}", log.read_text())
    assert match, "the first start must print an admin token:\n" + log.read_text()
    return match.group(0)
