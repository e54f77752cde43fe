"""Prometheus metrics: every metric PixWave exposes is declared here, by domain.

Domains import the metric objects (or the small helpers below) and update them; nothing else
registers metrics. Label values are always drawn from closed sets — route templates, enum
values, configured gateway names, job names — never ids, raw paths or personal data, so the
number of series stays bounded whatever the traffic.

With ``PROMETHEUS_MULTIPROC_DIR`` set (several API or worker processes on one host),
prometheus-client writes each process's values to files in that directory and `/metrics`
aggregates them (:func:`registry`). The directory must be emptied before the first process
starts (:func:`prepare_multiprocess_dir`); see docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import ThreadingWSGIServer
from starlette.routing import Mount
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from pixwave.exceptions import Forbidden, NotFound, PixWaveError, Unauthenticated

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from sqlalchemy.ext.asyncio import AsyncSession
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from pixwave.config import Settings
    from pixwave.gateways.health import GatewayHealth, Verdict
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.metrics")

#: Latencies of our own HTTP answers: most take milliseconds; `Prefer: wait` holds up to 10 s.
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: A gateway call: tens to hundreds of ms when healthy, up to the read timeout (10 s) when not.
GATEWAY_BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
#: A job: sweeps take ms; an advance with retries and backoff can take tens of seconds.
JOB_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)

# --- HTTP ------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "pixwave_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "pixwave_http_request_duration_seconds",
    "Time from receiving a request to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)

# --- payments --------------------------------------------------------------------------------

#: Every committed status change of a transaction, creation included (its first status).
PAYMENT_TRANSITIONS = Counter(
    "pixwave_payment_transitions_total",
    "Transactions entering a status (creation included), by type, new status and gateway.",
    ["type", "status", "gateway"],
)
PAYMENT_RETRIES = Counter(
    "pixwave_payment_retries_total",
    "Payments engine retries of a failed call on the same gateway, by operation and gateway.",
    ["operation", "gateway"],
)
PAYMENT_FAILOVERS = Counter(
    "pixwave_payment_failovers_total",
    "Times the payments engine left a gateway for another, by operation, the gateway left "
    "and why (retries_exhausted, circuit_open).",
    ["operation", "gateway", "reason"],
)
PAYMENT_ALERTS = Counter(
    "pixwave_payment_alerts_total",
    "alert.* outbox events the payments engine committed, by alert.",
    ["alert"],
)
# The two below are read from the database at scrape time (`observe_payments`): every process
# reports the same cluster-wide value, the most recent wins within one host.
PAYMENTS_UNFINISHED = Gauge(
    "pixwave_payments_unfinished",
    "Transactions in an unfinished status, by status.",
    ["status"],
    multiprocess_mode="mostrecent",
)
PAYMENTS_OLDEST_UNFINISHED = Gauge(
    "pixwave_payments_unfinished_oldest_age_seconds",
    "Age since creation of the oldest transaction in each unfinished status (0: none).",
    ["status"],
    multiprocess_mode="mostrecent",
)

# --- gateways --------------------------------------------------------------------------------

GATEWAY_CALLS = Counter(
    "pixwave_gateway_calls_total",
    "HTTP calls to a gateway, by gateway, connector operation and outcome "
    "(succeeded, rejected, unavailable, ambiguous).",
    ["gateway", "operation", "outcome"],
)
GATEWAY_CALL_DURATION = Histogram(
    "pixwave_gateway_call_duration_seconds",
    "Latency of HTTP calls to a gateway, by gateway and connector operation.",
    ["gateway", "operation"],
    buckets=GATEWAY_BUCKETS,
)
#: 0 closed, 1 half-open, 2 open — so ``>= 1`` reads "not taking normal traffic".
GATEWAY_CIRCUIT_STATE = Gauge(
    "pixwave_gateway_circuit_state",
    "Circuit breaker per gateway and engine operation: 0 closed, 1 half-open, 2 open.",
    ["gateway", "operation"],
    multiprocess_mode="mostrecent",
)
GATEWAY_STATE = Gauge(
    "pixwave_gateway_state",
    "1 for the state a gateway is in (up, degraded, down, idle, disabled), 0 for the others.",
    ["gateway", "state"],
    multiprocess_mode="mostrecent",
)

# --- jobs ------------------------------------------------------------------------------------

JOB_DURATION = Histogram(
    "pixwave_job_duration_seconds",
    "Background job run time, by job name and outcome (succeeded, failed).",
    ["job", "outcome"],
    buckets=JOB_BUCKETS,
)
JOB_QUEUE_MESSAGES = Gauge(
    "pixwave_job_queue_messages",
    "Job messages by queue and state: waiting (not yet delivered to a worker) and pending "
    "(delivered, not acknowledged yet).",
    ["queue", "state"],
    multiprocess_mode="mostrecent",
)

# --- ledger ----------------------------------------------------------------------------------

LEDGER_POSTINGS = Counter(
    "pixwave_ledger_postings_total",
    "Committed ledger transactions, by kind (cash_in, cash_out, transfer, refund, adjustment).",
    ["kind"],
)

#: Payments per group commit (see ``kit/groupcommit.py``), by kind (transfers): 1
#: means no one else joined.
GROUP_COMMIT_SIZE = Histogram(
    "pixwave_group_commit_size",
    "Payments sent to the database in one group commit, by kind.",
    ["kind"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
GROUP_COMMIT_FALLBACKS = Counter(
    "pixwave_group_commit_fallbacks_total",
    "Payments whose group commit failed as a whole and that ran on their own instead, by kind.",
    ["kind"],
)

# --- events out ------------------------------------------------------------------------------

#: Events the relay has handed on, by sink (`sns`, `webhooks`, `log`) and event type.
OUTBOX_PUBLISHED = Counter(
    "pixwave_outbox_events_published_total",
    "Outbox events published, by sink and event type.",
    ["sink", "event_type"],
)
#: Age of the oldest unpublished outbox event (0 when none is waiting).
OUTBOX_LAG_SECONDS = Gauge(
    "pixwave_outbox_lag_seconds",
    "Age in seconds of the oldest outbox event not yet published.",
    multiprocess_mode="livemostrecent",
)
#: Operator webhook delivery attempts, by outcome (`succeeded`, `failed`, `error`).
WEBHOOK_DELIVERY_ATTEMPTS = Counter(
    "pixwave_webhook_delivery_attempts_total",
    "Operator webhook delivery attempts, by outcome.",
    ["outcome"],
)


# --- rate limiting ---------------------------------------------------------------------------

RATELIMIT_REJECTED = Counter(
    "pixwave_ratelimit_rejected_total",
    "Requests refused with 429 by the rate limiter, by the limit they were over "
    "(token, ip, auth_failures).",
    ["limit"],
)
RATELIMIT_UNAVAILABLE = Counter(
    "pixwave_ratelimit_unavailable_total",
    "Rate limiter calls to Redis that failed or timed out (each let its request through "
    "unlimited).",
)


# --- exposition ------------------------------------------------------------------------------


def registry() -> CollectorRegistry:
    """The registry to expose: the multiprocess aggregate when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        aggregate = CollectorRegistry()
        _multiprocess.MultiProcessCollector(aggregate)  # type: ignore[no-untyped-call]
        return aggregate
    from prometheus_client import REGISTRY

    return REGISTRY


def prepare_multiprocess_dir(processes: int) -> Path | None:
    """Before starting several processes that record metrics: empty (or create) the directory
    of prometheus-client's multiprocess mode and export it to the children.

    Files left by an earlier run would be added to this run's counters, so the directory is
    emptied here — once, by the parent, never by a child (it would erase its siblings' live
    values). Uses PROMETHEUS_MULTIPROC_DIR when the operator set it (an ``emptyDir`` volume),
    a fresh temporary directory otherwise; returns None for one process with nothing set.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    if processes <= 1:
        return None
    path = Path(tempfile.mkdtemp(prefix="pixwave-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def remove_multiprocess_dir(path: Path | None) -> None:
    """Remove a directory :func:`prepare_multiprocess_dir` created (not an operator's)."""
    if path is not None and path.name.startswith("pixwave-metrics-"):
        shutil.rmtree(path, ignore_errors=True)


class MetricsTokenNotSet(Forbidden):
    """Production must not publish its metrics to whoever can reach the port."""

    code = "metrics_token_not_set"
    title = "METRICS_TOKEN must be set to serve metrics in production"


def check_scrape(settings: Settings, authorization: str | None) -> PixWaveError | None:
    """The one rule for every `/metrics` (API and worker ports): the error to answer, or None.

    METRICS_ENABLED=false: 404. METRICS_TOKEN set: ``Authorization: Bearer <token>``,
    compared in constant time (401 otherwise). Unset: open, except with APP_ENV=production,
    where every scrape is refused (403) until a token is set.
    """
    if not settings.metrics_enabled:
        return NotFound("metrics are not served (METRICS_ENABLED=false)")
    token = settings.metrics_token
    if token is None:
        if settings.is_production:
            return MetricsTokenNotSet(
                "/metrics is refused with APP_ENV=production until METRICS_TOKEN is set; set "
                "it and scrape with `Authorization: Bearer <METRICS_TOKEN>`"
            )
        return None
    scheme, _, given = (authorization or "").partition(" ")
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not matches:
        return Unauthenticated("/metrics needs `Authorization: Bearer <METRICS_TOKEN>`")
    return None


def metrics_wsgi_app(settings: Settings) -> Callable[..., Iterable[bytes]]:
    """prometheus-client's WSGI app behind :func:`check_scrape`, on `/metrics` only."""
    exposition = make_wsgi_app(registry())

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/metrics/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; metrics are at /metrics\n"]
        refusal = check_scrape(settings, environ.get("HTTP_AUTHORIZATION"))
        if refusal is not None:
            body = json.dumps(refusal.problem("/metrics")).encode()
            status = HTTPStatus(refusal.status_code)
            start_response(
                f"{status.value} {status.phrase}",
                [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def start_metrics_server(host: str, port: int) -> None:
    """Serve `/metrics` on ``host:port`` from a thread (worker and scheduler processes).

    The same rules as the API's `/metrics` (METRICS_ENABLED, METRICS_TOKEN, production). In
    multiprocess mode one server per host is enough — it aggregates every process's files. A
    port already taken is logged, never fatal.
    """
    from pixwave.config import get_settings

    settings = get_settings()
    if not port or not settings.metrics_enabled:
        return
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        address_family = family

    try:
        server = make_server(
            host, port, metrics_wsgi_app(settings), Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        # Metrics are not worth a worker: a port taken (a sibling process, another role on
        # the same host) is reported, and the process goes on with its jobs.
        log.warning("metrics.server_not_started", host=host, port=port, error=str(exc))
        return
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics.serving", host=host, port=port)


# --- HTTP middleware -------------------------------------------------------------------------

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no route matched (404s, bodies refused before routing).
UNMATCHED: Final = "unmatched"


class HTTPMetrics:
    """Pure ASGI middleware counting and timing every HTTP request by its route *template*
    (`/v1/transactions/{transaction_id}`), never the raw path: one series per route, not one
    per id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            counter, histogram = self._child(method, _route_of(scope, root_path), status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)

    def _child(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_REQUEST_DURATION.labels(method, route),
            )
        return children


def _route_of(scope: Scope, root_path: str) -> str:
    """The matched route's template, prefixed by the mounts it went through (their paths are
    fixed strings here, e.g. the sandbox's); :data:`UNMATCHED` when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or isinstance(route, Mount):  # a mount nothing inside matched
        return UNMATCHED
    mounted = scope.get("root_path", "")
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + path if path else prefix or "/"


# --- payments, ledger, gateways: helpers for the instrumented code ----------------------------


def count_on_commit(session: AsyncSession, child: Any) -> None:
    """Increment a labelled counter once ``session``'s transaction commits (not if it rolls
    back): what is counted is what really happened."""
    from pixwave.unit_of_work import after_commit

    async def increment() -> None:
        child.inc()

    after_commit(session, increment)


def count_transition(session: AsyncSession, type_: str, status: str, gateway: str | None) -> None:
    """A transaction created in, or moved to, ``status`` (counted at commit)."""
    count_on_commit(session, PAYMENT_TRANSITIONS.labels(type_, status, gateway or "none"))


_GATEWAY_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_gateway_call(gateway: str, operation: str, outcome: str, latency_ms: int) -> None:
    """One HTTP call to a gateway (label children cached: this is on every payment's path)."""
    key = (gateway, operation, outcome)
    children = _GATEWAY_CHILDREN.get(key)
    if children is None:
        children = _GATEWAY_CHILDREN[key] = (
            GATEWAY_CALLS.labels(gateway, operation, outcome),
            GATEWAY_CALL_DURATION.labels(gateway, operation),
        )
    children[0].inc()
    children[1].observe(latency_ms / 1000)


_CIRCUIT_VALUES: Final = {"closed": 0, "half_open": 1, "open": 2}
_HEALTH_STATES: Final = ("up", "degraded", "down", "idle", "disabled")


def observe_gateway_status(
    gateway: str, operations: dict[str, GatewayHealth], verdict: Verdict
) -> None:
    """Set the circuit and state gauges from a freshly computed gateway status."""
    for operation, health in operations.items():
        GATEWAY_CIRCUIT_STATE.labels(gateway, operation).set(_CIRCUIT_VALUES[health.circuit])
    current = str(verdict.state)
    for state in _HEALTH_STATES:
        GATEWAY_STATE.labels(gateway, state).set(1 if state == current else 0)


# --- values read at scrape time ---------------------------------------------------------------


async def observe_queue_depth(resources: Resources) -> None:
    """Set the job queue gauges from the broker's backend (one or two Redis round trips).

    Each queue backend has its reader in :data:`QUEUE_DEPTH_READERS`; the in-memory queue has
    none (its jobs live and die with the process). SQS's is ``GetQueueAttributes``:
    ApproximateNumberOfMessages (waiting) and ApproximateNumberOfMessagesNotVisible (pending).
    """
    reader = QUEUE_DEPTH_READERS.get(resources.settings.queue_backend)
    if reader is None:
        return
    for queue, waiting, pending in await reader(resources):
        JOB_QUEUE_MESSAGES.labels(queue, "waiting").set(waiting)
        JOB_QUEUE_MESSAGES.labels(queue, "pending").set(pending)


#: Most entries counted by hand when Redis cannot tell a group's lag (after trimming).
_LAG_SCAN_LIMIT: Final = 1000


async def _redis_stream_depth(resources: Resources) -> list[tuple[str, int, int]]:
    """Waiting = the consumer group's lag (entries not yet delivered); pending = delivered,
    not acknowledged. XLEN alone would count acknowledged history up to the stream's cap."""
    from redis.exceptions import ResponseError

    from pixwave.worker.broker import GROUP, STREAM

    redis = resources.redis
    if redis is None:
        return []
    try:
        groups: list[dict[str, Any]] = await redis.xinfo_groups(STREAM)
    except ResponseError:  # no stream yet: nothing was ever enqueued
        return [(STREAM, 0, 0)]
    group = next((g for g in groups if _text(g.get("name")) == GROUP), None)
    if group is None:  # no worker has ever read: everything waits
        return [(STREAM, int(await redis.xlen(STREAM)), 0)]
    lag = group.get("lag")
    if lag is None:
        after = _text(group.get("last-delivered-id")) or "0-0"
        lag = len(await redis.xrange(STREAM, min=f"({after}", count=_LAG_SCAN_LIMIT) or ())
    return [(STREAM, int(lag), int(group.get("pending") or 0))]


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


#: (queue, waiting, pending) per queue of a backend.
QueueDepthReader = Callable[["Resources"], Awaitable[list[tuple[str, int, int]]]]


async def _sqs_depth(resources: Resources) -> list[tuple[str, int, int]]:
    """ApproximateNumberOfMessages (waiting) and …NotVisible (received, not yet deleted)."""
    from pixwave.worker.sqs import SqsBroker

    broker = resources.broker
    if not isinstance(broker, SqsBroker):
        return []
    waiting, pending = await broker.depth()
    return [(broker.queue_url.rsplit("/", 1)[-1], waiting, pending)]


QUEUE_DEPTH_READERS: Final[dict[str, QueueDepthReader]] = {
    "redis": _redis_stream_depth,
    "sqs": _sqs_depth,
}


async def observe_payments(resources: Resources) -> None:
    """Set the unfinished-payments gauges: one grouped query on the (status, …) index."""
    from sqlalchemy import func, select

    from pixwave.payments.repository import TABLE
    from pixwave.payments.status import UNFINISHED

    statuses = sorted(str(status) for status in UNFINISHED)
    statement = (
        select(TABLE.c.status, func.count(), func.min(TABLE.c.created_at))
        .where(TABLE.c.status.in_(statuses))
        .group_by(TABLE.c.status)
    )
    async with resources.sessionmaker() as session:
        rows = (await session.execute(statement)).all()
    now = datetime.now(UTC)
    found = {str(status): (int(count), oldest) for status, count, oldest in rows}
    for status in statuses:
        count, oldest = found.get(status, (0, None))
        PAYMENTS_UNFINISHED.labels(status).set(count)
        age = 0.0
        if isinstance(oldest, datetime):
            aware = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = max(0.0, (now - aware).total_seconds())
        PAYMENTS_OLDEST_UNFINISHED.labels(status).set(age)


async def observe_gateways(resources: Resources) -> None:
    """Compute every gateway's status, which sets the circuit and state gauges."""
    router = getattr(resources, "router", None)
    if router is not None:
        await router.overview()


#: What a scrape of the API reads fresh, each on its own: one failing leaves the others.
OBSERVERS: Final[tuple[Callable[[Resources], Awaitable[None]], ...]] = (
    observe_gateways,
    observe_queue_depth,
    observe_payments,
)
#: A scrape never waits longer than this for the values above (stale values are served).
REFRESH_TIMEOUT_SECONDS: Final = 2.0
#: Scrapes closer together than this (several Prometheus replicas) reuse the last reading.
REFRESH_MIN_INTERVAL_SECONDS: Final = 5.0
_last_refresh = 0.0


async def refresh(resources: Resources) -> None:
    """Read the cluster-wide values (gateways, queue, unfinished payments) before a scrape."""
    global _last_refresh
    now = time.monotonic()
    if now - _last_refresh < REFRESH_MIN_INTERVAL_SECONDS:
        return
    _last_refresh = now
    results = await asyncio.gather(
        *(asyncio.wait_for(observer(resources), REFRESH_TIMEOUT_SECONDS) for observer in OBSERVERS),
        return_exceptions=True,
    )
    for observer, result in zip(OBSERVERS, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("metrics.refresh_failed", observer=observer.__name__, error=repr(result))


def forget_refresh() -> None:
    """Let the next scrape read fresh values (tests, and after a configuration change)."""
    global _last_refresh
    _last_refresh = 0.0


# --- taskiq middleware -----------------------------------------------------------------------


class JobMetrics(TaskiqMiddleware):
    """Times every job by its name (the registered task name: a closed set) and outcome.

    Timed here with a monotonic clock: taskiq's own ``execution_time`` is rounded to 10 ms,
    coarser than most jobs.
    """

    #: Runs whose end was never reported (a cancelled receiver) are forgotten past this many.
    MAX_IN_FLIGHT: Final = 100_000

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        if len(self._started) >= self.MAX_IN_FLIGHT:
            self._started.clear()
        self._started[message.task_id] = time.perf_counter()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self._started.pop(message.task_id, None)
        elapsed = (
            time.perf_counter() - started if started is not None else float(result.execution_time)
        )
        outcome = "failed" if result.is_err else "succeeded"
        JOB_DURATION.labels(message.task_name, outcome).observe(elapsed)
