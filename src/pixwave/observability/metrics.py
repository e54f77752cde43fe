"""Prometheus metrics: every metric PixWave exposes is declared here, by domain.

Domains import the metric objects and update them; nothing else registers metrics. With
``PROMETHEUS_MULTIPROC_DIR`` set (several API or worker processes on one host), prometheus-client
writes each process's values to that directory and `/metrics` aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client import multiprocess as _multiprocess

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
    multiprocess_mode="max",
)
#: Operator webhook delivery attempts, by outcome (`succeeded`, `failed`, `error`).
WEBHOOK_DELIVERY_ATTEMPTS = Counter(
    "pixwave_webhook_delivery_attempts_total",
    "Operator webhook delivery attempts, by outcome.",
    ["outcome"],
)


def registry() -> CollectorRegistry:
    """The registry to expose: the multiprocess aggregate when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        aggregate = CollectorRegistry()
        _multiprocess.MultiProcessCollector(aggregate)  # type: ignore[no-untyped-call]
        return aggregate
    from prometheus_client import REGISTRY

    return REGISTRY


def start_metrics_server(host: str, port: int) -> None:
    """Serve `/metrics` on ``host:port`` from a thread (worker and scheduler processes)."""
    if port:
        start_http_server(port, addr=host, registry=registry())
