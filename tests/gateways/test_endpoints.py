"""/v1/gateways over HTTP, with health kept in the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pixwave.gateways.base import PixGateway
from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import GatewaySettings, Operation, RedisHealthStore
from pixwave.gateways.registry import build_gateway, gateway_names
from pixwave.gateways.router import Router
from pixwave.resources import Resources
from tests.conftest import app_client, make_settings
from tests.factories import create_actor, create_admin

#: Nothing listens here: these endpoints never call a gateway.
NOWHERE = "http://127.0.0.1:9"


@dataclass
class Api:
    client: httpx.AsyncClient
    router: Router
    resources: Resources


@pytest.fixture
async def api(resources: Resources) -> AsyncIterator[Api]:
    """The app with a gateway router on the test Redis; the resources' own router is restored."""
    assert resources.redis is not None
    gateways: dict[str, PixGateway] = {
        name: build_gateway(name, make_settings(), sandbox_url=NOWHERE) for name in gateway_names()
    }
    # Built against simulators (nothing listens there): the router is told so.
    router = Router(
        gateways, RedisHealthStore(resources.redis, gateways=gateways), simulated=gateways
    )
    previous = resources.router  # the resources are shared by the whole session
    resources.router = router
    try:
        async with app_client(resources) as client:
            yield Api(client, router, resources)
    finally:
        resources.router = previous
        for gateway in gateways.values():
            await gateway.aclose()


class TestList:
    async def test_lists_every_gateway_to_a_user(self, api: Api) -> None:
        """Any user sees every configured gateway with its settings and per-operation health."""
        ana = await create_actor(api.resources)
        response = await api.client.get("/v1/gateways", headers=ana.headers())
        assert response.status_code == 200, response.text
        body = response.json()
        assert [g["name"] for g in body] == ["mercadopago", "efi"]
        mercadopago = body[0]
        assert (mercadopago["enabled"], mercadopago["priority"]) == (True, 1)
        assert (mercadopago["state"], mercadopago["state_reason"]) == (
            "idle",
            "charge: no_recent_calls",
        )
        assert mercadopago["simulated"] is True
        assert {"charge", "send", "refund", "webhook"} == set(mercadopago["capabilities"])
        assert set(mercadopago["operations"]) == {"charge", "send", "refund", "query"}
        assert mercadopago["operations"]["send"] == {
            "state": "idle",
            "state_reason": "no_recent_calls",
            "circuit": "closed",
            "success_rate": None,
            "p95_latency_ms": None,
            "samples": 0,
            "open_until": None,
        }

    async def test_shows_live_health(self, api: Api) -> None:
        """Outcomes reported by the engine show up, including an open circuit and its end."""
        for _ in range(5):
            await api.router.record("efi", "send", Outcome.UNAVAILABLE, 3_000)
        await api.router.record("efi", "charge", Outcome.SUCCEEDED, 120)
        admin = await create_admin(api.resources)
        body = (await api.client.get("/v1/gateways", headers=admin.headers())).json()
        efi = {g["name"]: g for g in body}["efi"]
        send = efi["operations"]["send"]
        assert (send["circuit"], send["samples"], send["success_rate"]) == ("open", 5, 0.0)
        assert (send["state"], send["state_reason"]) == ("down", "circuit_open")
        assert send["open_until"] is not None
        charge = efi["operations"]["charge"]
        assert (charge["circuit"], charge["success_rate"], charge["p95_latency_ms"]) == (
            "closed",
            1.0,
            120,
        )
        assert charge["state"] == "up"
        assert (efi["state"], efi["state_reason"]) == ("down", "send: circuit_open")

    async def test_a_full_outage_shows_down_before_the_circuit_opens(self, api: Api) -> None:
        """One payment's three failed tries (then fallback) leave the circuit closed, but the
        gateway and the operation read down — the streak comes from Redis, in the same read."""
        for _ in range(3):
            await api.router.record("mercadopago", "charge", Outcome.UNAVAILABLE, 3_000)
        ana = await create_actor(api.resources)
        body = (await api.client.get("/v1/gateways", headers=ana.headers())).json()
        mercadopago = {g["name"]: g for g in body}["mercadopago"]
        charge = mercadopago["operations"]["charge"]
        assert (charge["circuit"], charge["samples"]) == ("closed", 3)
        assert (charge["state"], charge["state_reason"]) == ("down", "failures_in_a_row")
        assert (mercadopago["state"], mercadopago["state_reason"]) == (
            "down",
            "charge: failures_in_a_row",
        )

    async def test_a_disabled_gateway(self, api: Api) -> None:
        """Disabled by an admin: the gateway reads disabled, its operations keep theirs."""
        await api.router.record("efi", "charge", Outcome.SUCCEEDED, 80)
        await api.router.configure("efi", enabled=False)
        ana = await create_actor(api.resources)
        body = (await api.client.get("/v1/gateways", headers=ana.headers())).json()
        efi = {g["name"]: g for g in body}["efi"]
        assert (efi["state"], efi["state_reason"]) == ("disabled", "disabled_by_operator")
        assert efi["operations"]["charge"]["state"] == "up"

    async def test_real_gateways_are_not_simulated(self, api: Api) -> None:
        """A router not told of any simulator shows every gateway as real."""
        assert api.resources.redis is not None
        real = Router(api.router.gateways, RedisHealthStore(api.resources.redis))
        api.resources.router = real
        ana = await create_actor(api.resources)
        body = (await api.client.get("/v1/gateways", headers=ana.headers())).json()
        assert [g["simulated"] for g in body] == [False, False]

    async def test_needs_a_token(self, api: Api) -> None:
        """Anonymous callers get 401."""
        response = await api.client.get("/v1/gateways")
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"


class TestUpdate:
    async def test_admin_disables_a_gateway(self, api: Api) -> None:
        """An admin's PATCH returns the updated entry and routing follows at once."""
        admin = await create_admin(api.resources)
        response = await api.client.patch(
            "/v1/gateways/efi", json={"enabled": False}, headers=admin.headers()
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["name"], body["enabled"], body["priority"]) == ("efi", False, 2)
        assert await api.router.candidates(Operation.SEND) == ["mercadopago"]
        listed = (await api.client.get("/v1/gateways", headers=admin.headers())).json()
        assert {g["name"]: g["enabled"] for g in listed} == {"mercadopago": True, "efi": False}

    async def test_admin_reprioritises(self, api: Api) -> None:
        """A new priority reorders equally healthy gateways for every process."""
        admin = await create_admin(api.resources)
        response = await api.client.patch(
            "/v1/gateways/mercadopago", json={"priority": 50}, headers=admin.headers()
        )
        assert response.status_code == 200, response.text
        assert (response.json()["priority"], response.json()["enabled"]) == (50, True)
        assert api.resources.redis is not None
        other_process = Router(
            api.router.gateways, RedisHealthStore(api.resources.redis, gateways=gateway_names())
        )
        assert await other_process.candidates(Operation.SEND) == ["efi", "mercadopago"]

    async def test_user_gets_403(self, api: Api) -> None:
        """Only admins change routing."""
        ana = await create_actor(api.resources)
        response = await api.client.patch(
            "/v1/gateways/efi", json={"enabled": False}, headers=ana.headers()
        )
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
        assert (await api.router.health.get_settings("efi")).enabled is True

    async def test_unknown_gateway_404(self, api: Api) -> None:
        """An unknown name answers problem+json 404 with code gateway_not_found."""
        admin = await create_admin(api.resources)
        response = await api.client.patch(
            "/v1/gateways/pagseguro", json={"enabled": False}, headers=admin.headers()
        )
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "gateway_not_found"

    @pytest.mark.parametrize(
        "body",
        [
            {"priority": 0},
            {"priority": 101},
            {"priority": "first"},
            {"enabled": "maybe"},
            {"enabled": False, "weight": 3},
        ],
    )
    async def test_invalid_body_422(self, api: Api, body: dict[str, Any]) -> None:
        """Out-of-range priorities, non-booleans and unknown fields are refused with 422."""
        admin = await create_admin(api.resources)
        response = await api.client.patch("/v1/gateways/efi", json=body, headers=admin.headers())
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert await api.router.health.get_settings("efi") == GatewaySettings(
            enabled=True, priority=2
        )
