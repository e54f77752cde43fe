"""The authorization matrix: every operation of the API, called by every kind of caller.

The table below is the contract — for each operation in the OpenAPI document, the status each
caller gets: nobody (no token), Ana (a user, calling on her own things), Bia (another user,
calling on Ana's things), an admin, and a revoked token. It is checked against every operation
the app documents (its OpenAPI document, built from the route table), so an operation added
without a row here fails the suite, as does a row for an operation that no longer exists.
(`/metrics`, undocumented on purpose, has its own token rules: tests/observability.) Each cell
runs against a fresh world, so one call never decides the next.

Reading the table: 401 is "who are you?", 403 "not for your role", 404 "nothing of yours is
there" (another user's things are never confirmed to exist). A webhook route answers 401 to
every caller here: an API token is not how a gateway proves itself.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pixwave.app import create_app
from pixwave.config import Settings
from pixwave.gateways.base import PixGateway
from pixwave.gateways.health import MemoryHealthStore
from pixwave.gateways.registry import build_gateway
from pixwave.gateways.router import Router
from pixwave.gateways.specs import SPECS
from pixwave.pix import generate_cpf
from pixwave.resources import Resources
from tests.factories import Actor, create_actor, create_admin
from tests.notifications.webhooks.support import Kicks, create_endpoint, publish

CALLERS = ("nobody", "ana", "bia", "admin", "revoked")
_rng = random.Random(20261206)
HOOK = "https://hooks.example.com/pixwave"
#: Nothing listens here: no call in this module reaches a gateway.
NOWHERE = "http://127.0.0.1:9"


@dataclass
class World:
    client: httpx.AsyncClient
    admin: Actor
    ana: Actor
    bia: Actor
    #: A third user: where transfers go.
    caio: Actor
    revoked: str
    ana_token_id: str
    deposit_id: str
    endpoint_id: str
    event_id: str

    def headers(self, caller: str) -> dict[str, str]:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        token = {
            "nobody": None,
            "ana": self.ana.token,
            "bia": self.bia.token,
            "admin": self.admin.token,
            "revoked": self.revoked,
        }[caller]
        return key if token is None else {**key, "Authorization": f"Bearer {token}"}


def _new_user() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"name": "Davi", "email": f"{tag}@example.com", "document": generate_cpf(_rng)}


#: (method, path template) → (path, body) built from the world.
Request = Callable[[World], tuple[str, Any]]

REQUESTS: dict[tuple[str, str], Request] = {
    ("POST", "/v1/users"): lambda _w: ("/v1/users", _new_user()),
    ("GET", "/v1/users"): lambda _w: ("/v1/users", None),
    ("GET", "/v1/me"): lambda _w: ("/v1/me", None),
    ("GET", "/v1/users/{user_id}"): lambda w: (f"/v1/users/{w.ana.user.id}", None),
    ("POST", "/v1/users/{user_id}/tokens"): lambda w: (f"/v1/users/{w.ana.user.id}/tokens", {}),
    ("GET", "/v1/users/{user_id}/tokens"): lambda w: (f"/v1/users/{w.ana.user.id}/tokens", None),
    ("DELETE", "/v1/users/{user_id}/tokens/{token_id}"): lambda w: (
        f"/v1/users/{w.ana.user.id}/tokens/{w.ana_token_id}",
        None,
    ),
    ("POST", "/v1/users/{user_id}/deactivate"): lambda w: (
        f"/v1/users/{w.ana.user.id}/deactivate",
        {},
    ),
    ("POST", "/v1/users/{user_id}/reactivate"): lambda w: (
        f"/v1/users/{w.ana.user.id}/reactivate",
        {},
    ),
    ("GET", "/v1/users/{user_id}/limits"): lambda w: (f"/v1/users/{w.ana.user.id}/limits", None),
    ("PUT", "/v1/users/{user_id}/limits"): lambda w: (
        f"/v1/users/{w.ana.user.id}/limits",
        {"nighttime": 200_000},
    ),
    ("GET", "/v1/wallet"): lambda _w: ("/v1/wallet", None),
    ("GET", "/v1/wallet/statement"): lambda _w: ("/v1/wallet/statement", None),
    ("GET", "/v1/wallets/{wallet_id}"): lambda w: (f"/v1/wallets/{w.ana.wallet_id}", None),
    ("GET", "/v1/wallets/{wallet_id}/statement"): lambda w: (
        f"/v1/wallets/{w.ana.wallet_id}/statement",
        None,
    ),
    ("POST", "/v1/transfers"): lambda w: (
        "/v1/transfers",
        {"to_wallet_id": w.caio.wallet_id, "amount": 1_00},
    ),
    ("POST", "/v1/admin/adjustments"): lambda w: (
        "/v1/admin/adjustments",
        {"wallet_id": w.ana.wallet_id, "direction": "credit", "amount": 1_00, "reason": "refund"},
    ),
    ("GET", "/v1/transactions"): lambda _w: ("/v1/transactions", None),
    ("GET", "/v1/transactions/{transaction_id}"): lambda w: (
        f"/v1/transactions/{w.deposit_id}",
        None,
    ),
    ("POST", "/v1/deposits"): lambda _w: ("/v1/deposits", {"amount": 10_00}),
    ("POST", "/v1/withdrawals"): lambda _w: (
        "/v1/withdrawals",
        {"amount": 1_00, "pix_key": "pix@bcb.gov.br"},
    ),
    ("POST", "/v1/transactions/{transaction_id}/refunds"): lambda w: (
        f"/v1/transactions/{w.deposit_id}/refunds",
        {},
    ),
    ("GET", "/v1/gateways"): lambda _w: ("/v1/gateways", None),
    ("PATCH", "/v1/gateways/{name}"): lambda _w: ("/v1/gateways/efi", {"priority": 3}),
    ("POST", "/webhooks/{gateway}"): lambda _w: ("/webhooks/mercadopago", {"id": 1}),
    ("POST", "/webhooks/{gateway}/{path}"): lambda _w: ("/webhooks/efi/pix", {"pix": []}),
    ("POST", "/v1/webhook-endpoints"): lambda _w: ("/v1/webhook-endpoints", {"url": HOOK}),
    ("GET", "/v1/webhook-endpoints"): lambda _w: ("/v1/webhook-endpoints", None),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"): lambda w: (
        f"/v1/webhook-endpoints/{w.endpoint_id}",
        None,
    ),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): lambda w: (
        f"/v1/webhook-endpoints/{w.endpoint_id}",
        None,
    ),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): lambda w: (
        f"/v1/webhook-endpoints/{w.endpoint_id}/rotate-secret",
        {},
    ),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/enable"): lambda w: (
        f"/v1/webhook-endpoints/{w.endpoint_id}/enable",
        {},
    ),
    ("GET", "/v1/events"): lambda _w: ("/v1/events", None),
    ("GET", "/v1/events/{event_id}"): lambda w: (f"/v1/events/{w.event_id}", None),
    ("POST", "/v1/events/{event_id}/redeliver"): lambda w: (
        f"/v1/events/{w.event_id}/redeliver",
        {},
    ),
    ("GET", "/healthz"): lambda _w: ("/healthz", None),
    ("HEAD", "/healthz"): lambda _w: ("/healthz", None),
    ("GET", "/readyz"): lambda _w: ("/readyz", None),
    ("HEAD", "/readyz"): lambda _w: ("/readyz", None),
}


def row(statuses: str) -> dict[str, int]:
    """``"401 200 404 200 401"``: nobody, Ana, Bia, admin, a revoked token."""
    return dict(zip(CALLERS, map(int, statuses.split()), strict=True))


#: Public: anyone, whatever token (a load balancer's probe has none).
PUBLIC = row("200 200 200 200 200")
#: An operator's: a user's token is 403.
ADMIN_ONLY = row("401 403 403 200 401")
#: Any signed-in user, each about their own things; the admin has no wallet of their own.
OWN = row("401 200 200 200 401")
#: A gateway's: an API token proves nothing (401 webhook_rejected to everyone).
GATEWAY = row("401 401 401 401 401")

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/v1/users"): row("401 403 403 201 401"),
    ("GET", "/v1/users"): ADMIN_ONLY,
    ("GET", "/v1/me"): OWN,
    # Ana's own record and tokens: hers and the admin's to see; Bia is told nothing exists.
    ("GET", "/v1/users/{user_id}"): row("401 200 404 200 401"),
    ("POST", "/v1/users/{user_id}/tokens"): row("401 403 403 201 401"),
    ("GET", "/v1/users/{user_id}/tokens"): row("401 200 404 200 401"),
    ("DELETE", "/v1/users/{user_id}/tokens/{token_id}"): row("401 200 404 200 401"),
    # Ana's limits: hers to read; only an admin sets them (Bia learns nothing).
    ("GET", "/v1/users/{user_id}/limits"): row("401 200 404 200 401"),
    ("PUT", "/v1/users/{user_id}/limits"): row("401 403 403 200 401"),
    ("POST", "/v1/users/{user_id}/deactivate"): ADMIN_ONLY,
    ("POST", "/v1/users/{user_id}/reactivate"): ADMIN_ONLY,
    ("GET", "/v1/wallet"): row("401 200 200 404 401"),
    ("GET", "/v1/wallet/statement"): row("401 200 200 404 401"),
    ("GET", "/v1/wallets/{wallet_id}"): row("401 200 404 200 401"),
    ("GET", "/v1/wallets/{wallet_id}/statement"): row("401 200 404 200 401"),
    # Money out of one's own wallet: the admin has none (adjustments are its way).
    ("POST", "/v1/transfers"): row("401 201 201 404 401"),
    ("POST", "/v1/admin/adjustments"): row("401 403 403 201 401"),
    ("GET", "/v1/transactions"): OWN,
    ("GET", "/v1/transactions/{transaction_id}"): row("401 200 404 200 401"),
    ("POST", "/v1/deposits"): row("401 202 202 404 401"),
    ("POST", "/v1/withdrawals"): row("401 202 202 404 401"),
    # Ana's deposit is still pending: past authorization, the state rule answers (409).
    ("POST", "/v1/transactions/{transaction_id}/refunds"): row("401 409 404 409 401"),
    ("GET", "/v1/gateways"): OWN,
    ("PATCH", "/v1/gateways/{name}"): ADMIN_ONLY,
    ("POST", "/webhooks/{gateway}"): GATEWAY,
    ("POST", "/webhooks/{gateway}/{path}"): GATEWAY,
    ("POST", "/v1/webhook-endpoints"): row("401 403 403 201 401"),
    ("GET", "/v1/webhook-endpoints"): ADMIN_ONLY,
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"): ADMIN_ONLY,
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): ADMIN_ONLY,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): ADMIN_ONLY,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/enable"): ADMIN_ONLY,
    ("GET", "/v1/events"): ADMIN_ONLY,
    ("GET", "/v1/events/{event_id}"): ADMIN_ONLY,
    ("POST", "/v1/events/{event_id}/redeliver"): row("401 403 403 202 401"),
    ("GET", "/healthz"): PUBLIC,
    ("HEAD", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("HEAD", "/readyz"): PUBLIC,
}


def operations() -> set[tuple[str, str]]:
    """Every operation the app documents (its route table, as the OpenAPI document lists it)."""
    document = create_app(Settings(_env_file=None, sandbox_gateways=False)).openapi()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete", "head"}
    }


@pytest.fixture
async def world(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    kicks = Kicks()
    monkeypatch.setattr(resources, "jobs", kicks.queue)
    settings = resources.settings
    gateways: dict[str, PixGateway] = {
        spec.family: build_gateway(spec.family, settings, sandbox_url=NOWHERE)
        for spec in SPECS
        if spec.family in ("mercadopago", "efi")
    }
    monkeypatch.setattr(resources, "gateways", gateways)
    monkeypatch.setattr(resources, "specs", {spec.family: spec for spec in SPECS})
    monkeypatch.setattr(
        resources, "router", Router(gateways, MemoryHealthStore(gateways=list(gateways)))
    )
    admin = await create_admin(resources)
    ana = await create_actor(resources, balance=100_00)
    bia = await create_actor(resources, balance=10_00)
    caio = await create_actor(resources)
    gone = await create_actor(resources)
    transport = httpx.ASGITransport(app=create_app(settings, resources))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as client:
        extra = await client.post(
            f"/v1/users/{ana.user.id}/tokens", json={}, headers=admin.headers()
        )
        tokens = await client.get(f"/v1/users/{gone.user.id}/tokens", headers=admin.headers())
        await client.delete(
            f"/v1/users/{gone.user.id}/tokens/{tokens.json()['data'][0]['id']}",
            headers=admin.headers(),
        )
        deposit = await client.post("/v1/deposits", json={"amount": 20_00}, headers=ana.headers())
        endpoint = await create_endpoint(resources, url=HOOK)
        event_id, _ = await publish(resources, kicks.queue, aggregate_id=deposit.json()["id"])
        yield World(
            client=client,
            admin=admin,
            ana=ana,
            bia=bia,
            caio=caio,
            revoked=gone.token,
            ana_token_id=extra.json()["id"],
            deposit_id=deposit.json()["id"],
            endpoint_id=endpoint.id,
            event_id=event_id,
        )
    for gateway in gateways.values():
        await gateway.aclose()


def test_every_operation_has_a_row() -> None:
    """A new endpoint must say who may call it; a removed one must leave the table."""
    assert set(REQUESTS) == operations()
    assert set(EXPECTED) == set(REQUESTS)


CELLS = [(operation, caller) for operation in sorted(REQUESTS) for caller in CALLERS]


@pytest.mark.parametrize(
    ("operation", "caller"), CELLS, ids=[f"{m} {p} {c}" for (m, p), c in CELLS]
)
async def test_cell(world: World, operation: tuple[str, str], caller: str) -> None:
    """One caller, one operation, a fresh world: the status the table says."""
    method, _ = operation
    path, body = REQUESTS[operation](world)
    response = await world.client.request(method, path, json=body, headers=world.headers(caller))
    expected = EXPECTED[operation][caller]
    assert response.status_code == expected, response.text
    if expected == 401:
        # A webhook's refusal is the gateway check's, every other one the token's.
        code = "webhook_rejected" if EXPECTED[operation] is GATEWAY else "unauthenticated"
        assert response.json()["code"] == code
    if expected in (403, 404):
        # Refused as problem+json with a stable code, never an empty or HTML body.
        assert response.headers["content-type"] == "application/problem+json"
