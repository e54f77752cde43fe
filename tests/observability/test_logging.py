"""Log configuration: what reaches stdout at each level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from pixwave.observability.logging import CHATTY_AT_INFO, configure_logging

JOB_LOGGER = "taskiq.receiver.receiver"  # where taskiq announces each job it runs


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = [*CHATTY_AT_INFO, ""]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
    # A server's configuration caches each logger on first use: left in place, later tests'
    # log captures would miss every logger first used after this one.
    structlog.configure(cache_logger_on_first_use=False)


class TestJobChatter:
    def test_each_job_run_is_not_announced_at_info(self) -> None:
        """`make run` would print a line per sweep tick (every second) and per payment step."""
        configure_logging("info", json=True)
        assert not logging.getLogger(JOB_LOGGER).isEnabledFor(logging.INFO)
        assert logging.getLogger(JOB_LOGGER).isEnabledFor(logging.WARNING)

    def test_each_http_request_is_not_announced_at_info(self) -> None:
        """httpx's "HTTP Request: …" line repeats our own `gateway.call` line."""
        configure_logging("info", json=True)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)

    def test_debug_shows_every_job(self) -> None:
        configure_logging("debug", json=True)
        assert logging.getLogger(JOB_LOGGER).isEnabledFor(logging.DEBUG)

    def test_a_quieter_level_still_applies(self) -> None:
        configure_logging("error", json=True)
        assert not logging.getLogger(JOB_LOGGER).isEnabledFor(logging.WARNING)
