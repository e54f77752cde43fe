"""Idempotency-Key semantics over HTTP: replay, conflicting reuse, in-flight, scope, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update

from pixwave.accounts.models import ApiToken
from pixwave.db import utcnow
from pixwave.kit.idempotency import Idempotency
from pixwave.kit.locks import RedisLocks
from pixwave.kit.models import IdempotencyRecord
from pixwave.payments.models import Transaction
from pixwave.resources import Resources
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import TransferCreate
from tests.conftest import app_client
from tests.factories import Actor, create_actor, create_admin, fund


async def _transfers(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Transaction).where(Transaction.type == "transfer")
            )
            or 0
        )


async def _pair(resources: Resources) -> tuple[Actor, Actor]:
    return await create_actor(resources, balance=10_000), await create_actor(resources)


class TestReplay:
    async def test_same_key_same_body_replays_without_a_second_effect(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A retried POST returns the stored response, flagged, and moves money once."""
        ana, bia = await _pair(resources)
        body = {"to_wallet_id": bia.wallet_id, "amount": 700}
        first = await client.post("/v1/transfers", json=body, headers=ana.headers("key-1"))
        second = await client.post("/v1/transfers", json=body, headers=ana.headers("key-1"))
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert await _transfers(resources) == 1
        assert (await client.get("/v1/wallet", headers=ana.headers())).json()["posted"] == 9_300

    async def test_key_order_and_whitespace_do_not_count_as_a_change(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The fingerprint is of the parsed body, not its bytes."""
        ana, bia = await _pair(resources)
        raw1 = f'{{"to_wallet_id": "{bia.wallet_id}", "amount": 5}}'
        raw2 = f'{{ "amount":5,"to_wallet_id":"{bia.wallet_id}" }}'
        headers = {**ana.headers("key-ws"), "content-type": "application/json"}
        first = await client.post("/v1/transfers", content=raw1, headers=headers)
        second = await client.post("/v1/transfers", content=raw2, headers=headers)
        assert second.status_code == 201
        assert second.json()["id"] == first.json()["id"]

    async def test_a_refusal_is_replayed_too(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A domain error is the outcome of the key: retrying returns it, even if funds arrive."""
        ana = await create_actor(resources, balance=100)
        bia = await create_actor(resources)
        body = {"to_wallet_id": bia.wallet_id, "amount": 500}
        first = await client.post("/v1/transfers", json=body, headers=ana.headers("key-poor"))
        assert first.status_code == 402
        await fund(resources, wallet_id=ana.wallet_id, amount=1_000)
        second = await client.post("/v1/transfers", json=body, headers=ana.headers("key-poor"))
        assert second.status_code == 402
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.headers["content-type"] == "application/problem+json"
        assert await _transfers(resources) == 0


class TestConflicts:
    async def test_same_key_different_body_is_422(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Reusing a key for another request is refused and the second request does nothing."""
        ana, bia = await _pair(resources)
        await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1},
            headers=ana.headers("k"),
        )
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 2},
            headers=ana.headers("k"),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert await _transfers(resources) == 1

    async def test_same_key_on_another_endpoint_is_422(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A key is bound to its method and path as well as its body: nothing runs twice."""
        admin = await create_admin(resources)
        ana = await create_actor(resources)
        adjusted = await client.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": ana.wallet_id,
                "direction": "credit",
                "amount": 1,
                "reason": "bonus",
            },
            headers=admin.headers("k2"),
        )
        assert adjusted.status_code == 201
        response = await client.post(
            f"/v1/users/{ana.user.id}/tokens", json={}, headers=admin.headers("k2")
        )
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        async with resources.sessionmaker() as session:
            tokens = await session.scalar(select(func.count()).select_from(ApiToken))
        assert tokens == 2  # the two actors' own tokens; none minted by the reused key

    async def test_in_flight_key_is_409(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """While the first request holds the key, a twin is told to retry later."""
        ana, bia = await _pair(resources)
        locks = resources.locks
        token = await locks.acquire(f"idem:{ana.user.id}:busy-key", 30)
        assert token is not None
        try:
            response = await client.post(
                "/v1/transfers",
                json={"to_wallet_id": bia.wallet_id, "amount": 1},
                headers=ana.headers("busy-key"),
            )
        finally:
            await locks.release(f"idem:{ana.user.id}:busy-key", token)
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_in_use"
        assert await _transfers(resources) == 0

    async def test_concurrent_twins_move_money_once(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Ten simultaneous identical requests: one effect; others replay it or get 409."""
        ana, bia = await _pair(resources)
        body = {"to_wallet_id": bia.wallet_id, "amount": 300}
        responses = await asyncio.gather(
            *(
                client.post("/v1/transfers", json=body, headers=ana.headers("twin"))
                for _ in range(10)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}
        ids = {r.json()["id"] for r in responses if r.status_code == 201}
        assert len(ids) == 1
        assert await _transfers(resources) == 1

    async def test_lapsed_lock_still_commits_once(self, resources: Resources) -> None:
        """If the in-flight lock is lost, the record's primary key still allows one effect."""

        class NoLocks:
            async def acquire(self, name: str, ttl_seconds: float) -> str:
                return "always"

            async def release(self, name: str, token: str) -> None:
                return None

            async def extend(self, name: str, token: str, ttl_seconds: float) -> bool:
                return True

        ana, bia = await _pair(resources)
        idem = Idempotency(resources.sessionmaker, NoLocks(), ttl_seconds=60, lock_seconds=1)
        principal = ana.principal
        data = TransferCreate(to_wallet_id=bia.wallet_id, amount=250)

        async def call() -> int:
            async def work(session: object) -> object:
                return await wallets.transfer(session, resources.limits, principal, data)  # type: ignore[arg-type]

            response = await idem.run(
                scope=principal.user_id, key="lapsed", method="POST", path="/v1/transfers",
                payload=data, status_code=201, work=work,  # type: ignore[arg-type]
            )  # fmt: skip
            return response.status_code

        results = await asyncio.gather(*(call() for _ in range(5)))
        assert results == [201] * 5
        assert await _transfers(resources) == 1


class TestScopeAndExpiry:
    async def test_keys_are_scoped_to_the_caller(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Two users choosing the same key do not collide."""
        ana, bia = await _pair(resources)
        await create_actor(resources)
        carl = await create_actor(resources, balance=1_000)
        a = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1},
            headers=ana.headers("shared"),
        )
        c = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1},
            headers=carl.headers("shared"),
        )
        assert a.status_code == c.status_code == 201
        assert a.json()["id"] != c.json()["id"]

    async def test_expired_key_runs_again(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """After the retention window a key is forgotten and a request with it is new."""
        ana, bia = await _pair(resources)
        body = {"to_wallet_id": bia.wallet_id, "amount": 1}
        await client.post("/v1/transfers", json=body, headers=ana.headers("old"))
        async with resources.sessionmaker() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert resources.redis is not None
        await resources.redis.flushdb()  # a day later the minute-long in-flight lock is gone too
        again = await client.post("/v1/transfers", json=body, headers=ana.headers("old"))
        assert again.status_code == 201
        assert "Idempotent-Replayed" not in again.headers
        assert await _transfers(resources) == 2

    async def test_purge_removes_only_expired_records(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The purge job deletes expired keys and keeps live ones."""
        ana, bia = await _pair(resources)
        for key in ("a", "b"):
            await client.post(
                "/v1/transfers",
                json={"to_wallet_id": bia.wallet_id, "amount": 1},
                headers=ana.headers(key),
            )
        async with resources.sessionmaker() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == "a")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert await resources.idempotency.purge_expired() == 1


class TestKeyRequired:
    @pytest.mark.parametrize(
        ("key", "code"),
        [
            (None, "idempotency_key_missing"),
            ("x" * 256, "idempotency_key_invalid"),
            ("a b", "idempotency_key_invalid"),
        ],
    )
    async def test_post_without_a_valid_key_is_400(
        self, client: httpx.AsyncClient, resources: Resources, key: str | None, code: str
    ) -> None:
        """Every POST needs a usable key; without one nothing happens."""
        ana, bia = await _pair(resources)
        headers = {"Authorization": f"Bearer {ana.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await client.post(
            "/v1/transfers", json={"to_wallet_id": bia.wallet_id, "amount": 1}, headers=headers
        )
        assert response.status_code == 400
        assert response.json()["code"] == code
        assert await _transfers(resources) == 0


class TestLockStoreDown:
    async def test_redis_down_is_503_and_writes_nothing(self, resources: Resources) -> None:
        """Without the lock store a POST is refused as unavailable, never half-done."""

        ana, bia = await _pair(resources)
        dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        broken = Idempotency(
            resources.sessionmaker, RedisLocks(dead), ttl_seconds=60, lock_seconds=5
        )
        original = resources.idempotency
        resources.idempotency = broken
        try:
            async with app_client(resources) as client:
                response = await client.post(
                    "/v1/transfers",
                    json={"to_wallet_id": bia.wallet_id, "amount": 1},
                    headers=ana.headers(),
                )
        finally:
            resources.idempotency = original
            await dead.aclose()
        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
        assert await _transfers(resources) == 0


class TestReplaysRunOptimistically:
    async def test_replay_after_the_money_is_gone_still_returns_the_success(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A replay re-runs nothing visible: even if it could no longer succeed, it gets the 201."""
        ana = await create_actor(resources, balance=500)
        bia = await create_actor(resources)
        body = {"to_wallet_id": bia.wallet_id, "amount": 500}
        first = await client.post("/v1/transfers", json=body, headers=ana.headers("all-in"))
        again = await client.post("/v1/transfers", json=body, headers=ana.headers("all-in"))
        assert first.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert await _transfers(resources) == 1

    async def test_token_secret_is_never_stored_for_replay(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A token is shown once: the idempotency table keeps the response without the secret."""
        admin = await create_admin(resources)
        ana = await create_actor(resources)
        url = f"/v1/users/{ana.user.id}/tokens"
        first = await client.post(url, json={"name": "cli"}, headers=admin.headers("tok-1"))
        replay = await client.post(url, json={"name": "cli"}, headers=admin.headers("tok-1"))
        secret = first.json()["token"]
        assert secret.startswith("pxw_")
        assert replay.status_code == 201
        assert replay.json()["token"] is None
        assert replay.json()["id"] == first.json()["id"]
        async with resources.sessionmaker() as session:
            bodies = (await session.execute(select(IdempotencyRecord.response_body))).scalars()
            assert all(secret.encode() not in bytes(b) for b in bodies)
