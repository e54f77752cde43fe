"""Structured logs: one JSON object per line on stdout in deployments, readable lines locally."""

from __future__ import annotations

import logging
import sys

import structlog

#: Libraries whose INFO lines are per-message chatter: taskiq announces every job it runs
#: ("Executing task … with ID …": one line per payment step and per periodic tick), httpx every
#: request ("HTTP Request: …", which our own `gateway.call` line already tells, with more).
CHATTY_AT_INFO = ("taskiq.receiver", "httpx")


def configure_logging(level: str = "info", *, json: bool = True) -> None:
    logging.basicConfig(stream=sys.stdout, level=level.upper(), format="%(message)s")
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
        cache_logger_on_first_use=True,
    )
