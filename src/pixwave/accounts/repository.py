"""Every query on users and tokens."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.models import ApiToken, User
from pixwave.db import table
from pixwave.ledger.models import AccountKind, LedgerAccount

U = table(User).c
K = table(ApiToken).c
W = table(LedgerAccount).c


async def insert_user(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(table(User)).values(**values))


async def insert_token(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(table(ApiToken)).values(**values))


_USER_WITH_WALLET = select(
    U.id, U.name, U.email, U.document_type, U.document, U.role, U.created_at, U.deactivated_at,
    W.id.label("wallet_id"),
).select_from(
    table(User).outerjoin(
        table(LedgerAccount), (W.user_id == U.id) & (W.kind == AccountKind.WALLET)
    )
)  # fmt: skip


async def get_user(session: AsyncSession, user_id: str) -> dict[str, Any] | None:
    row = (await session.execute(_USER_WITH_WALLET.where(U.id == user_id))).one_or_none()
    return None if row is None else dict(row._mapping)


async def list_users(
    session: AsyncSession, *, limit: int, starting_after: str | None
) -> list[dict[str, Any]]:
    statement = _USER_WITH_WALLET.order_by(U.id.desc()).limit(limit)
    if starting_after:
        statement = statement.where(U.id < starting_after)
    return [dict(r._mapping) for r in await session.execute(statement)]


async def has_user(session: AsyncSession, user_id: str) -> bool:
    return (await session.scalar(select(U.id).where(U.id == user_id))) is not None


async def has_token(session: AsyncSession, user_id: str, token_id: str) -> bool:
    found = await session.scalar(select(K.id).where(K.id == token_id, K.user_id == user_id))
    return found is not None


async def user_exists(session: AsyncSession, *, email: str, document: str | None) -> bool:
    clause = U.email == email
    if document:
        clause = clause | (U.document == document)
    return (await session.scalar(select(U.id).where(clause).limit(1))) is not None


class PrincipalRow(NamedTuple):
    token_id: str
    user_id: str
    role: str
    wallet_id: str | None
    revoked_at: datetime | None
    deactivated_at: datetime | None
    last_used_at: datetime | None
    limit_per_transaction: int | None
    limit_daily: int | None
    limit_nighttime: int | None
    night_starts: time | None


_PRINCIPAL = (
    select(
        K.id,
        U.id,
        U.role,
        W.id,
        K.revoked_at,
        U.deactivated_at,
        K.last_used_at,
        # The user's own limits ride along: a payment judges them without another query.
        U.limit_per_transaction,
        U.limit_daily,
        U.limit_nighttime,
        U.night_starts,
    )
    .select_from(
        table(ApiToken)
        .join(table(User), U.id == K.user_id)
        .outerjoin(table(LedgerAccount), (W.user_id == U.id) & (W.kind == AccountKind.WALLET))
    )
    .where(K.token_hash == bindparam("token_hash"))
)


async def principal_by_token_hash(session: AsyncSession, token_hash: str) -> PrincipalRow | None:
    """Who a token hash belongs to, with what stops it from authenticating, or None."""
    row = (await session.execute(_PRINCIPAL, {"token_hash": token_hash})).one_or_none()
    return None if row is None else PrincipalRow(*row)


async def touch_token(session: AsyncSession, token_id: str, now: datetime) -> None:
    await session.execute(
        update(table(ApiToken))
        .where(K.id == token_id, or_(K.last_used_at.is_(None), K.last_used_at < now))
        .values(last_used_at=now)
    )


_TOKEN_FIELDS = (K.id, K.user_id, K.name, K.prefix, K.created_at, K.last_used_at, K.revoked_at)


async def list_tokens(
    session: AsyncSession, user_id: str, *, limit: int, starting_after: str | None
) -> list[dict[str, Any]]:
    """A user's tokens, newest first — never their hashes."""
    statement = select(*_TOKEN_FIELDS).where(K.user_id == user_id).order_by(K.id.desc())
    if starting_after:
        statement = statement.where(K.id < starting_after)
    return [dict(r._mapping) for r in await session.execute(statement.limit(limit))]


async def get_token(session: AsyncSession, token_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(select(*_TOKEN_FIELDS, K.token_hash).where(K.id == token_id))
    ).one_or_none()
    return None if row is None else dict(row._mapping)


async def revoke_token(session: AsyncSession, token_id: str, now: datetime) -> None:
    """Revoke once: the first revocation's time is kept."""
    await session.execute(
        update(table(ApiToken))
        .where(K.id == token_id, K.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def token_hashes_of(session: AsyncSession, user_id: str) -> list[str]:
    return list(await session.scalars(select(K.token_hash).where(K.user_id == user_id)))


async def set_deactivated(session: AsyncSession, user_id: str, at: datetime | None) -> None:
    """Deactivate (keeping the first time) or reactivate a user."""
    statement = update(table(User)).where(U.id == user_id)
    if at is not None:
        statement = statement.where(U.deactivated_at.is_(None))
    await session.execute(statement.values(deactivated_at=at))
