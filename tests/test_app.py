"""Bad input never becomes a 500 or a partial write; every error is problem+json with a code."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select

from pixwave.bootstrap import build_resources
from pixwave.ledger.models import LedgerEntry
from pixwave.payments.models import Transaction
from pixwave.resources import Resources
from tests.factories import Actor, create_actor
from tests.support import free_port


async def _counts(resources: Resources) -> tuple[int, int]:
    async with resources.sessionmaker() as session:
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
        txns = await session.scalar(select(func.count()).select_from(Transaction))
    return int(entries or 0), int(txns or 0)


@pytest.fixture
async def pair(resources: Resources) -> tuple[Actor, Actor]:
    return await create_actor(resources, balance=10_000), await create_actor(resources)


BAD_AMOUNTS = [-1, 0, 10.5, 100.0, "100", "10.50", True, None, 10**13, [100], {"v": 1}]


class TestBadTransfers:
    @pytest.mark.parametrize("amount", BAD_AMOUNTS)
    async def test_bad_amount_is_422_and_writes_nothing(
        self,
        client: httpx.AsyncClient,
        resources: Resources,
        pair: tuple[Actor, Actor],
        amount: object,
    ) -> None:
        """Negative, zero, fractional, textual, boolean or absurd amounts are refused whole."""
        ana, bia = pair
        before = await _counts(resources)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": amount},
            headers=ana.headers(),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"][0]["location"] == "body.amount"
        assert await _counts(resources) == before

    async def test_unknown_field_is_422(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """Typos are not silently ignored: `ammount` is an error, not a missing field."""
        ana, bia = pair
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1, "currency": "USD"},
            headers=ana.headers(),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["type"] == "extra_forbidden"

    @pytest.mark.parametrize("content", [b"{", b"[]", b"null", b"\xff\xfe", b""])
    async def test_malformed_json_is_422(
        self,
        client: httpx.AsyncClient,
        resources: Resources,
        pair: tuple[Actor, Actor],
        content: bytes,
    ) -> None:
        """Broken or wrongly shaped JSON is a validation error, not a crash."""
        ana, _ = pair
        response = await client.post(
            "/v1/transfers",
            content=content,
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    async def test_oversized_body_is_413(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """Bodies beyond the limit are refused before parsing."""
        ana, bia = pair
        before = await _counts(resources)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1, "description": "x" * 100_000},
            headers=ana.headers(),
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert await _counts(resources) == before

    async def test_oversized_chunked_body_is_413(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """A body without Content-Length is counted as it streams in."""
        ana, _ = pair

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"x" * 1024

        response = await client.post(
            "/v1/transfers",
            content=chunks(),
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 413

    async def test_description_over_140_chars_is_422(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """Pix limits payer messages to 140 characters; so do we."""
        ana, bia = pair
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1, "description": "x" * 141},
            headers=ana.headers(),
        )
        assert response.status_code == 422


#: Bodies that are not one JSON document PixWave accepts, and what the message must mention.
NOT_JSON = {
    "malformed": (b'{"to_wallet_id": "wal_x", "amount": 1', "unexpected end"),
    "invalid UTF-8": (b'{"to_wallet_id": "wal_\xff", "amount": 1}', "not UTF-8"),
    "encoded surrogate": (b'{"to_wallet_id": "wal_\xed\xa0\x80", "amount": 1}', "not UTF-8"),
    "10,000 nested arrays": (b"[" * 10_000 + b"]" * 10_000, "depth"),
    "duplicate key": (b'{"to_wallet_id": "wal_x", "amount": 1, "amount": 100000}', "'amount'"),
    "duplicate nested key": (
        b'{"to_wallet_id": "wal_x", "amount": 1, "meta": {"a": 1, "a": 2}}',
        "'a'",
    ),
    "duplicate key, colon in a string": (
        b'{"to_wallet_id": "wal_x", "description": "at 12:30", "amount": 1, "amount": 9}',
        "'amount'",
    ),
}


class TestOneAnswerForBadJson:
    @pytest.mark.parametrize(("content", "mention"), NOT_JSON.values(), ids=NOT_JSON.keys())
    async def test_same_problem_for_every_bad_body(
        self,
        client: httpx.AsyncClient,
        resources: Resources,
        pair: tuple[Actor, Actor],
        content: bytes,
        mention: str,
    ) -> None:
        """Malformed, non-UTF-8, over-deep or key-repeating JSON: one 422, nothing written."""
        ana, _ = pair
        before = await _counts(resources)
        response = await client.post(
            "/v1/transfers",
            content=content,
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"] == [
            {"location": "body", "message": problem["errors"][0]["message"], "type": "json_invalid"}
        ]
        assert mention in problem["errors"][0]["message"]
        assert await _counts(resources) == before

    async def test_last_duplicate_never_wins(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """`{"amount": 1, "amount": 100000}` moves nothing, even with a valid body around it."""
        ana, bia = pair
        content = (
            b'{"to_wallet_id": "' + bia.wallet_id.encode() + b'", "amount": 1, "amount": 5000}'
        )
        response = await client.post(
            "/v1/transfers",
            content=content,
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 422
        wallet = (await client.get("/v1/wallet", headers=bia.headers())).json()
        assert wallet["available"] == 0

    async def test_colon_inside_a_string_is_fine(
        self, client: httpx.AsyncClient, resources: Resources, pair: tuple[Actor, Actor]
    ) -> None:
        """A description with `:` and `\"` in it takes the exact check and passes it."""
        ana, bia = pair
        content = (
            b'{"to_wallet_id": "' + bia.wallet_id.encode() + b'", "amount": 1, '
            b'"description": "lunch at 12:30 \\"x\\": 1"}'
        )
        response = await client.post(
            "/v1/transfers",
            content=content,
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["description"] == 'lunch at 12:30 "x": 1'


class TestErrorShape:
    async def test_unknown_route_is_problem_json(self, client: httpx.AsyncClient) -> None:
        """Even a 404 from the router speaks problem+json."""
        response = await client.get("/v1/nothing-here")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"

    async def test_wrong_method_is_405(self, client: httpx.AsyncClient) -> None:
        """A known path with the wrong verb says so."""
        response = await client.delete("/v1/wallet")
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"


class TestOps:
    async def test_health_and_readiness(self, client: httpx.AsyncClient) -> None:
        """Liveness needs nothing; readiness checks the database, Redis and the broker."""
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {
            "status": "ready",
            "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
        }

    @pytest.mark.parametrize("path", ["/healthz", "/readyz"])
    async def test_head_answers_like_get_without_a_body(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """Load balancers probe with HEAD: the same 200, and no body."""
        response = await client.head(path)
        assert response.status_code == 200
        assert response.content == b""

    async def test_openapi_documents_the_api(self, client: httpx.AsyncClient) -> None:
        """The schema at /openapi.json lists the v1 endpoints and the Idempotency-Key header."""
        spec = (await client.get("/openapi.json")).json()
        for path in ("/v1/wallet", "/v1/transfers", "/v1/transactions", "/v1/admin/adjustments"):
            assert path in spec["paths"]
        params = spec["paths"]["/v1/transfers"]["post"]["parameters"]
        assert any(p["name"] == "Idempotency-Key" for p in params)


class TestDatabaseDown:
    async def test_unreachable_database_is_503(self, resources: Resources) -> None:
        """With the database gone every call is a clean 503 problem, never a 500."""
        from tests.conftest import app_client, make_settings

        down = build_resources(
            make_settings(
                database_url="mysql+aiomysql://root@127.0.0.1:1/pixwave?charset=utf8mb4",
                db_connect_timeout=1,
            )
        )
        try:
            async with app_client(down) as client:
                response = await client.post(
                    "/v1/transfers",
                    json={"to_wallet_id": "wal_x", "amount": 1},
                    headers={"Authorization": "Bearer pxw_any", "Idempotency-Key": "k"},
                )
                ready = await client.get("/readyz")
                ready_head = await client.head("/readyz")
        finally:
            await down.close()
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "service_unavailable"
        assert ready.status_code == 503
        assert (ready_head.status_code, ready_head.content) == (503, b"")


class TestDependencyDown:
    async def test_readiness_fails_when_redis_stops(
        self, own_redis: tuple[str, subprocess.Popen[bytes]], resources: Resources
    ) -> None:
        """A Redis server of its own, stopped mid-test: /readyz turns 503 and names Redis and
        the broker that lives on it; the database still answers."""
        from tests.conftest import app_client, make_settings

        url, server = own_redis
        own = build_resources(
            make_settings(
                database_url=resources.settings.database_url, redis_url=url, redis_timeout=1
            )
        )
        try:
            async with app_client(own) as client:
                before = await client.get("/readyz")
                server.terminate()
                await asyncio.to_thread(server.wait, 10)
                after = await client.get("/readyz")
        finally:
            await own.close()
        assert before.status_code == 200, before.text
        assert after.status_code == 503
        problem = after.json()
        assert problem["code"] == "service_unavailable"
        assert problem["checks"]["database"] == "ok"
        assert problem["checks"]["redis"] != "ok"
        assert problem["checks"]["broker"] != "ok"
        assert "redis (" in problem["detail"]

    async def test_readiness_names_sns_when_it_is_down(self, resources: Resources) -> None:
        """With SNS configured and unreachable, readiness fails and says it is SNS."""
        from pixwave.notifications.sns import SnsPublisher
        from tests.conftest import app_client, make_settings

        resources.sns = SnsPublisher(
            make_settings(
                aws_sns_topic_arn="arn:aws:sns:us-east-1:123456789012:pixwave",
                aws_endpoint_url="http://127.0.0.1:9",
                aws_default_region="us-east-1",
                aws_timeout_seconds=0.5,
                sns_api_key="testing:testing",
            )
        )
        try:
            async with app_client(resources) as client:
                response = await client.get("/readyz")
        finally:
            await resources.sns.close()
            resources.sns = None
        assert response.status_code == 503
        assert response.json()["checks"]["sns"] != "ok"
        assert response.json()["detail"].startswith("not ready: sns (")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server the test may stop (the shared one must stay up)."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed")
    port = free_port()
    server = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url)
        yield url, server
    finally:
        server.kill()
        server.wait()


def _wait_for_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    for _ in range(100):
        try:
            client.ping()
            client.close()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")
