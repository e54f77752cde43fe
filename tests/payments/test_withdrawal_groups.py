"""Withdrawals accepted in group commits (`kit/groupcommit.py`), on MariaDB + Redis and on
SQLite: concurrent withdrawals share one transaction, each hold is judged in memory in arrival
order, a refusal refuses only itself, and each accepted withdrawal's job is enqueued once —
with the same answers as with group commit off."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.ledger.models import LedgerHold
from pixwave.limits.group import PayerGroup
from pixwave.observability.metrics import GROUP_COMMIT_FALLBACKS
from pixwave.payments.models import Transaction
from pixwave.payments.tasks import ADVANCE
from pixwave.resources import Resources
from tests.conftest import app_client
from tests.factories import Actor, create_actor
from tests.notifications.webhooks.support import Kicks
from tests.wallet.test_group_commit import (
    Groups,
    grouped,
    lose_group_commit_answers,
    set_daily_limit,
    ungrouped,
)

__all__ = ["grouped", "ungrouped"]  # fixtures shared with the transfers' group commit tests

PIX_KEY = "+5511987654321"


@pytest.fixture
def kicks(grouped: Resources, monkeypatch: pytest.MonkeyPatch) -> Kicks:
    """Jobs are recorded, not run: what is tested is the acceptance."""
    return Kicks.on(grouped, monkeypatch)


@pytest.fixture
def groups(grouped: Resources) -> Groups:
    assert grouped.withdrawals is not None
    return Groups(grouped.withdrawals)


async def _withdraw(
    client: httpx.AsyncClient, actor: Actor, amount: int, key: str | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/withdrawals", json={"amount": amount, "pix_key": PIX_KEY}, headers=actor.headers(key)
    )


async def _wallet(client: httpx.AsyncClient, actor: Actor) -> tuple[int, int]:
    wallet = (await client.get("/v1/wallet", headers=actor.headers())).json()
    return int(wallet["available"]), int(wallet["held"])


async def _count(resources: Resources, model: type) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_concurrent_withdrawals_are_accepted_in_one_group(
    grouped: Resources, groups: Groups, kicks: Kicks
) -> None:
    """Ten payers at once: groups of several, ten answers, each amount held, each job once."""
    payers = [await create_actor(grouped, balance=1_000) for _ in range(10)]
    async with app_client(grouped) as client:
        for payer in payers:  # tokens looked up once, so the withdrawals arrive together
            await _wallet(client, payer)
        answers = await asyncio.gather(
            *(_withdraw(client, p, 100 + i) for i, p in enumerate(payers))
        )
        assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
        for i, payer in enumerate(payers):
            assert await _wallet(client, payer) == (1_000 - 100 - i, 100 + i)
    assert max(groups.sizes) > 1, groups.sizes
    assert sorted(kicks.of(ADVANCE)) == sorted(a.json()["id"] for a in answers)
    assert await _count(grouped, LedgerHold) == 10


async def _refusal_journey(resources: Resources, kicks: Kicks) -> None:
    """At once: the same payer's second 600 of 1,000 is refused (in arrival order) and enqueues
    nothing; another payer's withdrawal goes through; a refusal replays as it was."""
    ana = await create_actor(resources, balance=1_000)
    bia = await create_actor(resources, balance=500)
    async with app_client(resources) as client:
        first, second, fine = await asyncio.gather(
            _withdraw(client, ana, 600, key="ana-1"),
            _withdraw(client, ana, 600, key="ana-2"),
            _withdraw(client, bia, 500, key="bia-1"),
        )
        codes = sorted([first.status_code, second.status_code])
        assert codes == [202, 402], (first.text, second.text)
        accepted, refused = (first, second) if first.status_code == 202 else (second, first)
        assert refused.json()["code"] == "insufficient_funds"
        assert fine.status_code == 202, fine.text
        assert await _wallet(client, ana) == (400, 600)
        assert await _wallet(client, bia) == (0, 500)
        key = "ana-1" if refused is first else "ana-2"
        again = await _withdraw(client, ana, 600, key=key)
        assert again.status_code == 402
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["detail"] == refused.json()["detail"]
    assert sorted(kicks.of(ADVANCE)) == sorted([accepted.json()["id"], fine.json()["id"]])
    assert await _count(resources, LedgerHold) == 2


async def test_a_refusal_refuses_only_itself_and_replays(
    grouped: Resources, groups: Groups, kicks: Kicks
) -> None:
    fallbacks = GROUP_COMMIT_FALLBACKS.labels("withdrawals")._value.get()
    await _refusal_journey(grouped, kicks)
    assert max(groups.sizes) >= 2, groups.sizes
    # Decided in the group, in memory: not by the database's guard failing the whole group.
    assert GROUP_COMMIT_FALLBACKS.labels("withdrawals")._value.get() == fallbacks


async def test_with_group_commit_off_the_answers_are_the_same(
    ungrouped: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ungrouped.withdrawals is None
    await _refusal_journey(ungrouped, Kicks.on(ungrouped, monkeypatch))


async def test_a_group_that_committed_but_was_not_told_holds_once(
    grouped: Resources, kicks: Kicks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT lands but its answer is lost: each withdrawal, run alone, finds its key
    taken and replays what the group stored — no second hold, no second job."""
    lose_group_commit_answers(monkeypatch)
    payers = [await create_actor(grouped, balance=500) for _ in range(3)]
    async with app_client(grouped) as client:
        for payer in payers:
            await _wallet(client, payer)
        answers = await asyncio.gather(*(_withdraw(client, p, 500) for p in payers))
        assert [a.status_code for a in answers] == [202] * 3
        assert all(a.headers.get("Idempotent-Replayed") == "true" for a in answers)
        for payer in payers:
            assert await _wallet(client, payer) == (0, 500)
    assert sorted(kicks.of(ADVANCE)) == sorted(a.json()["id"] for a in answers)
    assert await _count(grouped, LedgerHold) == 3


async def test_a_period_limit_is_shared_with_transfers_in_arrival_order(
    grouped: Resources, groups: Groups, kicks: Kicks
) -> None:
    """A daily limit of 1,000: three withdrawals of 400 at once, in one group — two pass, the
    third is refused with 200 remaining, which a transfer then uses up."""
    ana = await create_actor(grouped, balance=10_000)
    bia = await create_actor(grouped)
    async with app_client(grouped) as client:
        await set_daily_limit(grouped, client, ana, 1_000)
        await _wallet(client, ana)  # the token is looked up again (so the three meet)
        answers = await asyncio.gather(*(_withdraw(client, ana, 400) for _ in range(3)))
        assert sorted(a.status_code for a in answers) == [202, 202, 403]
        refused = next(a for a in answers if a.status_code == 403).json()
        assert (refused["code"], refused["remaining"]) == ("daily_limit_exceeded", 200)
        transfer = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 200},
            headers=ana.headers(),
        )
        assert transfer.status_code == 201, transfer.text
        assert (await _withdraw(client, ana, 1)).status_code == 403
        assert await _wallet(client, ana) == (10_000 - 800 - 200, 800)
    assert max(groups.sizes) >= 2, groups.sizes
    assert len(kicks.of(ADVANCE)) == 2


async def test_a_failed_group_accepts_each_withdrawal_alone(
    grouped: Resources, kicks: Kicks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's lock read fails (a deadlock, say): every withdrawal runs on its own, once."""
    assert grouped.withdrawals is not None

    async def failing(session: AsyncSession, claims: Sequence[Any]) -> PayerGroup:
        raise OperationalError("SELECT ... FOR UPDATE", {}, Exception("deadlock"))

    monkeypatch.setattr(grouped.withdrawals, "prepare", failing)
    before = GROUP_COMMIT_FALLBACKS.labels("withdrawals")._value.get()
    payers = [await create_actor(grouped, balance=100) for _ in range(4)]
    async with app_client(grouped) as client:
        answers = await asyncio.gather(*(_withdraw(client, p, 100) for p in payers))
        assert [a.status_code for a in answers] == [202] * 4
        for payer in payers:
            assert await _wallet(client, payer) == (0, 100)
    assert GROUP_COMMIT_FALLBACKS.labels("withdrawals")._value.get() - before == 4
    assert len(kicks.of(ADVANCE)) == 4
    assert await _count(grouped, Transaction) == 4 + 4  # four withdrawals, four fundings
