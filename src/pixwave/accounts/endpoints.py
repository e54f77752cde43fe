"""/v1/users and tokens: operators create users and hand out their tokens."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts import service
from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal
from pixwave.accounts.errors import UserNotFound
from pixwave.accounts.schemas import TokenCreate, TokenCreated, UserCreate, UserRead
from pixwave.kit.idempotency import Idempotent
from pixwave.kit.pagination import Limit, Page, StartingAfter, page_of
from pixwave.resources import ReadSession

router = APIRouter(prefix="/v1", tags=["users"])


@router.post("/users", status_code=201, response_model=UserRead)
async def create_user(body: UserCreate, _admin: AdminPrincipal, call: Idempotent) -> Response:
    """Create a user and their wallet (admin only)."""

    async def work(session: AsyncSession) -> UserRead:
        return await service.create_user(session, body)

    return await call.run(body, work)


@router.get("/users", response_model=Page[UserRead])
async def list_users(
    session: ReadSession,
    _admin: AdminPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[UserRead]:
    """Users, newest first (admin only)."""
    users = await service.list_users(session, limit=limit + 1, starting_after=starting_after)
    return page_of(users, limit)


@router.get("/me", response_model=UserRead)
async def me(session: ReadSession, principal: CurrentPrincipal) -> UserRead:
    """The user the token belongs to."""
    return await service.get_user(session, principal.user_id)


@router.get("/users/{user_id}", response_model=UserRead)
async def get_user(user_id: str, session: ReadSession, principal: CurrentPrincipal) -> UserRead:
    """A user: admins see anyone, users only themselves (others answer 404)."""
    if not principal.is_admin and user_id != principal.user_id:
        raise UserNotFound(f"user {user_id} does not exist")
    return await service.get_user(session, user_id)


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenCreated)
async def create_token(
    user_id: str, body: TokenCreate, _admin: AdminPrincipal, call: Idempotent
) -> Response:
    """Issue an API token for a user (admin only). The token is shown in this response only."""

    async def work(session: AsyncSession) -> TokenCreated:
        return await service.issue_token(session, user_id=user_id, name=body.name)

    def without_secret(created: BaseModel) -> BaseModel:
        return created.model_copy(update={"token": None})

    return await call.run(body, work, redact=without_secret)
