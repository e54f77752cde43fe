"""Prometheus metrics: what a real deposit leaves in `/metrics`, who may scrape, several
processes adding up, and job timings."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from taskiq import InMemoryBroker

from pixwave.app import create_app
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.gateways.registry import build_gateway
from pixwave.observability import metrics
from pixwave.observability.endpoints import router as metrics_router
from pixwave.observability.metrics import HTTPMetrics, JobMetrics
from pixwave.resources import Resources
from pixwave.sandbox.embedded import build_simulator
from pixwave.sandbox.server import bind
from tests.conftest import assert_ledger_balances, make_settings, migrated_database, wipe
from tests.factories import create_actor
from tests.servers import ServerThread, run_simulator

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def instrumented(app: FastAPI) -> FastAPI:
    """The app with `/metrics` and the HTTP middleware, unless `create_app` wires them already."""
    if not any(getattr(route, "path", None) == "/metrics" for route in app.routes):
        app.include_router(metrics_router)
    if not any(getattr(m, "cls", None) is HTTPMetrics for m in app.user_middleware):
        app.add_middleware(HTTPMetrics)
    return app


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- a real deposit --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mercadopago() -> Iterator[ServerThread]:
    simulator = build_simulator("mercadopago", public_url="http://127.0.0.1", time_scale=0.001)
    with run_simulator(simulator) as thread:
        yield thread


@pytest.fixture
async def served(
    mercadopago: ServerThread, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    """The API on a real port (its in-process jobs running) over the Mercado Pago simulator."""
    url = await migrated_database("mariadb", Path(tmp_path_factory.getbasetemp()))
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        app_url=f"http://127.0.0.1:{port}",
        queue_connection="sync",
        sandbox_gateways=False,
    )
    gateway = build_gateway("mercadopago", settings, sandbox_url=mercadopago.base_url)
    assert gateway is not None
    resources = build_resources(settings, gateways={"mercadopago": gateway})
    await wipe(resources)
    assert resources.redis is not None
    await resources.redis.flushdb()
    server = uvicorn.Server(
        uvicorn.Config(
            instrumented(create_app(settings, resources)), log_level="warning", lifespan="on"
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=15)
    try:
        yield api, resources
        await assert_ledger_balances(resources)
    finally:
        await api.aclose()
        server.should_exit = True
        await serving
        await resources.close()


class TestDeposit:
    async def test_a_deposit_shows_in_http_payment_and_gateway_metrics(
        self, served: tuple[httpx.AsyncClient, Resources]
    ) -> None:
        """One deposit counts its request by route template, its two statuses and its
        gateway call, each with bounded labels."""
        api, resources = served
        before = parse((await api.get("/metrics")).text)
        actor = await create_actor(resources)
        response = await api.post(
            "/v1/deposits",
            json={"amount": 10_00},
            headers={**actor.headers(), "Prefer": "wait=5"},
        )
        assert response.status_code == 200, response.text
        transaction_id = response.json()["id"]
        await api.get(f"/v1/transactions/{transaction_id}", headers=actor.headers())
        metrics.forget_refresh()
        after = parse((await api.get("/metrics")).text)

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        route = {"method": "POST", "route": "/v1/deposits"}
        assert grew("pixwave_http_requests_total", **route, status="200") == 1
        assert grew("pixwave_http_request_duration_seconds_count", **route) == 1
        by_template = {"method": "GET", "route": "/v1/transactions/{transaction_id}"}
        assert grew("pixwave_http_requests_total", **by_template, status="200") == 1
        assert not any(transaction_id in str(key) for key in after), "an id leaked into labels"
        cash_in = {"type": "cash_in"}
        assert grew(
            "pixwave_payment_transitions_total", **cash_in, status="pending", gateway="none"
        )
        charged = {**cash_in, "status": "awaiting_payment", "gateway": "mercadopago"}
        assert grew("pixwave_payment_transitions_total", **charged) == 1
        call = {"gateway": "mercadopago", "operation": "create_charge"}
        assert grew("pixwave_gateway_calls_total", **call, outcome="succeeded") == 1
        assert grew("pixwave_gateway_call_duration_seconds_count", **call) == 1
        assert value(after, "pixwave_payments_unfinished", status="awaiting_payment") == 1
        assert value(after, "pixwave_gateway_state", gateway="mercadopago", state="up") == 1
        assert value(
            after, "pixwave_gateway_circuit_state", gateway="mercadopago", operation="charge"
        ) == 0  # fmt: skip


# --- who may scrape ------------------------------------------------------------------------


@pytest.fixture
async def scrape(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """``scrape(headers, **settings)``: GET /metrics from an app with those settings."""
    original = resources.settings
    clients: list[httpx.AsyncClient] = []

    async def get(headers: dict[str, str] | None = None, **overrides: Any) -> httpx.Response:
        monkeypatch.setattr(resources, "settings", original.model_copy(update=overrides))
        app = instrumented(create_app(resources.settings, resources))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://pixwave.test"
        )
        clients.append(client)
        return await client.get("/metrics", headers=headers or {})

    yield get
    for client in clients:
        await client.aclose()


class TestScrapeRules:
    async def test_open_without_a_token_outside_production(self, scrape: Any) -> None:
        """No token, a development environment: Prometheus text for anyone."""
        response = await scrape(app_env="local", metrics_token=None)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "pixwave_http_requests_total" in response.text

    async def test_production_without_a_token_is_refused(self, scrape: Any) -> None:
        """Production never publishes metrics without a token, and says how to fix it."""
        response = await scrape(app_env="production", metrics_token=None)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "metrics_token_not_set"
        assert "METRICS_TOKEN" in response.json()["detail"]

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}],
        ids=["none", "wrong-token", "wrong-scheme"],
    )
    async def test_a_missing_or_wrong_token_is_401(
        self, scrape: Any, headers: dict[str, str]
    ) -> None:
        """With METRICS_TOKEN set, only `Bearer <token>` gets in."""
        response = await scrape(headers, app_env="production", metrics_token="s3cret-token")
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"

    async def test_the_right_token_is_200(self, scrape: Any) -> None:
        """The configured bearer token gets the metrics, in production too."""
        response = await scrape(
            {"Authorization": "Bearer s3cret-token"},
            app_env="production",
            metrics_token="s3cret-token",
        )
        assert response.status_code == 200
        assert "# TYPE pixwave_gateway_calls_total counter" in response.text

    async def test_disabled_is_404(self, scrape: Any) -> None:
        """METRICS_ENABLED=false: the path does not exist."""
        response = await scrape(metrics_enabled=False)
        assert response.status_code == 404

    async def test_not_in_the_openapi_document(self, scrape: Any, resources: Resources) -> None:
        """`/metrics` is for the scraper, not part of the API contract."""
        app = instrumented(create_app(resources.settings, resources))
        assert "/metrics" not in app.openapi()["paths"]


def _wsgi_get(settings: Settings, path: str, authorization: str | None) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = b"".join(
        metrics.metrics_wsgi_app(settings)(environ, lambda status, _h: statuses.append(status))
    )
    return statuses[0], body


class TestWorkerPort:
    def test_the_worker_server_applies_the_same_token_rule(self) -> None:
        """The worker/scheduler server refuses a wrong token and serves the right one."""
        settings = make_settings(app_env="production", metrics_token="w0rker")
        assert _wsgi_get(settings, "/metrics", "Bearer nope")[0].startswith("401")
        status, body = _wsgi_get(settings, "/metrics", "Bearer w0rker")
        assert status.startswith("200")
        assert b"pixwave_job_duration_seconds" in body

    def test_production_without_a_token_is_refused_there_too(self) -> None:
        """The worker port follows the API: no token in production, no metrics."""
        status, body = _wsgi_get(make_settings(app_env="production"), "/metrics", None)
        assert status.startswith("403")
        assert b"metrics_token_not_set" in body

    def test_only_the_metrics_path_is_served(self) -> None:
        """Any other path is 404, not a second copy of the metrics."""
        assert _wsgi_get(make_settings(), "/favicon.ico", None)[0].startswith("404")


# --- several processes ---------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from pixwave.observability.metrics import LEDGER_POSTINGS, PAYMENTS_UNFINISHED
    LEDGER_POSTINGS.labels("transfer").inc(int(sys.argv[1]))
    PAYMENTS_UNFINISHED.labels("needs_review").set(int(sys.argv[1]))
    """
)


def _child(directory: Path, amount: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", _CHILD, str(amount)], env=env, check=True, timeout=60)


class TestMultiprocess:
    def test_two_processes_add_up(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Counters of two processes sum; a cluster-wide gauge shows the latest value."""
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        _child(tmp_path, 2)
        _child(tmp_path, 3)
        samples = parse(generate_latest(metrics.registry()).decode())
        assert value(samples, "pixwave_ledger_postings_total", kind="transfer") == 5
        assert value(samples, "pixwave_payments_unfinished", status="needs_review") == 3

    def test_the_directory_is_emptied_before_a_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Values left by an earlier run are not added to the next one's."""
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        _child(tmp_path, 7)
        assert metrics.prepare_multiprocess_dir(2) == tmp_path
        _child(tmp_path, 1)
        samples = parse(generate_latest(metrics.registry()).decode())
        assert value(samples, "pixwave_ledger_postings_total", kind="transfer") == 1

    def test_several_processes_get_a_fresh_directory(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Nothing configured and more than one process: a new directory, exported."""
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        assert metrics.prepare_multiprocess_dir(1) is None
        path = metrics.prepare_multiprocess_dir(3)
        try:
            assert path is not None
            assert path.is_dir()
            assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(path)
        finally:
            # Not monkeypatch.delenv: it would put the value back when the test ends.
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            metrics.remove_multiprocess_dir(path)
        assert not path.exists()


# --- jobs ----------------------------------------------------------------------------------


class TestJobMetrics:
    async def test_job_durations_by_name_and_outcome(self) -> None:
        """The middleware times each run under its job name, failures apart."""
        broker = InMemoryBroker().with_middlewares(JobMetrics())

        async def nap() -> None:
            await asyncio.sleep(0.05)

        async def crash() -> None:
            raise RuntimeError("boom")

        napping = broker.register_task(nap, task_name="tests.metrics.nap")
        crashing = broker.register_task(crash, task_name="tests.metrics.crash")
        ok = {"job": "tests.metrics.nap", "outcome": "succeeded"}
        failed = {"job": "tests.metrics.crash", "outcome": "failed"}
        count_before = REGISTRY.get_sample_value("pixwave_job_duration_seconds_count", ok) or 0
        sum_before = REGISTRY.get_sample_value("pixwave_job_duration_seconds_sum", ok) or 0
        await broker.startup()
        try:
            await (await napping.kiq()).wait_result(timeout=5)
            await (await crashing.kiq()).wait_result(timeout=5)
        finally:
            await broker.shutdown()
        count = REGISTRY.get_sample_value("pixwave_job_duration_seconds_count", ok)
        took = (REGISTRY.get_sample_value("pixwave_job_duration_seconds_sum", ok) or 0) - sum_before
        assert count == count_before + 1
        assert 0.05 <= took < 5
        assert (REGISTRY.get_sample_value("pixwave_job_duration_seconds_count", failed) or 0) >= 1


def test_no_label_can_hold_an_id_or_personal_data() -> None:
    """Every PixWave metric's label names come from closed sets, never ids or people."""
    forbidden = {"user", "user_id", "wallet_id", "transaction_id", "path", "email", "pix_key"}
    declared = [
        item for item in vars(metrics).values() if isinstance(item, Counter | Gauge | Histogram)
    ]
    assert len(declared) >= 15
    for metric in declared:
        assert not forbidden & set(metric._labelnames), metric
