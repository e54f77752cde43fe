"""Fault injection, exercised over real HTTP on a minimal simulator.

The provider simulators reuse exactly this machinery; their own tests cover their APIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import random
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter

from pixwave.sandbox import server as sandbox_server
from pixwave.sandbox.callbacks import WebhookDispatcher
from pixwave.sandbox.core import Simulator, SimulatorConfig
from pixwave.sandbox.faults import FaultConfig, FaultInjector, FaultRule, Latency, route
from pixwave.sandbox.mercadopago.simulator import WEBHOOK_SCHEDULE
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink


class CounterSimulator(Simulator[SimulatorConfig]):
    """A provider with one mutating and one reading endpoint, to see effects of faults."""

    name: ClassVar[str] = "counter"
    routes: ClassVar = (
        route("POST", "/v1/items", "items.create"),
        route("GET", "/v1/items", "items.list"),
    )
    webhook_schedule = WEBHOOK_SCHEDULE
    webhook_timeout = 2.0

    def __init__(self) -> None:
        super().__init__(SimulatorConfig())
        self.items: list[int] = []

    def provider_router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/v1/items", status_code=201)
        async def create() -> dict[str, int]:
            self.items.append(len(self.items) + 1)
            return {"id": self.items[-1]}

        @router.get("/v1/items")
        async def list_items() -> dict[str, list[int]]:
            return {"items": self.items}

        return router

    def sandbox_router(self) -> APIRouter:
        return APIRouter()

    def error_body(self, status: int, reason: str) -> dict[str, Any]:
        return {"error": reason, "status": status}

    def clear_state(self) -> None:
        self.items.clear()

    def counts(self) -> dict[str, int]:
        return {"items": len(self.items)}


@pytest.fixture(scope="module")
def simulator() -> CounterSimulator:
    return CounterSimulator()


@pytest.fixture(scope="module")
def server(simulator: CounterSimulator) -> Iterator[ServerThread]:
    with run_simulator(simulator) as thread:
        yield thread


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as http:
        http.post("/_sandbox/reset").raise_for_status()
        yield http
        http.post("/_sandbox/reset")


def items(client: httpx.Client) -> list[int]:
    response = client.get("/v1/items")
    response.raise_for_status()
    result: list[int] = response.json()["items"]
    return result


class TestErrorRate:
    def test_full_error_rate_answers_the_status_without_effect(self, client: httpx.Client) -> None:
        """An injected 5xx is an error before processing: nothing is created."""
        client.put("/_sandbox/faults/items.create", json={"error_rate": 1, "error_status": 502})
        response = client.post("/v1/items")
        assert response.status_code == 502
        assert response.headers["x-sandbox-fault"] == "error"
        assert response.json() == {"error": "error", "status": 502}
        assert items(client) == []

    def test_rule_for_one_operation_leaves_the_others_alone(self, client: httpx.Client) -> None:
        """A rule on items.create does not touch items.list."""
        client.put("/_sandbox/faults/items.create", json={"error_rate": 1})
        assert client.get("/v1/items").status_code == 200

    def test_specific_rule_wins_over_the_wildcard(self, client: httpx.Client) -> None:
        """'*' applies unless the operation has a rule of its own."""
        client.put("/_sandbox/faults", json={"rules": {"*": {"error_rate": 1}, "items.list": {}}})
        assert client.post("/v1/items").status_code == 500
        assert client.get("/v1/items").status_code == 200

    def test_admin_routes_are_never_faulted(self, client: httpx.Client) -> None:
        """A total outage must still let the operator clear it."""
        client.put("/_sandbox/faults/*", json={"outage": "503"})
        assert client.get("/_sandbox/faults").status_code == 200
        assert client.delete("/_sandbox/faults").status_code == 200
        assert client.get("/v1/items").status_code == 200

    def test_partial_rate_with_a_seed_replays_identically(self, client: httpx.Client) -> None:
        """The same seed gives the same sequence of failures, so a failing run can be replayed."""

        def run() -> list[int]:
            client.put("/_sandbox/faults", json={"seed": 42, "rules": {"*": {"error_rate": 0.5}}})
            return [client.get("/v1/items").status_code for _ in range(16)]

        first, second = run(), run()
        assert first == second
        assert {200, 500} == set(first)


class TestOutage:
    def test_503_outage_answers_with_retry_after(self, client: httpx.Client) -> None:
        """An outage in 503 mode answers every provider route with 503 and Retry-After."""
        client.put("/_sandbox/faults/*", json={"outage": "503", "retry_after": 7})
        response = client.post("/v1/items")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert items_after_clear(client) == []

    def test_refuse_outage_refuses_connections_then_ends(self, client: httpx.Client) -> None:
        """'refuse' closes the port (a connect error, like a dead host) for outage_seconds."""
        response = client.put(
            "/_sandbox/faults/*", json={"outage": "refuse", "outage_seconds": 0.5}
        )
        assert response.json()["refusing_connections"] is True
        with httpx.Client(base_url=str(client.base_url), timeout=2) as fresh:
            with pytest.raises(httpx.ConnectError):
                fresh.get("/v1/items")
            back = wait_until_reachable(fresh)
        assert back.status_code == 200
        assert client.get("/_sandbox/faults").json()["refusing_connections"] is False

    def test_the_port_taken_meanwhile_is_bound_again_once_free(
        self, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While the port was closed an outgoing connection got it as its local port (the
        kernel hands out free ephemeral ports), so binding it again fails for a while: the
        simulator keeps trying and listens again once it can, instead of refusing for good."""
        real_bind = sandbox_server.bind
        refused: list[int] = []

        def taken_three_times(host: str, port: int, backlog: int = 2048) -> socket.socket:
            if len(refused) < 3:
                refused.append(port)
                raise OSError(errno.EADDRINUSE, "Address already in use")
            return real_bind(host, port, backlog)

        monkeypatch.setattr(sandbox_server, "bind", taken_three_times)
        client.put("/_sandbox/faults/*", json={"outage": "refuse", "outage_seconds": 0.2})
        with httpx.Client(base_url=str(client.base_url), timeout=2) as fresh:
            back = wait_until_reachable(fresh)
        assert back.status_code == 200
        assert refused == [client.base_url.port] * 3

    def test_refuse_needs_a_duration(self, client: httpx.Client) -> None:
        """Without outage_seconds nobody could reach the admin routes to end it."""
        response = client.put("/_sandbox/faults/*", json={"outage": "refuse"})
        assert response.status_code == 422

    def test_503_outage_with_a_duration_ends_by_itself(self, client: httpx.Client) -> None:
        """A timed outage clears itself and keeps the rule's other faults."""
        client.put(
            "/_sandbox/faults/*",
            json={"outage": "503", "outage_seconds": 0.2, "latency": {"fixed_ms": 1}},
        )
        assert client.get("/v1/items").status_code == 503
        deadline = 50
        while client.get("/v1/items").status_code == 503 and deadline:
            deadline -= 1
            threading.Event().wait(0.05)
        assert client.get("/v1/items").status_code == 200
        rules = client.get("/_sandbox/faults").json()["config"]["rules"]
        assert rules["*"]["latency"] == {"fixed_ms": 1.0}
        assert "outage" not in rules["*"]

    def test_refuse_is_only_for_the_whole_server(self, client: httpx.Client) -> None:
        """Refusing one operation makes no sense (same port): a clear 422."""
        response = client.put(
            "/_sandbox/faults/items.create", json={"outage": "refuse", "outage_seconds": 1}
        )
        assert response.status_code == 422
        assert "'*'" in response.json()["message"]


def items_after_clear(client: httpx.Client) -> list[int]:
    client.delete("/_sandbox/faults")
    return items(client)


def wait_until_reachable(http: httpx.Client) -> httpx.Response:
    for _ in range(100):
        try:
            return http.get("/v1/items")
        except httpx.ConnectError:
            threading.Event().wait(0.05)
    raise AssertionError("the simulator did not listen again")


class TestRateLimit:
    def test_requests_over_the_limit_get_429_with_retry_after(
        self, client: httpx.Client, simulator: CounterSimulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Within one second, the requests past the limit are refused with Retry-After; the
        next second lets the limit through again."""
        now = [100.2]
        monkeypatch.setattr(simulator.faults, "monotonic", lambda: now[0])
        client.put("/_sandbox/faults/items.create", json={"rate_limit": 2, "retry_after": 3})
        responses = [client.post("/v1/items") for _ in range(5)]
        assert [r.status_code for r in responses] == [201, 201, 429, 429, 429]
        assert all(r.headers["retry-after"] == "3" for r in responses[2:])
        now[0] = 101.0
        assert [client.post("/v1/items").status_code for _ in range(3)] == [201, 201, 429]
        assert len(items(client)) == 4


class TestLatency:
    def test_fixed_latency_is_recorded_per_decision(self, client: httpx.Client) -> None:
        """The added delay is visible in the decision log (the benchmark measures, not tests)."""
        client.put("/_sandbox/faults/items.list", json={"latency": {"fixed_ms": 20}})
        client.get("/v1/items")
        recent = client.get("/_sandbox/faults").json()["recent"]
        assert recent[-1]["operation"] == "items.list"
        assert recent[-1]["delay_ms"] == 20.0

    def test_distributions_are_seeded(self) -> None:
        """Uniform and normal latencies come from the seeded generator."""
        uniform = Latency(min_ms=10, max_ms=20)
        normal = Latency(mean_ms=50, stddev_ms=500)
        first = [uniform.sample(random.Random(7)) for _ in range(3)]
        assert first == [uniform.sample(random.Random(7)) for _ in range(3)]
        assert all(0.010 <= x <= 0.020 for x in first)
        assert all(normal.sample(random.Random(i)) >= 0 for i in range(50))

    def test_one_shape_only(self) -> None:
        """A latency must be fixed, uniform or normal, not a mixture."""
        with pytest.raises(ValueError, match="exactly one"):
            Latency(fixed_ms=1, mean_ms=3)
        with pytest.raises(ValueError, match="min_ms <= max_ms"):
            Latency(min_ms=5, max_ms=1)


class TestProcessThenTimeout:
    def test_the_operation_takes_effect_and_the_answer_never_comes(
        self, client: httpx.Client
    ) -> None:
        """The case that pays twice elsewhere: the client times out, the item exists."""
        client.put("/_sandbox/faults/items.create", json={"timeout_rate": 1, "hang_seconds": 5})
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/items", timeout=httpx.Timeout(5, read=0.3))
        assert items(client) == [1]
        assert client.get("/_sandbox/faults").json()["recent"][-1]["action"] == "timeout"

    def test_a_patient_client_sees_the_connection_dropped(self, client: httpx.Client) -> None:
        """After hang_seconds the server gives up; still no successful answer."""
        client.put("/_sandbox/faults/items.create", json={"timeout_rate": 1, "hang_seconds": 0.2})
        response = None
        with contextlib.suppress(httpx.RemoteProtocolError, httpx.ReadError):
            response = client.post("/v1/items")
        assert response is None or response.status_code >= 500
        with httpx.Client(base_url=str(client.base_url), timeout=5) as fresh:
            assert items(fresh) == [1]


class TestAdmin:
    def test_unknown_operation_is_a_clear_error(self, client: httpx.Client) -> None:
        """A typo in an operation name is refused, listing the known ones."""
        response = client.put("/_sandbox/faults/items.delete", json={"error_rate": 1})
        assert response.status_code == 422
        assert "items.create" in response.json()["message"]

    def test_invalid_rule_is_422(self, client: httpx.Client) -> None:
        """Rates are probabilities and error statuses are 5xx."""
        assert client.put("/_sandbox/faults/*", json={"error_rate": 2}).status_code == 422
        assert client.put("/_sandbox/faults/*", json={"error_status": 404}).status_code == 422

    def test_reset_clears_state_faults_and_clock(self, client: httpx.Client) -> None:
        """Reset returns the simulator to a fresh start."""
        client.post("/v1/items")
        client.put("/_sandbox/faults/*", json={"latency": {"fixed_ms": 1}})
        client.post("/_sandbox/clock/advance", json={"seconds": 3600})
        client.post("/_sandbox/reset")
        summary = client.get("/_sandbox").json()
        assert summary["resources"] == {"items": 0}
        assert summary["faults"]["config"]["rules"] == {}

    def test_clock_advance_moves_simulated_time(self, client: httpx.Client) -> None:
        """Advancing the clock is how tests reach expiry without waiting."""
        before = datetime.fromisoformat(client.get("/_sandbox").json()["now"])
        after = client.post("/_sandbox/clock/advance", json={"seconds": 7200}).json()["now"]
        assert datetime.fromisoformat(after) - before >= timedelta(hours=2)

    def test_config_patch_validates(self, client: httpx.Client) -> None:
        """The time scale must be positive; a bad value changes nothing."""
        assert client.patch("/_sandbox/config", json={"time_scale": 0}).status_code == 422
        assert client.patch("/_sandbox/config", json={"time_scale": 0.01}).status_code == 200
        assert client.get("/_sandbox/config").json()["time_scale"] == 0.01


class TestInjectorUnit:
    async def test_mounted_simulator_cannot_refuse(self) -> None:
        """Without a listener (mounted in the API) only 503 outages exist."""
        injector = FaultInjector(["a"])
        with pytest.raises(ValueError, match="standalone"):
            await injector.configure(
                FaultConfig(rules={"*": FaultRule(outage="refuse", outage_seconds=1)})
            )


class TestWebhookDispatcher:
    async def test_retries_on_the_schedule_until_delivered(self) -> None:
        """A failing receiver is retried (time-scaled) and the attempts are recorded."""
        sink = WebhookSink(status=500)
        with run_sink(sink) as thread:
            dispatcher = WebhookDispatcher(schedule=(1.0, 1.0, 1.0), timeout=2, time_scale=0.01)
            delivery = dispatcher.submit(f"{thread.base_url}/hook", b"{}", topic="t")
            for _ in range(200):
                if delivery.attempts and delivery.attempts[0].status is not None:
                    break
                await asyncio.sleep(0.01)
            sink.status = 200
            await dispatcher.drain(within=5)
            await dispatcher.aclose()
        assert delivery.delivered
        assert [a.status for a in delivery.attempts][-1] == 200
        assert 500 in [a.status for a in delivery.attempts]

    async def test_sends_at_most_max_in_flight_at_once(self) -> None:
        """A burst of notifications to a slow receiver: never more than the limit in flight,
        every one delivered."""
        in_flight = peak = 0

        async def slow(_: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return httpx.Response(200)

        dispatcher = WebhookDispatcher(
            schedule=(1.0,), timeout=2, transport=httpx.MockTransport(slow), max_in_flight=4
        )
        deliveries = [
            dispatcher.submit(f"http://receiver.test/{n}", b"{}", topic="t") for n in range(40)
        ]
        await dispatcher.drain(within=10)
        await dispatcher.aclose()
        assert all(d.delivered for d in deliveries)
        assert peak == 4

    async def test_gives_up_after_the_schedule(self) -> None:
        """After the last scheduled attempt the delivery is marked abandoned."""
        dispatcher = WebhookDispatcher(schedule=(1.0,), timeout=0.5, time_scale=0.001)
        delivery = dispatcher.submit("http://127.0.0.1:9/unreachable", b"{}", topic="t")
        await dispatcher.drain(within=5)
        await dispatcher.aclose()
        assert delivery.abandoned
        assert len(delivery.attempts) == 2
        assert all(a.error for a in delivery.attempts)
