"""/v1/webhook-endpoints and /v1/events over HTTP: who may call them, what they answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pixwave.notifications.webhooks import tasks
from pixwave.resources import Resources
from tests.factories import Actor, create_actor, create_admin
from tests.notifications.webhooks.support import (
    DELIVER,
    ENDPOINTS,
    Kicks,
    app_with_webhooks,
    append_unpublished,
    client_for,
    create_endpoint,
    publish,
)
from tests.test_openapi import codes, undocumented

HOOK = "https://hooks.example.com/pixwave"


@pytest.fixture
def kicks(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Kicks:
    """Jobs the API enqueues are recorded, not run (no request leaves the test)."""
    return Kicks.on(resources, monkeypatch)


@pytest.fixture
async def api(resources: Resources, kicks: Kicks) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app_with_webhooks(resources)) as client:
        yield client


@pytest.fixture
async def admin(resources: Resources) -> Actor:
    return await create_admin(resources)


async def register(api: httpx.AsyncClient, admin: Actor, **body: object) -> httpx.Response:
    return await api.post(
        "/v1/webhook-endpoints", json={"url": HOOK, **body}, headers=admin.headers()
    )


ROUTES = [
    ("POST", "/v1/webhook-endpoints", {"url": HOOK}),
    ("GET", "/v1/webhook-endpoints", None),
    ("GET", "/v1/webhook-endpoints/whe_X", None),
    ("DELETE", "/v1/webhook-endpoints/whe_X", None),
    ("POST", "/v1/webhook-endpoints/whe_X/rotate-secret", None),
    ("POST", "/v1/webhook-endpoints/whe_X/enable", None),
    ("GET", "/v1/events", None),
    ("GET", "/v1/events/evt_X", None),
    ("POST", "/v1/events/evt_X/redeliver", {}),
]


class TestAuthorisation:
    @pytest.mark.parametrize(("method", "path", "body"), ROUTES)
    async def test_anonymous_is_401(
        self, api: httpx.AsyncClient, method: str, path: str, body: object
    ) -> None:
        """No token, no access."""
        response = await api.request(method, path, json=body, headers={"Idempotency-Key": "k1"})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"

    @pytest.mark.parametrize(("method", "path", "body"), ROUTES)
    async def test_a_user_token_is_403(
        self, api: httpx.AsyncClient, resources: Resources, method: str, path: str, body: object
    ) -> None:
        """Webhooks and events are operators' business."""
        user = await create_actor(resources)
        response = await api.request(method, path, json=body, headers=user.headers())
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


class TestEndpoints:
    async def test_the_secret_is_shown_once(self, api: httpx.AsyncClient, admin: Actor) -> None:
        """Created with its secret; listed, read or replayed without it."""
        headers = admin.headers()
        created = await api.post(
            "/v1/webhook-endpoints",
            json={"url": HOOK, "description": "ops", "event_types": ["transaction.*"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        endpoint = created.json()
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["id"].startswith("whe_")
        assert (endpoint["status"], endpoint["event_types"]) == ("enabled", ["transaction.*"])
        replay = await api.post(
            "/v1/webhook-endpoints",
            json={"url": HOOK, "description": "ops", "event_types": ["transaction.*"]},
            headers=headers,
        )
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["secret"] is None
        listed = await api.get("/v1/webhook-endpoints", headers=admin.headers())
        assert [item["id"] for item in listed.json()["data"]] == [endpoint["id"]]
        read = await api.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin.headers())
        for shown in (listed.text, read.text, replay.text):
            assert endpoint["secret"] not in shown
            assert 'secret":"whsec' not in shown

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"url": "ftp://hooks.example.com/x"}, "webhook_url_not_allowed"),
            ({"url": "https://u:p@hooks.example.com/x"}, "webhook_url_not_allowed"),
            ({"url": HOOK, "event_types": ["transactoin.*"]}, "validation_error"),
            ({"url": HOOK, "event_types": ["transaction.**"]}, "validation_error"),
            ({"url": HOOK, "secret": "whsec_mine"}, "validation_error"),
            ({"url": HOOK, "description": "a\u202eb"}, "invalid_text"),
            ({}, "validation_error"),
        ],
    )
    async def test_invalid_registrations_are_422(
        self, api: httpx.AsyncClient, admin: Actor, body: dict[str, object], code: str
    ) -> None:
        """Bad URLs, unknown event families, extra fields and control characters are refused."""
        response = await api.post("/v1/webhook-endpoints", json=body, headers=admin.headers())
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code

    async def test_a_private_url_is_refused_outside_the_demo(
        self,
        api: httpx.AsyncClient,
        admin: Actor,
        resources: Resources,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With private URLs not allowed, a loopback URL answers `webhook_url_not_allowed`."""
        monkeypatch.setattr(resources, "private_webhook_urls", False)  # decided at start
        response = await register(api, admin, url="http://localhost:8080/hooks")
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "webhook_url_not_allowed"
        assert "loopback" in problem["errors"][0]["message"]

    async def test_a_post_without_idempotency_key_is_400(
        self, api: httpx.AsyncClient, admin: Actor
    ) -> None:
        response = await api.post(
            "/v1/webhook-endpoints",
            json={"url": HOOK},
            headers={"Authorization": admin.headers()["Authorization"]},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_missing"

    async def test_rotate_enable_and_delete(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources
    ) -> None:
        """Rotation shows a new secret once; enable is idempotent; delete, then 404."""
        endpoint = (await register(api, admin)).json()
        rotated = await api.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=admin.headers()
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["secret"].startswith("whsec_")
        assert new["secret"] != endpoint["secret"]
        overlap = new["previous_secret_expires_at"]
        assert overlap is not None
        enabled = await api.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=admin.headers()
        )
        assert enabled.json()["status"] == "enabled"
        deleted = await api.delete(
            f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin.headers()
        )
        assert deleted.status_code == 200
        again = await api.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=admin.headers())
        assert again.status_code == 404
        assert again.json()["code"] == "webhook_endpoint_not_found"
        missing = await api.post("/v1/webhook-endpoints/whe_nope/enable", headers=admin.headers())
        assert missing.status_code == 404

    async def test_a_bad_cursor_is_400(self, api: httpx.AsyncClient, admin: Actor) -> None:
        response = await api.get(
            "/v1/webhook-endpoints", params={"starting_after": "whe_nope"}, headers=admin.headers()
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_cursor"


class TestEvents:
    async def test_list_newest_first_filtered_and_paginated(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources, kicks: Kicks
    ) -> None:
        """Filtered by type (exact or `family.*`) and by transaction; cursor pages."""
        first, _ = await publish(resources, kicks.queue, aggregate_id="txn_A")
        second, _ = await publish(
            resources, kicks.queue, event_type="transaction.failed", aggregate_id="txn_B"
        )
        alert, _ = await publish(resources, kicks.queue, event_type="alert.outbox_lagging")

        async def ids(**params: str) -> list[str]:
            response = await api.get("/v1/events", params=params, headers=admin.headers())
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["data"]]

        assert await ids() == [alert, second, first]
        assert await ids(type="transaction.*") == [second, first]
        assert await ids(type="transaction.failed") == [second]
        assert await ids(transaction_id="txn_A") == [first]
        page = await api.get("/v1/events", params={"limit": 2}, headers=admin.headers())
        assert page.json()["has_more"] is True
        assert await ids(starting_after=page.json()["next_cursor"]) == [first]

    async def test_an_event_shows_its_deliveries_and_attempts(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources, kicks: Kicks
    ) -> None:
        """Each attempt: when, status, duration, error, the start of the answer."""
        endpoint = await create_endpoint(resources, url=HOOK)
        event_id, _ = await publish(resources, kicks.queue, payload={"amount": 990})
        (delivery_id,) = kicks.of(DELIVER)
        transport = httpx.MockTransport(lambda _: httpx.Response(500, text="down for upgrade"))
        await tasks.deliver_once(resources, delivery_id, transport=transport)
        response = await api.get(f"/v1/events/{event_id}", headers=admin.headers())
        assert response.status_code == 200, response.text
        event = response.json()
        assert (event["type"], event["data"]) == ("transaction.succeeded", {"amount": 990})
        (delivery,) = event["deliveries"]
        assert (delivery["endpoint_id"], delivery["status"]) == (endpoint.id, "pending")
        (attempt,) = delivery["attempts"]
        assert attempt["status_code"] == 500
        assert attempt["outcome"] == "failed"
        assert attempt["response_excerpt"] == "down for upgrade"
        assert attempt["duration_ms"] >= 0
        assert attempt["attempted_at"]
        unknown = await api.get("/v1/events/evt_nope", headers=admin.headers())
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "event_not_found"

    async def test_redeliver_starts_a_new_series(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources, kicks: Kicks
    ) -> None:
        """The same (event, endpoint) row, reset: series 2, due now, a job kicked."""
        endpoint = await create_endpoint(resources, url=HOOK)
        event_id, _ = await publish(resources, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        await tasks.deliver_once(
            resources, delivery_id, transport=httpx.MockTransport(lambda _: httpx.Response(200))
        )
        response = await api.post(
            f"/v1/events/{event_id}/redeliver",
            json={"endpoint_id": endpoint.id},
            headers=admin.headers(),
        )
        assert response.status_code == 202, response.text
        (delivery,) = response.json()["deliveries"]
        assert delivery["id"] == delivery_id
        assert (delivery["status"], delivery["series"], delivery["attempt_count"]) == (
            "pending", 2, 0,
        )  # fmt: skip
        assert [a["series"] for a in delivery["attempts"]] == [1]
        assert kicks.of(DELIVER) == [delivery_id, delivery_id]

    async def test_redeliver_to_every_subscribed_endpoint(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources, kicks: Kicks
    ) -> None:
        """Without an endpoint: every enabled endpoint subscribed, new ones included."""
        event_id, count = await publish(resources, kicks.queue)
        assert count == 0
        late = await create_endpoint(resources, url=HOOK, event_types=["transaction.succeeded"])
        await create_endpoint(resources, url=HOOK, event_types=["alert.*"])
        response = await api.post(f"/v1/events/{event_id}/redeliver", headers=admin.headers())
        assert response.status_code == 202, response.text
        assert [d["endpoint_id"] for d in response.json()["deliveries"]] == [late.id]
        assert len(kicks.of(DELIVER)) == 1

    async def test_redeliver_refusals(
        self, api: httpx.AsyncClient, admin: Actor, resources: Resources, kicks: Kicks
    ) -> None:
        """Unpublished event 409, unknown event 404, unknown or disabled endpoint 404/409."""
        waiting = await append_unpublished(resources, event_type="transaction.succeeded")
        response = await api.post(
            f"/v1/events/{waiting}/redeliver", json={}, headers=admin.headers()
        )
        assert (response.status_code, response.json()["code"]) == (409, "event_not_published")
        response = await api.post("/v1/events/evt_nope/redeliver", json={}, headers=admin.headers())
        assert (response.status_code, response.json()["code"]) == (404, "event_not_found")
        event_id, _ = await publish(resources, kicks.queue)
        response = await api.post(
            f"/v1/events/{event_id}/redeliver",
            json={"endpoint_id": "whe_nope"},
            headers=admin.headers(),
        )
        assert (response.status_code, response.json()["code"]) == (
            404,
            "webhook_endpoint_not_found",
        )
        endpoint = await create_endpoint(resources, url=HOOK)
        async with resources.sessionmaker() as session, session.begin():
            await session.execute(
                ENDPOINTS.update().where(ENDPOINTS.c.id == endpoint.id).values(status="disabled")
            )
        response = await api.post(
            f"/v1/events/{event_id}/redeliver",
            json={"endpoint_id": endpoint.id},
            headers=admin.headers(),
        )
        assert (response.status_code, response.json()["code"]) == (409, "webhook_endpoint_disabled")


class TestDocument:
    def test_every_route_documents_its_problems(self, resources: Resources) -> None:
        """The walker of tests/test_openapi.py finds nothing missing on these routes."""
        document = app_with_webhooks(resources).openapi()
        mine = [
            gap
            for gap in undocumented(document)
            if "webhook-endpoints" in gap or "/v1/events" in gap
        ]
        assert mine == []
        create = document["paths"]["/v1/webhook-endpoints"]["post"]
        assert "webhook_url_not_allowed" in codes(create, "422")
        redeliver = document["paths"]["/v1/events/{event_id}/redeliver"]["post"]
        assert codes(redeliver, "409") >= {"event_not_published", "webhook_endpoint_disabled"}
        assert codes(redeliver, "404") == {"event_not_found", "webhook_endpoint_not_found"}
