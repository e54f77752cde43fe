"""Log configuration: what reaches stdout at each level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pixwave.observability.logging import configure_logging

JOB_LOGGER = "taskiq.receiver.receiver"  # where taskiq announces each job it runs


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    before = logging.getLogger("taskiq.receiver").level, logging.getLogger().level
    yield
    logging.getLogger("taskiq.receiver").setLevel(before[0])
    logging.getLogger().setLevel(before[1])


class TestJobChatter:
    def test_each_job_run_is_not_announced_at_info(self) -> None:
        """`make run` would print a line per sweep tick (every second) and per payment step."""
        configure_logging("info", json=True)
        assert not logging.getLogger(JOB_LOGGER).isEnabledFor(logging.INFO)
        assert logging.getLogger(JOB_LOGGER).isEnabledFor(logging.WARNING)

    def test_debug_shows_every_job(self) -> None:
        configure_logging("debug", json=True)
        assert logging.getLogger(JOB_LOGGER).isEnabledFor(logging.DEBUG)

    def test_a_quieter_level_still_applies(self) -> None:
        configure_logging("error", json=True)
        assert not logging.getLogger(JOB_LOGGER).isEnabledFor(logging.WARNING)
