"""/v1/users/{user_id}/limits: the money limits in force for a user, and an admin's overrides."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal, self_or_admin
from pixwave.accounts.errors import UserNotFound
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.ledger.errors import AccountNotFound
from pixwave.limits.schemas import LimitsRead, LimitsUpdate
from pixwave.resources import ReadSession, Resources
from pixwave.unit_of_work import flush_and_commit

router = APIRouter(prefix="/v1", tags=["limits"], route_class=PixWaveRoute)


@router.get(
    "/users/{user_id}/limits",
    response_model=LimitsRead,
    responses=problems(UserNotFound, AccountNotFound),
)
async def get_limits(
    user_id: str, request: Request, session: ReadSession, principal: CurrentPrincipal
) -> LimitsRead:
    """The limits on a user's withdrawals and transfers now — per payment, per day and per
    night period — and how much of each period is spent (admins: anyone's; users: their own)."""
    resources: Resources = request.app.state.resources
    return await resources.limits.view(session, self_or_admin(principal, user_id))


@router.put(
    "/users/{user_id}/limits",
    response_model=LimitsRead,
    responses=problems(UserNotFound, AccountNotFound),
)
async def set_limits(
    user_id: str, body: LimitsUpdate, request: Request, admin: AdminPrincipal
) -> LimitsRead:
    """Set a user's own limits (admin only), replacing earlier ones; `null` keeps the operator's
    default. They apply to the user's next payment, in every API process. Idempotent by
    nature: the same body twice leaves the same limits."""
    resources: Resources = request.app.state.resources
    async with resources.sessionmaker() as session:
        limits = await resources.limits.set_for(
            session,
            resources.token_evictions,
            user_id=user_id,
            data=body,
            by_user_id=admin.user_id,
        )
        await flush_and_commit(session)  # then the evictions, before the answer
    return limits
