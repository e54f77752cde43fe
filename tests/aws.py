"""A real SNS/SQS over HTTP for the tests: moto's server, started once per test run.

Tests reach it exactly as production reaches AWS — boto3/aioboto3 with an endpoint URL, a region
and credentials — so what is checked is what goes over the wire.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: Fake credentials: moto accepts any, and they keep the real credential chain out of the tests.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """The emulator's URL; AWS credentials and region are set for the whole run."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update({**CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws(aws_endpoint: str) -> str:
    """The emulator, emptied before the test (topics, queues, subscriptions)."""
    httpx.post(f"{aws_endpoint}/moto-api/reset", timeout=5).raise_for_status()
    return aws_endpoint
