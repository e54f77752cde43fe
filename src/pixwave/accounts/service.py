"""Creating users (each with a wallet) and issuing API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts import repository
from pixwave.accounts.errors import (
    CannotDeactivateSelf,
    TokenNotFound,
    UserAlreadyExists,
    UserNotFound,
)
from pixwave.accounts.models import DocumentType, Role
from pixwave.accounts.schemas import TokenCreated, TokenRead, UserCreate, UserRead
from pixwave.db import utcnow
from pixwave.kit.ids import new_id
from pixwave.kit.pagination import check_cursor
from pixwave.ledger import service as ledger
from pixwave.ledger.models import AccountKind
from pixwave.unit_of_work import after_commit, flush

if TYPE_CHECKING:
    from pixwave.accounts.revocation import TokenEvictions

log = structlog.get_logger("pixwave.accounts")

TOKEN_PREFIX = "pxw_"  # noqa: S105 - a label, not a secret


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a fast unsalted hash is safe and lets lookups be indexed."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(session: AsyncSession, data: UserCreate) -> UserRead:
    """A user and, for the `user` role, the wallet that comes with it."""
    document_type = DocumentType.CPF if len(data.document) == 11 else DocumentType.CNPJ
    email = data.email.lower()
    if await repository.user_exists(session, email=email, document=data.document):
        # The e-mail is not quoted back: an error body is personal-data free (docs/security.md).
        raise UserAlreadyExists("a user with this e-mail or this document already exists")
    user_id = new_id("usr")
    now = utcnow()
    await flush(session)
    try:
        async with session.begin_nested():
            await repository.insert_user(
                session,
                id=user_id,
                name=data.name,
                email=email,
                document_type=document_type,
                document=data.document,
                role=data.role,
                created_at=now,
            )
    except IntegrityError as exc:  # a concurrent twin won the unique index
        raise UserAlreadyExists("a user with this e-mail or this document already exists") from exc
    wallet_id = None
    if data.role is Role.USER:
        wallet_id = await ledger.open_account(session, kind=AccountKind.WALLET, user_id=user_id)
    return UserRead(
        id=user_id,
        name=data.name,
        email=email,
        document_type=document_type,
        document=data.document,
        role=data.role,
        wallet_id=wallet_id,
        created_at=now,
    )


async def create_admin(session: AsyncSession, *, name: str, email: str) -> str:
    """An operator account without document or wallet (bootstrap from the CLI)."""
    user_id = new_id("usr")
    await repository.insert_user(
        session, id=user_id, name=name, email=email.lower(), role=Role.ADMIN, created_at=utcnow()
    )
    return user_id


async def get_user(session: AsyncSession, user_id: str) -> UserRead:
    row = await repository.get_user(session, user_id)
    if row is None:
        raise UserNotFound(f"user {user_id} does not exist")
    return UserRead(**row)


async def list_users(
    session: AsyncSession, *, limit: int, starting_after: str | None
) -> list[UserRead]:
    if starting_after is not None:
        check_cursor(await repository.has_user(session, starting_after), starting_after)
    rows = await repository.list_users(session, limit=limit, starting_after=starting_after)
    return [UserRead(**row) for row in rows]


async def issue_token(session: AsyncSession, *, user_id: str, name: str = "") -> TokenCreated:
    """Create a token; the secret is returned here and never again."""
    if not await repository.has_user(session, user_id):
        raise UserNotFound(f"user {user_id} does not exist")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id("tok")
    now = utcnow()
    values: dict[str, Any] = {
        "id": token_id,
        "user_id": user_id,
        "token_hash": hash_token(secret),
        "prefix": secret[:12],
        "name": name,
        "created_at": now,
    }
    await repository.insert_token(session, **values)
    return TokenCreated(
        id=token_id, user_id=user_id, name=name, prefix=secret[:12], token=secret, created_at=now
    )


async def list_tokens(
    session: AsyncSession, user_id: str, *, limit: int, starting_after: str | None
) -> list[TokenRead]:
    """A user's tokens (revoked ones too), newest first, without any secret."""
    if not await repository.has_user(session, user_id):
        raise UserNotFound(f"user {user_id} does not exist")
    if starting_after is not None:
        found = await repository.has_token(session, user_id, starting_after)
        check_cursor(found, starting_after)
    rows = await repository.list_tokens(
        session, user_id, limit=limit, starting_after=starting_after
    )
    return [TokenRead(**row) for row in rows]


async def revoke_token(
    session: AsyncSession, evictions: TokenEvictions, *, token_id: str, user_id: str | None
) -> TokenRead:
    """Revoke a token (of ``user_id``, when given); every process stops accepting it once this
    commits. Revoking a revoked token changes nothing and answers the same: the call is
    idempotent by itself."""
    row = await repository.get_token(session, token_id)
    if row is None or (user_id is not None and row["user_id"] != user_id):
        raise TokenNotFound(f"no token {token_id}" + (f" of user {user_id}" if user_id else ""))
    user_id = row["user_id"]
    token_hash = row.pop("token_hash")
    if row["revoked_at"] is None:
        now = utcnow()
        await repository.revoke_token(session, token_id, now)
        row["revoked_at"] = now
        log.info("accounts.token_revoked", user_id=user_id, token_id=token_id)
    _evict_after_commit(session, evictions, [token_hash])
    return TokenRead(**row)


async def set_active(
    session: AsyncSession,
    evictions: TokenEvictions,
    *,
    user_id: str,
    active: bool,
    by_user_id: str,
    reason: str = "",
) -> UserRead:
    """Deactivate a user — none of their tokens authenticates any more; their money, holds and
    payments in flight stay as they are — or reactivate them (their unrevoked tokens work
    again). An operator cannot deactivate themselves: that could lock every operator out."""
    if not active and user_id == by_user_id:
        raise CannotDeactivateSelf("an operator cannot deactivate their own account")
    if not await repository.has_user(session, user_id):
        raise UserNotFound(f"user {user_id} does not exist")
    await repository.set_deactivated(session, user_id, None if active else utcnow())
    # Either way the cached answers are wrong now: principals after a deactivation, "unknown"
    # (cached to blunt guessing) after a reactivation.
    await evict_user_after_commit(session, evictions, user_id)
    log.info(
        "accounts.user_reactivated" if active else "accounts.user_deactivated",
        user_id=user_id,
        by_user_id=by_user_id,
        reason=reason,
    )
    return await get_user(session, user_id)


async def evict_user_after_commit(
    session: AsyncSession, evictions: TokenEvictions, user_id: str
) -> None:
    """Once this unit of work commits, forget every cached lookup of the user's tokens in
    every process: what they carry (active or not, the user's limits) changed."""
    _evict_after_commit(session, evictions, await repository.token_hashes_of(session, user_id))


def _evict_after_commit(
    session: AsyncSession, evictions: TokenEvictions, token_hashes: list[str]
) -> None:
    async def evict() -> None:
        await evictions.announce(token_hashes)

    after_commit(session, evict)
