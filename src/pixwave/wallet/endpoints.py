"""/v1/wallet, its statement, transfers, and admin adjustments."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal
from pixwave.exceptions import InvalidText
from pixwave.kit.idempotency import Grouped, Idempotent
from pixwave.kit.pagination import InvalidCursor, Limit, Page, StartingAfter, page_of
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.ledger.errors import AccountNotFound, InsufficientFunds
from pixwave.limits.errors import LIMIT_ERRORS
from pixwave.limits.group import PayerClaim, PayerGroup
from pixwave.payments.schemas import TransactionRead
from pixwave.resources import ReadSession, Resources
from pixwave.wallet import service
from pixwave.wallet.schemas import AdjustmentCreate, StatementEntry, TransferCreate, WalletRead

router = APIRouter(prefix="/v1", tags=["wallet"], route_class=PixWaveRoute)

#: An admin token has no wallet of its own; another user's wallet looks like a missing one.
_WALLET = problems(AccountNotFound)


@router.get("/wallet", response_model=WalletRead, responses=_WALLET)
async def get_wallet(session: ReadSession, principal: CurrentPrincipal) -> WalletRead:
    """The caller's balances: posted, held and available (centavos)."""
    return await service.get_wallet(session, principal)


@router.get(
    "/wallet/statement",
    response_model=Page[StatementEntry],
    responses=problems(AccountNotFound, InvalidCursor),
)
async def get_statement(
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[StatementEntry]:
    """The caller's ledger entries, newest first."""
    entries = await service.statement(
        session, principal, starting_after=starting_after, limit=limit + 1
    )
    return page_of(entries, limit)


@router.get("/wallets/{wallet_id}", response_model=WalletRead, responses=_WALLET)
async def get_any_wallet(
    wallet_id: str, session: ReadSession, principal: CurrentPrincipal
) -> WalletRead:
    """A wallet by id: admins see any, users only their own (others answer 404)."""
    return await service.get_wallet(session, principal, wallet_id)


@router.get(
    "/wallets/{wallet_id}/statement",
    response_model=Page[StatementEntry],
    responses=problems(AccountNotFound, InvalidCursor),
)
async def get_any_statement(
    wallet_id: str,
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[StatementEntry]:
    """A wallet's ledger entries by id, with the same visibility rule."""
    entries = await service.statement(
        session, principal, wallet_id=wallet_id, starting_after=starting_after, limit=limit + 1
    )
    return page_of(entries, limit)


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransactionRead,
    tags=["payments"],
    responses=problems(
        service.SameWallet,
        AccountNotFound,
        InsufficientFunds,
        InvalidText,
        *LIMIT_ERRORS,
    ),
)
async def create_transfer(
    body: TransferCreate, request: Request, principal: CurrentPrincipal, call: Idempotent
) -> Response:
    """Send money to another PixWave wallet, at once, within the payer's limits (403
    `*_limit_exceeded`, nothing moved). Needs `Idempotency-Key`."""
    resources: Resources = request.app.state.resources

    async def work(session: AsyncSession) -> TransactionRead:
        return await service.transfer(session, resources.limits, principal, body)

    grouped = None
    if resources.transfers is not None:

        async def in_group(session: AsyncSession, group: PayerGroup) -> TransactionRead:
            return await service.transfer(session, resources.limits, principal, body, group)

        claim = PayerClaim(principal, resources.limits, also=(body.to_wallet_id,))
        grouped = Grouped(resources.transfers, in_group, claim)
    return await call.run(body, work, grouped=grouped)


@router.post(
    "/admin/adjustments",
    status_code=201,
    response_model=TransactionRead,
    tags=["admin"],
    responses=problems(AccountNotFound, InsufficientFunds, InvalidText),
)
async def create_adjustment(
    body: AdjustmentCreate, principal: AdminPrincipal, call: Idempotent
) -> Response:
    """Credit or debit a wallet with a reason, against the adjustments system account."""

    async def work(session: AsyncSession) -> TransactionRead:
        return await service.adjust(session, principal, body)

    return await call.run(body, work)
