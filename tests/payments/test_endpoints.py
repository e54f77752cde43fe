"""/v1/transactions: the payment history, filtered, paginated and private."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pixwave.resources import Resources
from tests.factories import create_actor, create_admin


async def _history(client: httpx.AsyncClient, resources: Resources) -> tuple:  # type: ignore[type-arg]
    ana = await create_actor(resources, balance=10_000)
    bia = await create_actor(resources)
    ids = []
    for amount in (100, 200, 300):
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": amount},
            headers=ana.headers(),
        )
        ids.append(response.json()["id"])
    return ana, bia, ids


class TestList:
    async def test_filters_by_type(self, client: httpx.AsyncClient, resources: Resources) -> None:
        """`type=transfer` leaves out the funding adjustment."""
        ana, _bia, ids = await _history(client, resources)
        all_ = (await client.get("/v1/transactions", headers=ana.headers())).json()["data"]
        transfers = (
            await client.get("/v1/transactions?type=transfer", headers=ana.headers())
        ).json()["data"]
        assert len(all_) == 4
        assert [t["id"] for t in transfers] == list(reversed(ids))

    async def test_filters_by_status_and_dates(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Status and a created-at window narrow the list."""
        ana, _bia, _ids = await _history(client, resources)
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        failed = await client.get("/v1/transactions?status=failed", headers=ana.headers())
        assert failed.json()["data"] == []
        window = await client.get(
            "/v1/transactions",
            params={"created_gte": past, "created_lt": future},
            headers=ana.headers(),
        )
        assert len(window.json()["data"]) == 4
        later = await client.get(
            "/v1/transactions", params={"created_gte": future}, headers=ana.headers()
        )
        assert later.json()["data"] == []

    async def test_naive_date_is_422(self, client: httpx.AsyncClient, resources: Resources) -> None:
        """A date without a time zone is ambiguous and refused."""
        ana = await create_actor(resources)
        response = await client.get(
            "/v1/transactions?created_gte=2026-01-01T00:00:00", headers=ana.headers()
        )
        assert response.status_code == 422

    @pytest.mark.parametrize("value", ["0.5", "1765000000", "2026-12-06"])
    async def test_a_number_or_a_bare_date_is_not_a_date_time(
        self, client: httpx.AsyncClient, resources: Resources, value: str
    ) -> None:
        """`created_lt=0.5` is not read as a Unix timestamp: the filters take RFC 3339 only."""
        ana = await create_actor(resources)
        response = await client.get(
            "/v1/transactions", params={"created_lt": value}, headers=ana.headers()
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    async def test_unknown_status_is_422(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Filters only take known values."""
        ana = await create_actor(resources)
        response = await client.get("/v1/transactions?status=paid", headers=ana.headers())
        assert response.status_code == 422

    async def test_pagination_walks_every_item_once(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """limit=1 pages through all four items in order."""
        ana, _bia, _ids = await _history(client, resources)
        seen, cursor = [], None
        while True:
            params = {"limit": 1, **({"starting_after": cursor} if cursor else {})}
            page = (
                await client.get("/v1/transactions", params=params, headers=ana.headers())
            ).json()
            seen += [t["id"] for t in page["data"]]
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert len(seen) == len(set(seen)) == 4
        assert seen == sorted(seen, reverse=True)

    async def test_admin_sees_any_wallet(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Admins may filter by wallet; users cannot widen their view with it."""
        ana, bia, _ids = await _history(client, resources)
        admin = await create_admin(resources)
        by_admin = await client.get(
            f"/v1/transactions?wallet_id={ana.wallet_id}", headers=admin.headers()
        )
        assert len(by_admin.json()["data"]) == 4
        outsider = await create_actor(resources)
        sneaky = await client.get(
            f"/v1/transactions?wallet_id={ana.wallet_id}", headers=outsider.headers()
        )
        assert sneaky.json()["data"] == []
        del bia


class TestGet:
    async def test_another_users_transaction_is_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """An outsider cannot read a transaction, and cannot tell it exists."""
        _ana, _bia, ids = await _history(client, resources)
        outsider = await create_actor(resources)
        response = await client.get(f"/v1/transactions/{ids[0]}", headers=outsider.headers())
        assert response.status_code == 404
        assert response.json()["code"] == "transaction_not_found"
        assert "amount" not in response.json()
