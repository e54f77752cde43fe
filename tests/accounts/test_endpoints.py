"""Users, tokens and who may see what."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from pixwave.accounts.models import ApiToken, User
from pixwave.accounts.service import hash_token
from pixwave.ledger.models import LedgerAccount
from pixwave.resources import Resources
from tests.factories import create_actor, create_admin


async def _count(resources: Resources, model: type) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


class TestCreateUser:
    async def test_admin_creates_a_user_with_a_wallet(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The wallet is created with the user; the CPF is stored normalised."""
        admin = await create_admin(resources)
        response = await client.post(
            "/v1/users",
            json={"name": "Ana Souza", "email": "Ana@Example.com", "document": "529.982.247-25"},
            headers=admin.headers(),
        )
        assert response.status_code == 201, response.text
        user = response.json()
        assert user["document"] == "52998224725"
        assert user["document_type"] == "cpf"
        assert user["email"] == "ana@example.com"
        assert user["wallet_id"].startswith("wal_")

    async def test_alphanumeric_cnpj_is_accepted(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Companies with the 2026 alphanumeric CNPJ can be users."""
        admin = await create_admin(resources)
        response = await client.post(
            "/v1/users",
            json={"name": "Loja", "email": "loja@example.com", "document": "12.ABC.345/01DE-35"},
            headers=admin.headers(),
        )
        assert response.status_code == 201, response.text
        assert response.json()["document_type"] == "cnpj"

    @pytest.mark.parametrize(
        "document", ["123.456.789-00", "11111111111", "1234", "12ABC34501DE36"]
    )
    async def test_malformed_document_is_422_and_writes_nothing(
        self, client: httpx.AsyncClient, resources: Resources, document: str
    ) -> None:
        """A CPF/CNPJ with wrong check digits is refused with `invalid_document`."""
        admin = await create_admin(resources)
        users, wallets = await _count(resources, User), await _count(resources, LedgerAccount)
        response = await client.post(
            "/v1/users",
            json={"name": "X", "email": "x@example.com", "document": document},
            headers=admin.headers(),
        )
        assert response.status_code == 422
        assert response.json()["code"] in {"invalid_document", "validation_error"}
        assert await _count(resources, User) == users
        assert await _count(resources, LedgerAccount) == wallets

    async def test_duplicate_email_is_409(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """E-mail addresses identify users; a second one is a conflict."""
        admin = await create_admin(resources)
        body = {"name": "A", "email": "dup@example.com", "document": "52998224725"}
        await client.post("/v1/users", json=body, headers=admin.headers())
        again = await client.post(
            "/v1/users", json={**body, "document": "11144477735"}, headers=admin.headers()
        )
        assert again.status_code == 409
        assert again.json()["code"] == "user_already_exists"

    async def test_users_cannot_create_users(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Only admins create users."""
        ana = await create_actor(resources)
        response = await client.post(
            "/v1/users",
            json={"name": "B", "email": "b@example.com", "document": "11144477735"},
            headers=ana.headers(),
        )
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


class TestTokens:
    async def test_token_is_shown_once_and_stored_hashed(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The response carries the secret; the database only its SHA-256."""
        admin = await create_admin(resources)
        ana = await create_actor(resources)
        response = await client.post(
            f"/v1/users/{ana.user.id}/tokens", json={"name": "mobile"}, headers=admin.headers()
        )
        assert response.status_code == 201
        secret = response.json()["token"]
        async with resources.sessionmaker() as session:
            stored = (await session.execute(select(ApiToken.token_hash))).scalars().all()
        assert secret not in stored
        assert hash_token(secret) in stored
        me = await client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.json()["id"] == ana.user.id

    async def test_token_for_unknown_user_is_404(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """No orphan tokens."""
        admin = await create_admin(resources)
        response = await client.post("/v1/users/usr_nope/tokens", json={}, headers=admin.headers())
        assert response.status_code == 404
        assert response.json()["code"] == "user_not_found"


class TestAuthentication:
    @pytest.mark.parametrize(
        "authorization", [None, "Bearer", "Bearer pxw_unknown", "Basic YTpi", "pxw_x"]
    )
    async def test_missing_or_unknown_token_is_401(
        self, client: httpx.AsyncClient, resources: Resources, authorization: str | None
    ) -> None:
        """Without a valid bearer token nothing is readable."""
        headers = {} if authorization is None else {"Authorization": authorization}
        response = await client.get("/v1/wallet", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"

    async def test_revoked_token_is_401(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A revoked token stops working (after the short auth cache)."""
        from sqlalchemy import update

        from pixwave.db import utcnow

        ana = await create_actor(resources)
        async with resources.sessionmaker() as session, session.begin():
            await session.execute(update(ApiToken).values(revoked_at=utcnow()))
        resources.token_cache.clear()
        assert (await client.get("/v1/wallet", headers=ana.headers())).status_code == 401


class TestVisibility:
    async def test_user_sees_only_themselves(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Another user's id answers 404, the same as an id that does not exist."""
        ana = await create_actor(resources)
        bia = await create_actor(resources)
        own = await client.get(f"/v1/users/{ana.user.id}", headers=ana.headers())
        other = await client.get(f"/v1/users/{bia.user.id}", headers=ana.headers())
        missing = await client.get("/v1/users/usr_missing", headers=ana.headers())
        assert own.status_code == 200
        assert other.status_code == missing.status_code == 404
        assert other.json()["code"] == missing.json()["code"]
        assert bia.user.email not in other.text

    async def test_users_cannot_list_users(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """The user directory is for admins."""
        ana = await create_actor(resources)
        assert (await client.get("/v1/users", headers=ana.headers())).status_code == 403

    async def test_admin_lists_users(self, client: httpx.AsyncClient, resources: Resources) -> None:
        """Admins page through every user."""
        admin = await create_admin(resources)
        for _ in range(3):
            await create_actor(resources)
        page = (await client.get("/v1/users?limit=2", headers=admin.headers())).json()
        assert len(page["data"]) == 2
        assert page["has_more"] is True
