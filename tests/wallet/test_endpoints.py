"""The wallet API over HTTP on MariaDB + Redis."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from pixwave.ledger.models import LedgerEntry
from pixwave.payments.models import Transaction
from pixwave.resources import Resources
from tests.factories import create_actor, create_admin


async def _rows(resources: Resources, model: type) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestWallet:
    async def test_new_wallet_is_empty(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A new user's wallet has zero posted, held and available."""
        ana = await create_actor(resources)
        response = await client.get("/v1/wallet", headers=ana.headers())
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == ana.wallet_id
        assert (body["posted"], body["held"], body["available"]) == (0, 0, 0)

    async def test_admin_without_wallet_gets_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Operators hold no money: /v1/wallet is not found for them."""
        admin = await create_admin(resources)
        response = await client.get("/v1/wallet", headers=admin.headers())
        assert response.status_code == 404
        assert response.json()["code"] == "wallet_not_found"

    async def test_other_users_wallet_answers_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A user asking for someone else's wallet learns nothing, not even that it exists."""
        ana = await create_actor(resources, balance=1_000)
        bia = await create_actor(resources)
        for path in (f"/v1/wallets/{ana.wallet_id}", f"/v1/wallets/{ana.wallet_id}/statement"):
            response = await client.get(path, headers=bia.headers())
            assert response.status_code == 404
            assert "1000" not in response.text


class TestTransfers:
    async def test_transfer_moves_money_and_returns_201(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A transfer debits the payer, credits the payee and returns the succeeded transaction."""
        ana = await create_actor(resources, balance=10_000)
        bia = await create_actor(resources)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 2_550, "description": "almoço"},
            headers=ana.headers(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["type"] == "transfer"
        assert body["status"] == "succeeded"
        assert body["amount"] == 2_550
        assert body["counterparty_wallet_id"] == bia.wallet_id
        assert (await client.get("/v1/wallet", headers=ana.headers())).json()["available"] == 7_450
        assert (await client.get("/v1/wallet", headers=bia.headers())).json()["available"] == 2_550

    async def test_payee_sees_the_transfer(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The receiving user can read the transfer and finds it in their history."""
        ana = await create_actor(resources, balance=1_000)
        bia = await create_actor(resources)
        created = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 100},
            headers=ana.headers(),
        )
        txn = created.json()["id"]
        assert (
            await client.get(f"/v1/transactions/{txn}", headers=bia.headers())
        ).status_code == 200
        listed = (await client.get("/v1/transactions", headers=bia.headers())).json()
        assert [t["id"] for t in listed["data"]] == [txn]

    async def test_insufficient_funds_is_402_and_writes_nothing(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Paying more than available is refused with a stable code and no rows written."""
        ana = await create_actor(resources, balance=1_000)
        bia = await create_actor(resources)
        entries, transactions = (
            await _rows(resources, LedgerEntry),
            await _rows(resources, Transaction),
        )
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1_001},
            headers=ana.headers(),
        )
        assert response.status_code == 402
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "insufficient_funds"
        assert await _rows(resources, LedgerEntry) == entries
        assert await _rows(resources, Transaction) == transactions

    async def test_unknown_destination_is_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A transfer to a wallet that does not exist is not found and moves nothing."""
        ana = await create_actor(resources, balance=1_000)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": "wal_nope", "amount": 10},
            headers=ana.headers(),
        )
        assert response.status_code == 404
        assert response.json()["code"] == "wallet_not_found"

    @pytest.mark.parametrize("missing", ["wal_0000000000000000000000000", "wal_zzzz"])
    async def test_unknown_destination_is_404_before_the_balance_check(
        self, client: httpx.AsyncClient, resources: Resources, missing: str
    ) -> None:
        """More than the balance to a missing wallet: 404, whichever account is locked first."""
        ana = await create_actor(resources, balance=1_000)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": missing, "amount": 5_000},
            headers=ana.headers(),
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "wallet_not_found"

    async def test_transfer_to_self_is_refused(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Sending to one's own wallet is a client error."""
        ana = await create_actor(resources, balance=1_000)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": ana.wallet_id, "amount": 10},
            headers=ana.headers(),
        )
        assert response.status_code == 400
        assert response.json()["code"] == "same_wallet"

    async def test_transfer_to_a_system_account_is_refused(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """System accounts are not wallets: money cannot be sent into them by users."""
        ana = await create_actor(resources, balance=1_000)
        async with resources.sessionmaker() as session:
            from pixwave.ledger import service as ledger

            system = await ledger.system_account(session, "system:adjustments")
        response = await client.post(
            "/v1/transfers", json={"to_wallet_id": system, "amount": 10}, headers=ana.headers()
        )
        assert response.status_code == 404


class TestStatement:
    async def test_statement_paginates_newest_first(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Pages follow `starting_after` until `has_more` is false, without gaps or repeats."""
        ana = await create_actor(resources, balance=10_000)
        bia = await create_actor(resources)
        for amount in (1, 2, 3, 4, 5):
            await client.post(
                "/v1/transfers",
                json={"to_wallet_id": bia.wallet_id, "amount": amount},
                headers=ana.headers(),
            )
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 2}
            if cursor:
                params["starting_after"] = cursor
            page = (
                await client.get("/v1/wallet/statement", params=params, headers=ana.headers())
            ).json()
            seen.extend(entry["amount"] for entry in page["data"])
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
        assert seen == [-5, -4, -3, -2, -1, 10_000]

    async def test_limit_out_of_range_is_422(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Page sizes are 1–100."""
        ana = await create_actor(resources)
        response = await client.get("/v1/wallet/statement?limit=500", headers=ana.headers())
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


class TestAdjustments:
    async def test_admin_credit_and_debit(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """An operator credits then debits a wallet; each is a ledger movement with its reason."""
        admin = await create_admin(resources)
        ana = await create_actor(resources)
        credit = await client.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": ana.wallet_id,
                "direction": "credit",
                "amount": 5_000,
                "reason": "promo",
            },
            headers=admin.headers(),
        )
        assert credit.status_code == 201, credit.text
        debit = await client.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": ana.wallet_id,
                "direction": "debit",
                "amount": 1_200,
                "reason": "fix",
            },
            headers=admin.headers(),
        )
        assert debit.status_code == 201
        wallet = (await client.get("/v1/wallet", headers=ana.headers())).json()
        assert wallet["posted"] == 3_800
        statement = (await client.get("/v1/wallet/statement", headers=ana.headers())).json()
        assert [(e["amount"], e["description"]) for e in statement["data"]] == [
            (-1_200, "fix"),
            (5_000, "promo"),
        ]

    async def test_debit_beyond_balance_is_refused(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Even an operator cannot push a wallet below zero."""
        admin = await create_admin(resources)
        ana = await create_actor(resources, balance=100)
        response = await client.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": ana.wallet_id,
                "direction": "debit",
                "amount": 101,
                "reason": "oops",
            },
            headers=admin.headers(),
        )
        assert response.status_code == 402

    async def test_adjusting_an_unknown_or_system_account_is_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Adjustments reach user wallets only; anything else is not found and moves nothing."""
        from pixwave.ledger import service as ledger

        admin = await create_admin(resources)
        async with resources.sessionmaker() as session, session.begin():
            system = await ledger.system_account(session, "clearing:test")
        entries = await _rows(resources, LedgerEntry)
        for wallet_id in ("wal_nope", system):
            response = await client.post(
                "/v1/admin/adjustments",
                json={"wallet_id": wallet_id, "direction": "credit", "amount": 1, "reason": "oops"},
                headers=admin.headers(),
            )
            assert response.status_code == 404
            assert response.json()["code"] == "wallet_not_found"
        assert await _rows(resources, LedgerEntry) == entries

    async def test_users_cannot_adjust(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Adjustments are admin-only: a user token gets 403 and nothing moves."""
        ana = await create_actor(resources)
        response = await client.post(
            "/v1/admin/adjustments",
            json={"wallet_id": ana.wallet_id, "direction": "credit", "amount": 1, "reason": "free"},
            headers=ana.headers(),
        )
        assert response.status_code == 403
        assert (await client.get("/v1/wallet", headers=ana.headers())).json()["posted"] == 0

    async def test_reason_is_mandatory(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """An adjustment without a reason is invalid."""
        admin = await create_admin(resources)
        ana = await create_actor(resources)
        response = await client.post(
            "/v1/admin/adjustments",
            json={"wallet_id": ana.wallet_id, "direction": "credit", "amount": 1},
            headers=admin.headers(),
        )
        assert response.status_code == 422
