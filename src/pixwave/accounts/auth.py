"""Bearer-token authentication: who is calling, and may they.

Lookups are cached in-process (`TOKEN_CACHE_SECONDS`, 30 s) because every request needs one and
a database round trip per request costs more than the rest of a small request; a revoked token
therefore stops working within that window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pixwave.accounts import repository
from pixwave.accounts.models import Role
from pixwave.accounts.service import hash_token
from pixwave.exceptions import Forbidden, Unauthenticated
from pixwave.ledger.errors import AccountNotFound


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    user_id: str
    role: Role
    wallet_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_wallet(self) -> str:
        if self.wallet_id is None:
            raise AccountNotFound("this user has no wallet (admin accounts hold no money)")
        return self.wallet_id


class TokenCache:
    """A tiny TTL map from token hash to principal (or to "unknown", to blunt brute force)."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._items: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, key: str, value: Principal | None) -> None:
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._items.clear()


_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer pxw_…`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("send `Authorization: Bearer <token>`")
    resources = request.app.state.resources
    token_hash = hash_token(credentials.credentials)
    cache: TokenCache = resources.token_cache
    hit, principal = cache.get(token_hash)
    if not hit:
        async with resources.sessionmaker() as session:
            row = await repository.principal_by_token_hash(session, token_hash)
        principal = None
        if row is not None and row[4] is None:
            principal = Principal(
                token_id=row[0], user_id=row[1], role=Role(row[2]), wallet_id=row[3]
            )
        cache.put(token_hash, principal)
    if principal is None:
        raise Unauthenticated("the token is unknown or revoked")
    return principal


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin token")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
