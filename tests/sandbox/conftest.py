"""Fixtures shared by the simulator tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import ServerThread, WebhookSink, run_sink


@pytest.fixture(scope="module")
def sink_served() -> Iterator[tuple[WebhookSink, ServerThread]]:
    """A webhook receiver on a real port, one per test module."""
    sink = WebhookSink()
    with run_sink(sink) as thread:
        yield sink, thread
