"""/v1/users and tokens: operators create users and hand out their tokens.

Each route lists the errors its service call can raise in `responses=problems(...)`; the route
class adds 401/403 (from `CurrentPrincipal`/`AdminPrincipal`), the idempotency errors and the
required `Idempotency-Key` (from `Idempotent`), and 413/422 for a body (see `kit/problems.py`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts import service
from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal, Principal, self_or_admin
from pixwave.accounts.errors import (
    CannotDeactivateSelf,
    TokenNotFound,
    UserAlreadyExists,
    UserNotFound,
)
from pixwave.accounts.schemas import (
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
    UserStatusChange,
)
from pixwave.exceptions import InvalidDocument, InvalidText
from pixwave.kit.idempotency import Idempotent, IdempotentRequest
from pixwave.kit.pagination import InvalidCursor, Limit, Page, StartingAfter, page_of
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.resources import ReadSession, Resources
from pixwave.unit_of_work import flush_and_commit

router = APIRouter(prefix="/v1", tags=["users"], route_class=PixWaveRoute)


@router.post(
    "/users",
    status_code=201,
    response_model=UserRead,
    responses=problems(UserAlreadyExists, InvalidDocument, InvalidText),
)
async def create_user(body: UserCreate, _admin: AdminPrincipal, call: Idempotent) -> Response:
    """Create a user and their wallet (admin only)."""

    async def work(session: AsyncSession) -> UserRead:
        return await service.create_user(session, body)

    return await call.run(body, work)


@router.get("/users", response_model=Page[UserRead], responses=problems(InvalidCursor))
async def list_users(
    session: ReadSession,
    _admin: AdminPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[UserRead]:
    """Users, newest first (admin only)."""
    users = await service.list_users(session, limit=limit + 1, starting_after=starting_after)
    return page_of(users, limit)


@router.get("/me", response_model=UserRead, responses=problems(UserNotFound))
async def me(session: ReadSession, principal: CurrentPrincipal) -> UserRead:
    """The user the token belongs to."""
    return await service.get_user(session, principal.user_id)


@router.get("/users/{user_id}", response_model=UserRead, responses=problems(UserNotFound))
async def get_user(user_id: str, session: ReadSession, principal: CurrentPrincipal) -> UserRead:
    """A user: admins see anyone, users only themselves (others answer 404)."""
    return await service.get_user(session, self_or_admin(principal, user_id))


@router.post(
    "/users/{user_id}/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=problems(UserNotFound, InvalidText),
)
async def create_token(
    user_id: str, body: TokenCreate, _admin: AdminPrincipal, call: Idempotent
) -> Response:
    """Issue an API token for a user (admin only). The token is shown in this response only."""

    async def work(session: AsyncSession) -> TokenCreated:
        return await service.issue_token(session, user_id=user_id, name=body.name)

    def without_secret(created: BaseModel) -> BaseModel:
        return created.model_copy(update={"token": None})

    return await call.run(body, work, redact=without_secret)


@router.get(
    "/users/{user_id}/tokens",
    response_model=Page[TokenRead],
    responses=problems(UserNotFound, InvalidCursor),
)
async def list_tokens(
    user_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[TokenRead]:
    """A user's tokens, revoked ones included, newest first: prefix, created, last used —
    never the secret (admins: anyone's; users: their own)."""
    tokens = await service.list_tokens(
        session,
        self_or_admin(principal, user_id),
        limit=limit + 1,
        starting_after=starting_after,
    )
    return page_of(tokens, limit)


@router.delete(
    "/users/{user_id}/tokens/{token_id}",
    response_model=TokenRead,
    responses=problems(UserNotFound, TokenNotFound),
)
async def revoke_token(
    user_id: str, token_id: str, request: Request, principal: CurrentPrincipal
) -> TokenRead:
    """Revoke a token (admins: anyone's; users: their own). Every API process refuses it from
    the moment this answers. Revoking it again answers the same, with the first time."""
    resources: Resources = request.app.state.resources
    async with resources.sessionmaker() as session:
        revoked = await service.revoke_token(
            session,
            resources.token_evictions,
            token_id=token_id,
            user_id=self_or_admin(principal, user_id),
        )
        await flush_and_commit(session)  # then the evictions, before the answer
    return revoked


async def _set_active(
    user_id: str,
    body: UserStatusChange,
    request: Request,
    admin: Principal,
    call: IdempotentRequest,
    *,
    active: bool,
) -> Response:
    resources: Resources = request.app.state.resources

    async def work(session: AsyncSession) -> UserRead:
        return await service.set_active(
            session,
            resources.token_evictions,
            user_id=user_id,
            active=active,
            by_user_id=admin.user_id,
            reason=body.reason,
        )

    return await call.run(body, work, status_code=200)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserRead,
    responses=problems(UserNotFound, CannotDeactivateSelf, InvalidText),
)
async def deactivate_user(
    user_id: str,
    body: UserStatusChange,
    request: Request,
    admin: AdminPrincipal,
    call: Idempotent,
) -> Response:
    """Deactivate a user (admin only): none of their tokens works any more, in every process
    at once; their money, holds and payments in flight stay as they are."""
    return await _set_active(user_id, body, request, admin, call, active=False)


@router.post(
    "/users/{user_id}/reactivate",
    response_model=UserRead,
    responses=problems(UserNotFound, InvalidText),
)
async def reactivate_user(
    user_id: str,
    body: UserStatusChange,
    request: Request,
    admin: AdminPrincipal,
    call: Idempotent,
) -> Response:
    """Reactivate a deactivated user (admin only): their tokens that were not revoked work
    again."""
    return await _set_active(user_id, body, request, admin, call, active=True)
