"""Structured logs: one ECS JSON object per line in deployments, readable lines on a terminal.

Every line of the process goes through one path, whoever writes it: our structlog calls are
handed to the standard library's ``logging`` (``wrap_for_formatter``), where uvicorn, taskiq,
SQLAlchemy, httpx and Python's own warnings already write; the root logger's handlers then
render each record once per destination with the same processors — context (request id, job),
then masking (`masking.py`), then either the Elastic Common Schema JSON of ``ecs-logging`` or
structlog's console renderer. So a library's line is as JSON, as masked and as correlated as
ours, and a terminal shows readable lines for both.

With ``LOGSTASH_HOST`` set, each JSON line also goes to Logstash over TCP through
``python-logstash-async``: the handler only formats and queues (memory, or the SQLite file at
``LOGSTASH_BUFFER_PATH``); a thread sends, reconnecting. A Logstash outage never blocks nor
fails a log call, and stdout stays the primary channel (that buffer can lose lines on a crash).

ECS field names: see :data:`ECS_FIELDS`. A key that has an ECS field is renamed to it; a key
with a dot is taken as already named; every other key of ours goes under ``pixwave.``, so our
fields can never collide with ECS ones in Elasticsearch (``error`` is an object there, our
``error=repr(exc)`` a string; ``message`` is the line's own text).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import ecs_logging
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from pixwave.observability.masking import mask_event

if TYPE_CHECKING:
    from pixwave.config import Settings

__all__ = [
    "CHATTY_AT_INFO",
    "ECS_FIELDS",
    "SERVICE_NAME",
    "configure_logging",
    "ecs_formatter",
    "logstash_handler",
]

SERVICE_NAME = "pixwave"

#: Libraries whose INFO lines are per-message chatter: taskiq announces every job it runs
#: ("Executing task … with ID …": one line per payment step and per periodic tick), httpx every
#: request ("HTTP Request: …", which our own `gateway.call` line already tells, with more).
CHATTY_AT_INFO = ("taskiq.receiver", "httpx")

#: Keys our code logs (and `context.py` binds) that ECS has a field for. Chosen with care:
#: ``transaction_id`` is *not* ECS ``transaction.id``, which is an APM transaction (a traced
#: request) — Kibana's APM app would link our payments to traces that do not exist — so it is
#: ``pixwave.transaction_id``, like every other key of ours without an ECS meaning.
ECS_FIELDS: Mapping[str, str] = {
    "request_id": "http.request.id",
    "error": "error.message",
    "error_code": "error.code",
    "method": "http.request.method",
    "http_status": "http.response.status_code",
    "path": "url.path",
    "user_id": "user.id",
}
#: Namespace of every other key of ours (``pixwave.transaction_id``, ``pixwave.gateway``,
#: ``pixwave.job``, ``pixwave.latency_ms`` …).
NAMESPACE = "pixwave"

#: The Logstash handler's own worker logs its connection errors: those lines go to stdout
#: only, or an outage would feed the very queue it cannot empty.
_LOGSTASH_OWN_LOGGERS = ("LogProcessingWorker", "logstash_async")
#: Seconds a line waits in the Logstash buffer before it is dropped (stdout has it anyway):
#: bounds the memory a long outage takes, and the size of the SQLite file.
MEMORY_BUFFER_TTL_SECONDS = 3600
DISK_BUFFER_TTL_SECONDS = 24 * 3600


class _CurrentStream:
    """sys.stdout or sys.stderr as it is when each line is written (a test runner swaps them
    per test). A write/flush proxy is all that logging calls on the stream."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self.name)
        return stream

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def isatty(self) -> bool:
        return self._stream().isatty()


class StandardError(_CurrentStream):
    """sys.stderr as it is when each line is written."""

    def __init__(self) -> None:
        super().__init__("stderr")


# --- processors shared by both renderers ---------------------------------------------------


def _exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """An exception as masked text (``exception``) plus its type and message for ECS: a
    traceback quotes values (a CPF in a failed query) like any other text."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        kind, exc, tb = exc_info
        # Masked once, by mask_event, which every chain runs right after this.
        event_dict["exception"] = "".join(traceback.format_exception(kind, exc, tb))
        event_dict["_error_type"] = kind.__name__
        event_dict["_error_message"] = str(exc)
    stack = event_dict.pop("stack_info", None)
    if stack and "exception" not in event_dict:
        event_dict["exception"] = str(stack)
    return event_dict


def _record(event_dict: EventDict) -> logging.LogRecord | None:
    record = event_dict.get("_record")
    return record if isinstance(record, logging.LogRecord) else None


def _console_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Level, time and logger name for the console, from the record (any logger's)."""
    record = _record(event_dict)
    if record is not None:
        event_dict["timestamp"] = datetime.fromtimestamp(record.created, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        event_dict["level"] = record.levelname.lower()
        event_dict["logger"] = record.name
    event_dict.pop("_error_type", None)
    event_dict.pop("_error_message", None)
    return event_dict


def _drop_meta(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


def _service_fields(role: str | None, environment: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "service.name": SERVICE_NAME,
        "event.dataset": f"{SERVICE_NAME}.log",  # what Kibana's Logs app groups lines by
        "host.hostname": socket.gethostname(),
    }
    with contextlib.suppress(PackageNotFoundError):  # a source tree never installed
        fields["service.version"] = version("pixwave")
    if role:
        fields["service.node.roles"] = [role]
    if environment:
        fields["service.environment"] = environment
    return fields


class _ToEcs:
    """Rename an event dict's keys to ECS fields and add the record's own (time, level,
    logger, pid) and the service's; ``ecs_logging.StructlogFormatter`` then renders it."""

    def __init__(self, service: Mapping[str, Any]) -> None:
        self.service = dict(service)

    def __call__(self, _: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        record = _record(event_dict)
        out: dict[str, Any] = {}
        if record is not None:
            out["@timestamp"] = (
                datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                + "Z"
            )
            out["log.level"] = record.levelname.lower()
            out["log.logger"] = record.name
            out["process.pid"] = record.process
        out.update(self.service)
        out["event"] = event_dict.pop("event", "")
        if event_dict.get("_from_structlog"):
            # Our event names (`payments.failed`) as a keyword: `message` is full text, which
            # Kibana cannot count or split by.
            out["event.action"] = out["event"]
        stack_trace = event_dict.pop("exception", None)
        error_type = event_dict.pop("_error_type", None)
        error_message = event_dict.pop("_error_message", None)
        for key, value in event_dict.items():
            if key.startswith("_") or value is None:
                continue
            field = ECS_FIELDS.get(key) or (key if "." in key else f"{NAMESPACE}.{key}")
            out[field] = value
        if stack_trace is not None:
            out["error.stack_trace"] = stack_trace
        if error_type is not None:
            out["error.type"] = error_type
        if error_message is not None:
            out.setdefault("error.message", error_message)
        return out


def _ecs_processors(service: Mapping[str, Any]) -> list[Processor]:
    return [
        _exception,
        mask_event,
        _ToEcs(service),
        # Typed as taking a dict rather than structlog's MutableMapping: same call at runtime.
        ecs_logging.StructlogFormatter(ensure_ascii=False),  # type: ignore[list-item]
    ]


def _console_processors(*, colors: bool) -> list[Processor]:
    return [
        _exception,
        _console_fields,
        _drop_meta,
        mask_event,
        structlog.dev.ConsoleRenderer(colors=colors),
    ]


#: Run on other libraries' records before the shared processors: the request or job they
#: were written in (a SQLAlchemy warning inside a request carries its id).
_FOREIGN_PRE_CHAIN: list[Processor] = [structlog.contextvars.merge_contextvars]


def ecs_formatter(
    *, role: str | None = None, environment: str | None = None
) -> structlog.stdlib.ProcessorFormatter:
    """The ECS JSON formatter, for any handler (stdout, Logstash)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=_ecs_processors(_service_fields(role, environment)),
        foreign_pre_chain=_FOREIGN_PRE_CHAIN,
    )


def console_formatter(*, colors: bool = True) -> structlog.stdlib.ProcessorFormatter:
    """Readable lines for a terminal (``make run``), our lines and libraries' alike."""
    return structlog.stdlib.ProcessorFormatter(
        processors=_console_processors(colors=colors), foreign_pre_chain=_FOREIGN_PRE_CHAIN
    )


class _NotLogstashOwn(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_LOGSTASH_OWN_LOGGERS)


def logstash_handler(
    host: str, port: int, buffer_path: Path | None, formatter: logging.Formatter
) -> logging.Handler:
    """Ship every line to Logstash's TCP input (``json_lines``) without ever waiting for it.

    ``emit`` only formats and queues; the handler's thread writes the queue to its buffer
    (memory, or SQLite at ``buffer_path``) and sends it in batches, every few seconds or on
    ``flush()``, reconnecting each time, so lines written while Logstash is down follow once it
    is back.
    """
    from logstash_async import constants as logstash_constants
    from logstash_async.handler import AsynchronousLogstashHandler

    # The default 30 s wait for the socket to drain delays every delivery after an outage.
    logstash_constants.constants.SOCKET_CLOSE_WAIT_TIMEOUT = 1
    if buffer_path is not None:
        buffer_path.parent.mkdir(parents=True, exist_ok=True)
    handler = AsynchronousLogstashHandler(
        host,
        port,
        database_path=str(buffer_path) if buffer_path is not None else None,
        event_ttl=DISK_BUFFER_TTL_SECONDS if buffer_path else MEMORY_BUFFER_TTL_SECONDS,
    )
    handler.setFormatter(formatter)
    handler.addFilter(_NotLogstashOwn())
    # Started now rather than on the first line: lines a previous run left in the SQLite
    # buffer go out even if this process stays quiet.
    handler._start_worker_thread()
    handler_: logging.Handler = handler
    return handler_


#: Handlers this module put on the root logger, replaced by each call (tests, uvicorn workers).
_installed: list[logging.Handler] = []


def _install(root: logging.Logger, handlers: list[logging.Handler]) -> None:
    for old in _installed:
        root.removeHandler(old)
        old.close()  # the Logstash handler's thread sends what it holds, then stops
    _installed[:] = handlers
    for handler in handlers:
        root.addHandler(handler)


def _route_libraries_to_root(numeric: int) -> None:
    """uvicorn configures its own handlers (plain text, stderr) before the app is loaded;
    SQLAlchemy adds one to its engine logger when ``echo`` is on. Their records go to the root
    handlers instead, to be rendered like every other line."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
        library.setLevel(logging.NOTSET)  # LOG_LEVEL decides, not a level uvicorn set earlier
    # No access log (PixWave serves with access_log=False): uvicorn builds an access line's
    # arguments for every request whenever its logger has a handler anywhere up the tree.
    logging.getLogger("uvicorn.access").propagate = False
    engine = logging.getLogger("sqlalchemy.engine.Engine")
    if not engine.handlers:
        engine.addHandler(logging.NullHandler())  # a handler present: echo adds none
    for name in CHATTY_AT_INFO:
        logging.getLogger(name).setLevel(
            numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        )
    # warnings.warn (SAWarning, DeprecationWarning) as records. Off first: a second call is
    # otherwise a no-op, even when someone (a test runner) has replaced the hook since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)


def configure_logging(
    level: str = "info",
    *,
    json: bool | None = None,
    to_stderr: bool = False,
    settings: Settings | None = None,
    role: str | None = None,
) -> None:
    """Set up every logger of the process: level, format, destinations.

    Servers log to stdout; commands whose stdout is their result (JSON, a token) pass
    ``to_stderr``. Those short-lived commands also leave loggers uncached, so that whatever
    configuration comes later (a test's log capture) still applies to them.

    The format is ``LOG_FORMAT`` when set, else ``json`` (the caller's choice: JSON unless on
    a terminal), else JSON unless the stream is a terminal. ``settings`` (default: the
    process's) also gives the Logstash target and the environment; ``role`` (api, worker,
    scheduler) is written as ``service.node.roles`` on every line.
    """
    if settings is None:
        from pixwave.config import get_settings

        settings = get_settings()
    stream = StandardError() if to_stderr else _CurrentStream("stdout")
    if settings.log_format is not None:
        as_json = settings.log_format == "json"
    elif json is not None:
        as_json = json
    else:
        as_json = not stream.isatty()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    ecs = ecs_formatter(role=role, environment=settings.app_env)

    out = logging.StreamHandler(stream)  # write/flush/isatty: all a handler calls
    out.setFormatter(ecs if as_json else console_formatter(colors=stream.isatty()))
    handlers: list[logging.Handler] = [out]
    if settings.logstash_host:
        handlers.append(
            logstash_handler(
                settings.logstash_host, settings.logstash_port, settings.logstash_buffer_path, ecs
            )
        )
    root = logging.getLogger()
    _install(root, handlers)
    root.setLevel(numeric)
    _route_libraries_to_root(numeric)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=not to_stderr,
    )
