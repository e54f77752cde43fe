"""Every logging test leaves logging as it found it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from pixwave.observability.logging import CHATTY_AT_INFO


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    names = [*CHATTY_AT_INFO, ""]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
    # A server's configuration caches each logger on first use: left in place, later tests'
    # log captures would miss every logger first used after this one.
    structlog.configure(cache_logger_on_first_use=False)
    structlog.contextvars.clear_contextvars()
