"""/v1/transactions: the payment history, and accepting deposits, withdrawals and refunds."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import CurrentPrincipal, Principal
from pixwave.exceptions import InvalidPixKey, InvalidText
from pixwave.kit.idempotency import Grouped, Idempotent
from pixwave.kit.pagination import InvalidCursor, Limit, Page, StartingAfter, page_of
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.ledger.errors import AccountNotFound, InsufficientFunds
from pixwave.limits.errors import LIMIT_ERRORS
from pixwave.limits.group import PayerClaim, PayerGroup
from pixwave.payments import flows, repository, service
from pixwave.payments.schemas import (
    AttemptRead,
    DepositCreate,
    RefundCreate,
    TransactionRead,
    WithdrawalCreate,
)
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.resources import ReadSession, Resources


def _rfc3339_text(value: object) -> object:
    """Only a date-time written out: pydantic would read `0.5` as a Unix timestamp."""
    if isinstance(value, str) and not _RFC3339_START.match(value):
        raise ValueError("an RFC 3339 date-time, e.g. 2026-12-06T20:00:00-03:00")
    return value


_RFC3339_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]

router = APIRouter(prefix="/v1", tags=["payments"], route_class=PixWaveRoute)


@router.get(
    "/transactions", response_model=Page[TransactionRead], responses=problems(InvalidCursor)
)
async def list_transactions(
    session: ReadSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    type: Annotated[TransactionType | None, Query(description="Only this type.")] = None,
    status: Annotated[TransactionStatus | None, Query(description="Only this status.")] = None,
    created_gte: Annotated[
        Rfc3339 | None, Query(description="Created at or after (RFC 3339).")
    ] = None,
    created_lt: Annotated[Rfc3339 | None, Query(description="Created before (RFC 3339).")] = None,
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


@router.get(
    "/transactions/{transaction_id}",
    response_model=TransactionRead,
    responses=problems(service.TransactionNotFound),
)
async def get_transaction(
    transaction_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    """One transaction with its gateway attempts; another user's answers 404.

    Served from Redis when fresh; a status change makes the cached copy unreachable the moment
    it commits (versioned keys), so a status is never served stale.
    """
    resources: Resources = request.app.state.resources
    cache = resources.transaction_cache
    version = None
    if cache is not None:
        version, cached = await cache.get(transaction_id)
        if cached is not None:
            # "<wallet> <counterparty>\n<body>": who may see it, without parsing the body.
            owners, _, body = cached.partition(b"\n")
            if not _visible(principal, owners.decode().split(" ")):
                raise service.TransactionNotFound(f"transaction {transaction_id} does not exist")
            return Response(body, media_type="application/json")
    async with resources.sessionmaker() as session:
        read = await _read_with_attempts(session, principal, transaction_id)
    body = read.model_dump_json().encode()
    if cache is not None and version is not None:
        owners = f"{read.wallet_id} {read.counterparty_wallet_id or '-'}".encode()
        await cache.put(transaction_id, version, owners + b"\n" + body)
    return Response(body, media_type="application/json")


def _visible(principal: Principal, wallets: list[str]) -> bool:
    return principal.is_admin or (
        principal.wallet_id is not None and principal.wallet_id in wallets
    )


async def _read_with_attempts(
    session: AsyncSession, principal: Principal, transaction_id: str
) -> TransactionRead:
    read = await service.get_for(session, principal, transaction_id)
    attempts = await repository.list_attempts(session, transaction_id)
    return read.model_copy(update={"attempts": [AttemptRead(**a) for a in attempts]})


_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)", re.IGNORECASE)

PreferHeader = Annotated[
    str | None,
    Header(
        alias="Prefer",
        description="`wait=N` (RFC 7240): answer when the payment is ready, up to N seconds.",
    ),
]


ACCEPTED = "Accepted: recorded as `pending`; a job works it. Poll `GET /v1/transactions/{id}`."

#: The answer `Prefer: wait=N` gives when the payment moved on in time (see `_answer`).
READY: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TransactionRead,
        "description": "With `Prefer: wait=N`: the payment left `pending`/`processing` within "
        "N seconds (capped by `PREFER_WAIT_MAX_SECONDS`). Otherwise, or when it did not, 202.",
        "headers": {
            "Preference-Applied": {
                "description": "`wait=N`, echoing the preference that was honoured.",
                "schema": {"type": "string"},
            }
        },
    }
}


async def _answer(
    request: Request, principal: Principal, created: Response, prefer: str | None
) -> Response:
    """The stored 202, or — with `Prefer: wait=N` — the payment once it has moved on."""
    match = _WAIT.search(prefer or "")
    if created.status_code != 202 or match is None:
        return created
    resources: Resources = request.app.state.resources
    seconds = min(float(match.group(1)), resources.settings.prefer_wait_max_seconds)
    transaction_id = TransactionRead.model_validate_json(bytes(created.body)).id
    deadline = time.monotonic() + seconds
    while True:
        async with resources.sessionmaker() as session:
            read = await _read_with_attempts(session, principal, transaction_id)
        if read.status not in (TransactionStatus.PENDING, TransactionStatus.PROCESSING):
            ready = True
            break
        if time.monotonic() >= deadline:
            ready = False
            break
        await asyncio.sleep(0.05)
    headers = {k: v for k, v in created.headers.items() if k.lower() == "idempotent-replayed"}
    headers["Preference-Applied"] = f"wait={match.group(1)}"
    return Response(
        read.model_dump_json().encode(),
        status_code=200 if ready else 202,
        media_type="application/json",
        headers=headers,
    )


@router.post(
    "/deposits",
    status_code=202,
    response_model=TransactionRead,
    response_description=ACCEPTED,
    responses={**READY, **problems(AccountNotFound, InvalidText)},
)
async def create_deposit(
    body: DepositCreate,
    request: Request,
    principal: CurrentPrincipal,
    call: Idempotent,
    prefer: PreferHeader = None,
) -> Response:
    """Cash-in: accept at once (`pending`); a job creates the Pix charge on the healthiest
    gateway, and the transaction becomes `awaiting_payment` with the BR Code and QR image.
    `Prefer: wait=N` answers with the ready charge when it is ready within N seconds."""
    resources: Resources = request.app.state.resources

    async def work(session: AsyncSession) -> TransactionRead:
        return await flows.create_deposit(session, resources, principal, body)

    return await _answer(request, principal, await call.run(body, work, status_code=202), prefer)


@router.post(
    "/withdrawals",
    status_code=202,
    response_model=TransactionRead,
    response_description=ACCEPTED,
    responses={
        **READY,
        **problems(AccountNotFound, InsufficientFunds, InvalidPixKey, InvalidText, *LIMIT_ERRORS),
    },
)
async def create_withdrawal(
    body: WithdrawalCreate,
    request: Request,
    principal: CurrentPrincipal,
    call: Idempotent,
    prefer: PreferHeader = None,
) -> Response:
    """Cash-out to a Pix key: the amount is held at once (402 `insufficient_funds` if it is
    not available; 403 `*_limit_exceeded` over the payer's limits, nothing held); a job sends
    it through a gateway that can send, never twice."""
    resources: Resources = request.app.state.resources

    async def work(session: AsyncSession) -> TransactionRead:
        return await flows.create_withdrawal(session, resources, principal, body)

    grouped = None
    if resources.withdrawals is not None:

        async def in_group(session: AsyncSession, group: PayerGroup) -> TransactionRead:
            return await flows.create_withdrawal(session, resources, principal, body, group)

        grouped = Grouped(resources.withdrawals, in_group, PayerClaim(principal, resources.limits))
    answer = await call.run(body, work, status_code=202, grouped=grouped)
    return await _answer(request, principal, answer, prefer)


@router.post(
    "/transactions/{transaction_id}/refunds",
    status_code=202,
    response_model=TransactionRead,
    response_description=ACCEPTED,
    responses={
        **READY,
        **problems(
            service.TransactionNotFound,
            flows.NotRefundable,
            flows.RefundTooLarge,
            InsufficientFunds,
            InvalidText,
        ),
    },
)
async def create_refund(
    transaction_id: str,
    body: RefundCreate,
    request: Request,
    principal: CurrentPrincipal,
    call: Idempotent,
    prefer: PreferHeader = None,
) -> Response:
    """Refund all (no amount) or part of a received deposit, through the gateway that
    received it; the wallet is debited when the refund succeeds (held until then)."""
    resources: Resources = request.app.state.resources

    async def work(session: AsyncSession) -> TransactionRead:
        return await flows.create_refund(session, resources, principal, transaction_id, body)

    return await _answer(request, principal, await call.run(body, work, status_code=202), prefer)
