"""Bearer-token authentication: who is calling, and may they.

Lookups are cached in-process (`TOKEN_CACHE_SECONDS`, 30 s) because every request needs one and
a database round trip per request costs more than the rest of a small request. Revoking a
token or deactivating a user must not wait for that window, so it **evicts** the entries at
once: in this process directly, and in every other process through Redis (see
:mod:`pixwave.accounts.revocation`). A lookup that overlapped an eviction is not cached, so a
principal read just before a revocation committed cannot be put back afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Final

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from pixwave.accounts import repository
from pixwave.accounts.errors import UserNotFound
from pixwave.accounts.models import Role
from pixwave.accounts.service import hash_token
from pixwave.db import utcnow
from pixwave.exceptions import Forbidden, Unauthenticated
from pixwave.ledger.errors import AccountNotFound
from pixwave.limits.policy import NO_OVERRIDES, Overrides

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.auth")

#: `last_used_at` is written when a lookup finds it older than this (about once a minute per
#: token), not on every request.
LAST_USED_RESOLUTION: Final = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    user_id: str
    role: Role
    wallet_id: str | None
    #: The user's own money limits (an admin's overrides of the LIMIT_* defaults).
    limits: Overrides = NO_OVERRIDES

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_wallet(self) -> str:
        if self.wallet_id is None:
            raise AccountNotFound("this user has no wallet (admin accounts hold no money)")
        return self.wallet_id


class TokenCache:
    """A tiny TTL map from token hash to principal (or to "unknown", to blunt brute force).

    ``generation`` moves on every eviction: a lookup remembers it before reading the database
    and caches its answer only if no eviction happened meanwhile.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self.generation = 0
        self._items: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, key: str, value: Principal | None, generation: int | None = None) -> None:
        """Cache ``value``; skipped when an eviction happened since ``generation`` was read."""
        if generation is not None and generation != self.generation:
            return
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)

    def evict(self, keys: Iterable[str]) -> None:
        """Forget these token hashes now (a revocation or a deactivation)."""
        self.generation += 1
        for key in keys:
            self._items.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._items.clear()


_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer pxw_…`")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (for callers outside FastAPI's
    dependencies, which get it parsed by ``HTTPBearer``)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(resources: Resources, token: str | None) -> Principal:
    """The principal of a bearer token; Unauthenticated when there is none or it is refused."""
    if not token:
        raise Unauthenticated("send `Authorization: Bearer <token>`")
    token_hash = hash_token(token)
    cache: TokenCache = resources.token_cache
    hit, principal = cache.get(token_hash)
    if not hit:
        generation = cache.generation
        async with resources.sessionmaker() as session:
            row = await repository.principal_by_token_hash(session, token_hash)
        principal = None
        if row is not None and row.revoked_at is None and row.deactivated_at is None:
            principal = Principal(
                token_id=row.token_id,
                user_id=row.user_id,
                role=Role(row.role),
                wallet_id=row.wallet_id,
                limits=Overrides(
                    per_transaction=row.limit_per_transaction,
                    daily=row.limit_daily,
                    nighttime=row.limit_nighttime,
                    night_starts=row.night_starts,
                ),
            )
            if row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION:
                await _note_use(resources, row.token_id)
        cache.put(token_hash, principal, generation)
    if principal is None:
        raise Unauthenticated("the token is unknown or revoked, or its user is deactivated")
    return principal


async def _note_use(resources: Resources, token_id: str) -> None:
    """Record the token's use; a failure costs only the precision of `last_used_at`."""
    try:
        async with resources.sessionmaker() as session, session.begin():
            await repository.touch_token(session, token_id, utcnow())
    except SQLAlchemyError as exc:
        log.warning("auth.last_used_not_recorded", token_id=token_id, error=repr(exc))


def self_or_admin(principal: Principal, user_id: str) -> str:
    """Admins reach any user, users only themselves: another's id answers 404, like a
    missing one."""
    if not principal.is_admin and user_id != principal.user_id:
        raise UserNotFound(f"user {user_id} does not exist")
    return user_id


def require_admin(principal: Principal) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this operation needs an admin token")
    return principal


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = None if credentials is None else credentials.credentials
    return await authenticate(request.app.state.resources, token)


async def admin_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    return require_admin(principal)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
