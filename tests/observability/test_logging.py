"""Log configuration: what reaches stdout at each level, and in which shape."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from typing import Any

import pytest
import structlog

from pixwave.config import Settings
from pixwave.observability.logging import configure_logging

JOB_LOGGER = "taskiq.receiver.receiver"  # where taskiq announces each job it runs


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


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


class TestEcsLines:
    def test_our_line_is_one_ecs_object(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Level, logger, service and our keys land on ECS fields or under `pixwave.`."""
        configure_logging("info", json=True, settings=_settings(), role="worker")
        structlog.get_logger("pixwave.payments").info(
            "payments.attempt",
            transaction_id="txn_01JC0000000000000000000000",
            gateway="efi",
            latency_ms=120,
            error_code="timeout",
            amount=10_00,
        )
        [line] = _lines(capsys.readouterr().out)
        assert line["message"] == "payments.attempt"
        assert line["log.level"] == "info"
        assert line["log"]["logger"] == "pixwave.payments"
        assert line["ecs.version"]
        assert line["@timestamp"].endswith("Z")
        assert line["service"]["name"] == "pixwave"
        assert line["service"]["node"]["roles"] == ["worker"]
        assert line["process"]["pid"] > 0
        assert line["error"] == {"code": "timeout"}
        assert line["pixwave"] == {
            "transaction_id": "txn_01JC0000000000000000000000",
            "gateway": "efi",
            "latency_ms": 120,
            "amount": 10_00,
        }

    def test_a_string_error_and_a_message_key_do_not_clash_with_ecs(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`error=repr(exc)` is ECS error.message; a `message=` key cannot replace the line's."""
        configure_logging("info", json=True, settings=_settings())
        structlog.get_logger("pixwave.payments").warning(
            "payments.failed", code="rejected", message="key not found", error="Boom()"
        )
        [line] = _lines(capsys.readouterr().out)
        assert line["message"] == "payments.failed"
        assert line["error"]["message"] == "Boom()"
        assert line["pixwave"]["message"] == "key not found"
        assert line["pixwave"]["code"] == "rejected"

    def test_an_exception_fills_ecs_error_fields(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging("info", json=True, settings=_settings())
        try:
            raise ValueError("bad thing")
        except ValueError:
            structlog.get_logger("pixwave.api").exception("api.unhandled_error")
        [line] = _lines(capsys.readouterr().out)
        assert line["log.level"] == "error"
        assert line["error"]["type"] == "ValueError"
        assert line["error"]["message"] == "bad thing"
        assert "raise ValueError" in line["error"]["stack_trace"]

    def test_a_library_line_is_ecs_json_too(self, capsys: pytest.CaptureFixture[str]) -> None:
        """uvicorn's own handlers are removed: its records reach ours, rendered as ECS."""
        uvicorn_error = logging.getLogger("uvicorn.error")
        uvicorn_error.addHandler(logging.StreamHandler(sys.stderr))
        uvicorn_error.propagate = False
        configure_logging("info", json=True, settings=_settings())
        uvicorn_error.info("Started server process [%d]", 42)
        logging.getLogger("taskiq.worker").error("boom", exc_info=ZeroDivisionError("x"))
        first, second = _lines(capsys.readouterr().out)
        assert first["message"] == "Started server process [42]"
        assert first["log"]["logger"] == "uvicorn.error"
        assert first["service"]["name"] == "pixwave"
        assert second["error"]["type"] == "ZeroDivisionError"
        assert not uvicorn_error.handlers

    def test_python_warnings_are_log_lines(self, capsys: pytest.CaptureFixture[str]) -> None:
        """SQLAlchemy warns through `warnings`: captured, as JSON like the rest."""
        configure_logging("info", json=True, settings=_settings())
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a relationship will copy column", stacklevel=1)
        [line] = _lines(capsys.readouterr().out)
        assert line["log"]["logger"] == "py.warnings"
        assert "a relationship will copy column" in line["message"]

    def test_lines_below_the_level_are_dropped(self, capsys: pytest.CaptureFixture[str]) -> None:
        configure_logging("warning", json=True, settings=_settings())
        structlog.get_logger("pixwave.x").info("quiet")
        logging.getLogger("some.library").info("quiet too")
        structlog.get_logger("pixwave.x").warning("loud")
        assert [line["message"] for line in _lines(capsys.readouterr().out)] == ["loud"]


class TestConsole:
    def test_console_lines_are_readable_for_every_logger(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`make run`: no JSON, ours and a library's alike."""
        configure_logging("info", json=False, settings=_settings())
        structlog.get_logger("pixwave.payments").info("payments.sweep", redriven=3)
        logging.getLogger("uvicorn.error").info("Application startup complete.")
        out = capsys.readouterr().out
        assert "payments.sweep" in out
        assert "redriven=3" in out
        assert "Application startup complete." in out
        assert not any(line.lstrip().startswith("{") for line in out.splitlines())

    def test_log_format_wins_over_the_callers_guess(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """LOG_FORMAT=json in a terminal session still writes JSON (and console the reverse)."""
        configure_logging("info", json=False, settings=_settings(log_format="json"))
        structlog.get_logger("pixwave.x").info("as.json")
        assert _lines(capsys.readouterr().out)[0]["message"] == "as.json"
        configure_logging("info", json=True, settings=_settings(log_format="console"))
        structlog.get_logger("pixwave.x").info("as.console")
        assert not capsys.readouterr().out.startswith("{")

    def test_to_stderr_keeps_stdout_for_the_result(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure_logging("info", json=False, to_stderr=True, settings=_settings())
        structlog.get_logger("pixwave.cli").info("cli.said")
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "cli.said" in captured.err
