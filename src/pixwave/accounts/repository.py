"""Every query on users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
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
    U.id, U.name, U.email, U.document_type, U.document, U.role, U.created_at,
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


async def user_exists(session: AsyncSession, *, email: str, document: str | None) -> bool:
    clause = U.email == email
    if document:
        clause = clause | (U.document == document)
    return (await session.scalar(select(U.id).where(clause).limit(1))) is not None


async def principal_by_token_hash(
    session: AsyncSession, token_hash: str
) -> tuple[str, str, str, str | None, datetime | None] | None:
    """(token id, user id, role, wallet id, revoked_at) for a token hash, or None."""
    row = (
        await session.execute(
            select(K.id, U.id, U.role, W.id, K.revoked_at)
            .select_from(
                table(ApiToken)
                .join(table(User), U.id == K.user_id)
                .outerjoin(
                    table(LedgerAccount), (W.user_id == U.id) & (W.kind == AccountKind.WALLET)
                )
            )
            .where(K.token_hash == token_hash)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])
