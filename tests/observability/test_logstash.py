"""Shipping to Logstash: ECS lines over TCP, and an outage that never holds anyone up."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from pixwave.config import Settings
from pixwave.observability.logging import CHATTY_AT_INFO, configure_logging
from tests.support import free_port

TXN = "txn_01JC7Z8X9Y0ABCDEFGHJKMNPQR"


class Collector:
    """A stand-in for Logstash's `tcp` input with the `json_lines` codec: one JSON per line."""

    def __init__(self, port: int = 0) -> None:
        self.lines: list[dict[str, Any]] = []
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    collector.lines.append(json.loads(raw))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def messages(self) -> list[str]:
        return [line["message"] for line in self.lines]


def _handler() -> logging.Handler:
    handlers = [h for h in logging.getLogger().handlers if "Logstash" in type(h).__name__]
    assert len(handlers) == 1
    return handlers[0]


def _wait_for(collector: Collector, messages: set[str], seconds: float = 20) -> None:
    """Ask the handler to send now, again and again, until every line named has arrived
    (as many times as it is named: each name counts once per line)."""
    deadline = time.monotonic() + seconds
    while not messages <= set(collector.messages()):
        assert time.monotonic() < deadline, collector.messages()
        _handler().flush()
        time.sleep(0.1)


def _wait_for_count(collector: Collector, message: str, count: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while collector.messages().count(message) < count:
        assert time.monotonic() < deadline, collector.messages()
        _handler().flush()
        time.sleep(0.1)


def _configure(port: int, buffer: Path | None = None) -> None:
    settings = Settings(
        _env_file=None,
        logstash_host="127.0.0.1",
        logstash_port=port,
        logstash_buffer_path=buffer,
        log_format="json",
    )
    configure_logging("info", settings=settings, role="worker")


@pytest.fixture(autouse=True)
def stop_shipping() -> Iterator[None]:
    names = [*CHATTY_AT_INFO, ""]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    # Configured again without Logstash: the handler's thread is stopped and joined.
    configure_logging("info", json=True, settings=Settings(_env_file=None))
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
    structlog.configure(cache_logger_on_first_use=False)
    structlog.contextvars.clear_contextvars()


class TestShipping:
    def test_every_line_arrives_as_ecs_json(self) -> None:
        """Ours and a library's, with the same fields as on stdout."""
        collector = Collector()
        try:
            _configure(collector.port)
            structlog.get_logger("pixwave.payments").info(
                "payments.attempt", transaction_id=TXN, gateway="efi", latency_ms=80
            )
            logging.getLogger("uvicorn.error").warning("Application shutdown for joao@example.com")
            _wait_for(collector, {"payments.attempt", "Application shutdown for [email]"})
        finally:
            collector.close()
        ours = next(line for line in collector.lines if line["message"] == "payments.attempt")
        assert ours["pixwave"] == {"transaction_id": TXN, "gateway": "efi", "latency_ms": 80}
        assert ours["service"]["name"] == "pixwave"
        assert ours["service"]["node"]["roles"] == ["worker"]
        assert ours["log.level"] == "info"
        assert ours["ecs.version"]
        assert not any("joao@example.com" in json.dumps(line) for line in collector.lines)


class TestOutage:
    def test_logging_does_not_wait_and_lines_follow_once_logstash_is_back(self) -> None:
        port = free_port()
        _configure(port)
        log = structlog.get_logger("pixwave.payments")
        started = time.monotonic()
        for number in range(50):
            log.info("payments.sweep", redriven=number)
        _handler().flush()  # a send attempt against the closed port
        log.info("payments.during_outage")
        assert time.monotonic() - started < 1.0
        time.sleep(0.5)  # let that attempt fail
        collector = Collector(port)
        try:
            _wait_for_count(collector, "payments.sweep", 50)
            _wait_for(collector, {"payments.during_outage"})
        finally:
            collector.close()
        redriven = sorted(
            line["pixwave"]["redriven"]
            for line in collector.lines
            if "redriven" in line.get("pixwave", {})
        )
        assert redriven == list(range(50))

    def test_the_sqlite_buffer_keeps_lines_across_a_restart(self, tmp_path: Path) -> None:
        """Written while Logstash is down, by a process that then stops cleanly: the next
        process with the same buffer sends them."""
        buffer = tmp_path / "logstash-buffer.sqlite"
        port = free_port()
        _configure(port, buffer)
        structlog.get_logger("pixwave.payments").info("payments.buffered", transaction_id=TXN)
        configure_logging("info", json=True, settings=Settings(_env_file=None))
        assert buffer.exists()
        collector = Collector(port)
        try:
            _configure(port, buffer)
            _wait_for(collector, {"payments.buffered"})
        finally:
            collector.close()
