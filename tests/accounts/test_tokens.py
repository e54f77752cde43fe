"""Tokens and users over HTTP: list, revoke, deactivate, reactivate — and who may."""

from __future__ import annotations

import httpx

from pixwave.resources import Resources
from tests.factories import Actor, create_actor, create_admin


def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {actor.token}"}


async def my_token_id(client: httpx.AsyncClient, actor: Actor) -> str:
    listed = await client.get(f"/v1/users/{actor.user.id}/tokens", headers=bearer(actor))
    assert listed.status_code == 200, listed.text
    [token] = listed.json()["data"]
    return str(token["id"])


class TestListTokens:
    async def test_a_user_lists_their_own_without_secrets(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Prefix, creation and last use; neither the token nor its hash."""
        ana = await create_actor(resources)
        listed = await client.get(f"/v1/users/{ana.user.id}/tokens", headers=bearer(ana))
        assert listed.status_code == 200
        [token] = listed.json()["data"]
        assert ana.token.startswith(token["prefix"])
        assert token["last_used_at"] is not None  # this very request used it
        assert ana.token not in listed.text
        assert "hash" not in listed.text

    async def test_another_users_tokens_are_not_found(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A user asking for someone else's tokens gets 404, like a user that does not exist."""
        ana, bia = await create_actor(resources), await create_actor(resources)
        listed = await client.get(f"/v1/users/{bia.user.id}/tokens", headers=bearer(ana))
        assert listed.status_code == 404
        assert listed.json()["code"] == "user_not_found"

    async def test_an_admin_lists_anyones(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Operators see every user's tokens."""
        admin, ana = await create_admin(resources), await create_actor(resources)
        listed = await client.get(f"/v1/users/{ana.user.id}/tokens", headers=bearer(admin))
        assert len(listed.json()["data"]) == 1


class TestRevokeToken:
    async def test_a_user_revokes_their_own_and_it_stops_at_once(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """DELETE answers the revoked token; the next request with it is 401."""
        ana = await create_actor(resources)
        token_id = await my_token_id(client, ana)
        revoked = await client.delete(
            f"/v1/users/{ana.user.id}/tokens/{token_id}", headers=bearer(ana)
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["revoked_at"] is not None
        after = await client.get("/v1/wallet", headers=bearer(ana))
        assert after.status_code == 401

    async def test_revoking_twice_answers_the_first_revocation(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """DELETE is idempotent: the second call answers the same token, same time."""
        admin, ana = await create_admin(resources), await create_actor(resources)
        token_id = await my_token_id(client, ana)
        path = f"/v1/users/{ana.user.id}/tokens/{token_id}"
        first = await client.delete(path, headers=bearer(admin))
        second = await client.delete(path, headers=bearer(admin))
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()

    async def test_a_user_cannot_revoke_anothers(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Another user's token is out of reach (404), whichever user id is named."""
        ana, bia = await create_actor(resources), await create_actor(resources)
        bia_token = await my_token_id(client, bia)
        for owner in (bia.user.id, ana.user.id):
            refused = await client.delete(
                f"/v1/users/{owner}/tokens/{bia_token}", headers=bearer(ana)
            )
            assert refused.status_code == 404, refused.text
        assert (await client.get("/v1/wallet", headers=bearer(bia))).status_code == 200


class TestDeactivation:
    async def test_deactivate_then_reactivate(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """Deactivated: 401 everywhere, money kept; reactivated: the same token works."""
        admin, ana = await create_admin(resources), await create_actor(resources, balance=7_00)
        assert (await client.get("/v1/wallet", headers=bearer(ana))).status_code == 200
        off = await client.post(
            f"/v1/users/{ana.user.id}/deactivate",
            json={"reason": "chargeback investigation"},
            headers=admin.headers(),
        )
        assert off.status_code == 200, off.text
        assert off.json()["deactivated_at"] is not None
        assert (await client.get("/v1/wallet", headers=bearer(ana))).status_code == 401
        wallet = await client.get(f"/v1/wallets/{ana.wallet_id}", headers=bearer(admin))
        assert wallet.json()["posted"] == 7_00
        on = await client.post(
            f"/v1/users/{ana.user.id}/reactivate", json={}, headers=admin.headers()
        )
        assert on.status_code == 200, on.text
        assert on.json()["deactivated_at"] is None
        assert (await client.get("/v1/wallet", headers=bearer(ana))).status_code == 200

    async def test_only_an_admin_deactivates(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A user token is 403 on another user's deactivation."""
        ana, bia = await create_actor(resources), await create_actor(resources)
        refused = await client.post(
            f"/v1/users/{bia.user.id}/deactivate", json={}, headers=ana.headers()
        )
        assert refused.status_code == 403

    async def test_an_admin_cannot_deactivate_themselves(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """409 cannot_deactivate_self: the last operator must not lock everyone out."""
        admin = await create_admin(resources)
        refused = await client.post(
            f"/v1/users/{admin.user.id}/deactivate", json={}, headers=admin.headers()
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "cannot_deactivate_self"


class TestInvalidCursor:
    async def test_every_list_refuses_an_unknown_or_foreign_cursor(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """400 invalid_cursor instead of an empty page that would read as "the end"."""
        admin, ana, bia = (
            await create_admin(resources),
            await create_actor(resources, balance=1_00),
            await create_actor(resources, balance=1_00),
        )
        bia_tx = (await client.get("/v1/transactions", headers=bearer(bia))).json()["data"][0]
        bia_entry = (await client.get("/v1/wallet/statement", headers=bearer(bia))).json()["data"][
            0
        ]
        cases = [
            (ana, "/v1/transactions", bia_tx["id"]),  # another user's transaction
            (ana, "/v1/transactions", "txn_0000000000000000000000000"),
            (ana, "/v1/wallet/statement", bia_entry["id"]),  # another wallet's entry
            (admin, f"/v1/wallets/{ana.wallet_id}/statement", bia_entry["id"]),
            (admin, "/v1/users", "usr_nope"),
            (admin, f"/v1/users/{ana.user.id}/tokens", "tok_nope"),
        ]
        for actor, path, cursor in cases:
            answer = await client.get(
                path, params={"starting_after": cursor}, headers=bearer(actor)
            )
            assert answer.status_code == 400, (path, cursor, answer.text)
            assert answer.json()["code"] == "invalid_cursor"

    async def test_a_real_cursor_pages_on(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A cursor the list itself handed out still works, filters or not."""
        bia = await create_actor(resources, balance=1_00)
        first = (await client.get("/v1/transactions", headers=bearer(bia))).json()["data"][0]
        for params in ({}, {"type": "transfer"}):
            page = await client.get(
                "/v1/transactions",
                params={"starting_after": first["id"], **params},
                headers=bearer(bia),
            )
            assert page.status_code == 200
            assert page.json()["data"] == []


class TestInvalidText:
    async def test_a_bidi_override_has_its_own_code(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A transfer description with U+202E is 422 invalid_text; nothing moves."""
        ana, bia = await create_actor(resources, balance=1_00), await create_actor(resources)
        refused = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1, "description": "\u202e01 $R"},
            headers=ana.headers(),
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_text"
        wallet = await client.get("/v1/wallet", headers=bearer(ana))
        assert wallet.json()["posted"] == 1_00
