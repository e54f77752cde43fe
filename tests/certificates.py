"""A throwaway client certificate for mTLS tests, made with the system's openssl."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def self_signed_pem(directory: Path) -> Path:
    """A certificate and its key in one PEM file, like a converted Efí .p12."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a test certificate"
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pixwave-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    combined = directory / "efi.pem"
    combined.write_text(cert.read_text() + key.read_text())
    return combined
