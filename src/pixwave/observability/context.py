"""What every log line carries about where it comes from: a request, or a background job.

One payment is an API request, then jobs in workers (its steps), then webhooks from the gateway
and jobs again. Following it in Kibana needs the same ids on all of those lines, without each
``log.info`` call passing them: they are bound once, in structlog's context variables, by
:class:`RequestContext` (an ASGI middleware) for a request and by :class:`JobLogContext` (a
taskiq middleware) for a job. The job middleware also carries the request id from the request
that enqueued a job to the job itself, as a message label.

Keys bound here are PixWave's plain names (``request_id``, ``transaction_id``, ``job``,
``task_id``); the JSON renderer turns them into ECS fields (``http.request.id``,
``pixwave.transaction_id`` …, see `logging.py`).
"""

from __future__ import annotations

import os
import re
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_ID_LABEL",
    "JobLogContext",
    "RequestContext",
    "current_request_id",
    "safe_request_id",
]

REQUEST_ID_HEADER = "X-Request-ID"
#: The taskiq message label carrying the request id of the request that enqueued a job.
REQUEST_ID_LABEL = "request_id"
#: Our transaction ids (`kit.ids.new_id("txn")`): a job whose argument is one works on that
#: payment, and its lines say so.
TRANSACTION_PREFIX = "txn_"

_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
#: A client's id is echoed in a header and written in every line: only short plain tokens,
#: never anything that could split a header, forge a log line or carry personal data at length.
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def safe_request_id(candidate: str | None) -> str | None:
    """``candidate`` when it is a short safe token (≤ 64 of ``[A-Za-z0-9._-]``), else None."""
    if candidate is not None and _SAFE_ID.fullmatch(candidate):
        return candidate
    return None


def new_request_id() -> str:
    """128 random bits in hex (a UUID4's randomness, at a fifth of its cost per request)."""
    return os.urandom(16).hex()


def current_request_id() -> str | None:
    """The request id bound for the request or job running now, if any (to put on a job)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


class RequestContext:
    """Pure ASGI middleware: a request id for every HTTP request, bound to its log lines and
    echoed in the ``X-Request-ID`` response header.

    A client (or a proxy in front) may send its own ``X-Request-ID`` to correlate with its
    logs; it is kept when safe (:func:`safe_request_id`), replaced otherwise. Pure ASGI rather
    than ``BaseHTTPMiddleware``, which runs the endpoint in another task (its context variables
    would not reach the middleware back) and buffers streaming responses.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = safe_request_id(incoming) or new_request_id()
        raw = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value) for name, value in message.get("headers", ()) if name != _HEADER
                ]
                headers.append((_HEADER, raw))
                message = {**message, "headers": headers}
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


class JobLogContext(TaskiqMiddleware):
    """taskiq middleware: each job's lines name the job, its task id, the transaction it works
    on (an argument starting with ``txn_``) and the request that enqueued it.

    On the sending side it labels each message with the current request id (unless the caller
    set one), so wiring this one middleware into the broker is enough for the id to travel.
    """

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        request_id = current_request_id()
        if request_id is not None and REQUEST_ID_LABEL not in message.labels:
            message.labels[REQUEST_ID_LABEL] = request_id
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        structlog.contextvars.clear_contextvars()  # nothing from a previous job on this task
        context: dict[str, Any] = {"job": message.task_name, "task_id": message.task_id}
        argument = message.args[0] if message.args else None
        if isinstance(argument, str) and argument.startswith(TRANSACTION_PREFIX):
            context["transaction_id"] = argument
        label = message.labels.get(REQUEST_ID_LABEL)
        request_id = safe_request_id(label if isinstance(label, str) else None)
        if request_id is not None:
            context["request_id"] = request_id
        structlog.contextvars.bind_contextvars(**context)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Cleared here, which taskiq calls after a failed job too, rather than in
        ``on_error``: other middlewares' ``on_error`` (retries) still log with the job's
        context."""
        structlog.contextvars.clear_contextvars()
