"""Structured logs: one JSON object per line on stdout in deployments, readable lines locally."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

#: Libraries whose INFO lines are per-message chatter: taskiq announces every job it runs
#: ("Executing task … with ID …": one line per payment step and per periodic tick), httpx every
#: request ("HTTP Request: …", which our own `gateway.call` line already tells, with more).
CHATTY_AT_INFO = ("taskiq.receiver", "httpx")


class StandardError:
    """sys.stderr as it is when each line is written (a test runner swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", *, json: bool = True, to_stderr: bool = False) -> None:
    """Servers log to stdout; commands whose stdout is their result (JSON, a token) pass
    ``to_stderr``. Those short-lived commands also leave loggers uncached, so that whatever
    configuration comes later (a test's log capture) still applies to them."""
    # A write/flush proxy is all that logging and structlog call on the stream.
    stream: TextIO = StandardError() if to_stderr else sys.stdout  # type: ignore[assignment]
    logging.basicConfig(stream=stream, level=level.upper(), format="%(message)s")
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    for name in CHATTY_AT_INFO:
        logging.getLogger(name).setLevel(
            numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream if to_stderr else None),
        cache_logger_on_first_use=not to_stderr,
    )
