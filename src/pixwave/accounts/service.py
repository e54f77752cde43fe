"""Creating users (each with a wallet) and issuing API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts import repository
from pixwave.accounts.errors import UserAlreadyExists, UserNotFound
from pixwave.accounts.models import DocumentType, Role
from pixwave.accounts.schemas import TokenCreated, UserCreate, UserRead
from pixwave.db import utcnow
from pixwave.kit.ids import new_id
from pixwave.ledger import service as ledger
from pixwave.ledger.models import AccountKind
from pixwave.unit_of_work import flush

TOKEN_PREFIX = "pxw_"  # noqa: S105 - a label, not a secret


def hash_token(token: str) -> str:
    """Tokens are 256-bit random, so a fast unsalted hash is safe and lets lookups be indexed."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(session: AsyncSession, data: UserCreate) -> UserRead:
    """A user and, for the `user` role, the wallet that comes with it."""
    document_type = DocumentType.CPF if len(data.document) == 11 else DocumentType.CNPJ
    email = data.email.lower()
    if await repository.user_exists(session, email=email, document=data.document):
        raise UserAlreadyExists(f"a user with e-mail {email} or this document already exists")
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
        raise UserAlreadyExists(
            f"a user with e-mail {email} or this document already exists"
        ) from exc
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
    rows = await repository.list_users(session, limit=limit, starting_after=starting_after)
    return [UserRead(**row) for row in rows]


async def issue_token(session: AsyncSession, *, user_id: str, name: str = "") -> TokenCreated:
    """Create a token; the secret is returned here and never again."""
    if await repository.get_user(session, user_id) is None:
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
