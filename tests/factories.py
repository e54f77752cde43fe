"""Keyword-only async helpers that build the world a test needs, committed for real."""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass

from pixwave.accounts import service as accounts
from pixwave.accounts.auth import Principal
from pixwave.accounts.models import Role
from pixwave.accounts.schemas import UserCreate, UserRead
from pixwave.pix import generate_cpf
from pixwave.resources import Resources
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import AdjustmentCreate, AdjustmentDirection

_rng = random.Random(20261126)
_seq = itertools.count(1)


@dataclass(frozen=True)
class Actor:
    """A user with a wallet and a token, ready to call the API."""

    user: UserRead
    token: str

    @property
    def wallet_id(self) -> str:
        assert self.user.wallet_id is not None
        return self.user.wallet_id

    @property
    def principal(self) -> Principal:
        return Principal(
            token_id="tok_test",
            user_id=self.user.id,
            role=self.user.role,
            wallet_id=self.user.wallet_id,
        )

    def headers(self, key: str | None = None) -> dict[str, str]:
        """Auth header, plus an Idempotency-Key (a fresh one unless given)."""
        return {
            "Authorization": f"Bearer {self.token}",
            "Idempotency-Key": key or str(uuid.uuid4()),
        }


async def create_user(
    resources: Resources, *, name: str | None = None, role: Role = Role.USER
) -> UserRead:
    n = next(_seq)
    data = UserCreate(
        name=name or f"Test User {n}",
        email=f"user{n}-{uuid.uuid4().hex[:6]}@example.com",
        document=generate_cpf(_rng),
        role=role,
    )
    async with resources.sessionmaker() as session, session.begin():
        return await accounts.create_user(session, data)


async def create_actor(resources: Resources, *, balance: int = 0, role: Role = Role.USER) -> Actor:
    user = await create_user(resources, role=role)
    async with resources.sessionmaker() as session, session.begin():
        token = (await accounts.issue_token(session, user_id=user.id)).token
    assert token is not None  # shown once, at issue
    actor = Actor(user=user, token=token)
    if balance:
        await fund(resources, wallet_id=actor.wallet_id, amount=balance)
    return actor


async def create_admin(resources: Resources) -> Actor:
    return await create_actor(resources, role=Role.ADMIN)


async def fund(resources: Resources, *, wallet_id: str, amount: int) -> None:
    """Credit a wallet the way operators do: an adjustment against the system account."""
    operator = Principal(token_id="tok_test", user_id="usr_test", role=Role.ADMIN, wallet_id=None)
    async with resources.sessionmaker() as session, session.begin():
        await wallets.adjust(
            session,
            operator,
            AdjustmentCreate(
                wallet_id=wallet_id,
                direction=AdjustmentDirection.CREDIT,
                amount=amount,
                reason="test funding",
            ),
        )
