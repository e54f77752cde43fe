"""/v1/transactions: the payment history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from pixwave.accounts.auth import CurrentPrincipal
from pixwave.kit.pagination import Limit, Page, StartingAfter, page_of
from pixwave.payments import service
from pixwave.payments.schemas import TransactionRead
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.resources import ReadSession

router = APIRouter(prefix="/v1", tags=["payments"])


@router.get("/transactions", response_model=Page[TransactionRead])
async def list_transactions(
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    type: Annotated[TransactionType | None, Query(description="Only this type.")] = None,
    status: Annotated[TransactionStatus | None, Query(description="Only this status.")] = None,
    created_gte: Annotated[
        AwareDatetime | None, Query(description="Created at or after (RFC 3339).")
    ] = None,
    created_lt: Annotated[
        AwareDatetime | None, Query(description="Created before (RFC 3339).")
    ] = None,
    wallet_id: Annotated[str | None, Query(description="Admins: one wallet's history.")] = None,
) -> Page[TransactionRead]:
    """Transactions, newest first, filtered and cursor-paginated."""
    items = await service.list_for(
        session,
        principal,
        wallet_id=wallet_id,
        type_=type,
        status=status,
        created_gte=created_gte,
        created_lt=created_lt,
        starting_after=starting_after,
        limit=limit + 1,
    )
    return page_of(items, limit)


@router.get("/transactions/{transaction_id}", response_model=TransactionRead)
async def get_transaction(
    transaction_id: str, session: ReadSession, principal: CurrentPrincipal
) -> TransactionRead:
    """One transaction; another user's answers 404."""
    return await service.get_for(session, principal, transaction_id)
