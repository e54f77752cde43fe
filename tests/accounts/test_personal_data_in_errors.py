"""Refusals about a person do not quote the person's data back."""

from __future__ import annotations

import httpx

from pixwave.resources import Resources
from tests.factories import create_admin


class TestDuplicateUser:
    async def test_the_conflict_does_not_quote_the_email(
        self, client: httpx.AsyncClient, resources: Resources
    ) -> None:
        """A second user with a known e-mail is 409, and the body names no e-mail."""
        admin = await create_admin(resources)
        body = {"name": "A", "email": "quoted.back@example.com", "document": "52998224725"}
        await client.post("/v1/users", json=body, headers=admin.headers())
        again = await client.post("/v1/users", json=body, headers=admin.headers())
        assert again.status_code == 409
        assert "quoted.back" not in again.text
        assert "52998224725" not in again.text
