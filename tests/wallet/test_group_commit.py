"""Transfers in group commits (`kit/groupcommit.py`), on MariaDB + Redis and on SQLite.

Each test sends transfers at once through the app and checks what each caller was told, what
the ledger holds and how many groups the database saw. The same journeys run with group commit
off, so both paths keep the same answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.kit import groupcommit
from pixwave.kit.groupcommit import GroupCommit
from pixwave.kit.locks import MemoryLocks
from pixwave.ledger.models import LedgerTransaction
from pixwave.limits.group import PayerGroup
from pixwave.observability.metrics import GROUP_COMMIT_FALLBACKS
from pixwave.payments.models import Transaction
from pixwave.resources import Resources
from pixwave.unit_of_work import flush, flush_and_commit
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import TransferCreate
from tests.conftest import _backend, app_client, assert_ledger_balances, wipe
from tests.factories import Actor, create_actor, create_admin


@pytest.fixture(params=["mariadb", "sqlite"])
async def grouped(
    request: pytest.FixtureRequest,
    backends: dict[str, Resources],
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Resources]:
    """Group commit on, with a window wide enough that concurrent test requests meet even on
    a busy machine."""
    extra: dict[str, Any] = {"redis_url": redis_url} if request.param == "mariadb" else {}
    res = await _backend(
        f"{request.param}-grouped",
        backends,
        tmp_path_factory,
        group_commit=True,
        group_commit_window_ms=50,
        **extra,
    )
    await wipe(res)
    if res.redis is not None:
        await res.redis.flushdb()
    res.token_cache.clear()
    yield res
    await assert_ledger_balances(res)


@pytest.fixture
async def ungrouped(
    backends: dict[str, Resources], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Resources]:
    """MariaDB + Redis with group commit off (`GROUP_COMMIT=false`): the baseline."""
    res = await _backend(
        "mariadb-alone", backends, tmp_path_factory, redis_url=redis_url, group_commit=False
    )
    await wipe(res)
    res.token_cache.clear()
    yield res
    await assert_ledger_balances(res)


class Groups:
    """Counts the groups a GroupCommit sends and their sizes (wraps its `prepare`)."""

    def __init__(self, commit: GroupCommit[Any]) -> None:
        self.sizes: list[int] = []
        real = commit.prepare

        async def prepare(session: AsyncSession, claims: Sequence[Any]) -> Any:
            self.sizes.append(len(claims))
            return await real(session, claims)

        commit.prepare = prepare


@pytest.fixture
def groups(grouped: Resources) -> Groups:
    assert grouped.transfers is not None
    return Groups(grouped.transfers)


async def _transfer(
    client: httpx.AsyncClient, payer: Actor, to: str, amount: int, key: str | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/transfers", json={"to_wallet_id": to, "amount": amount}, headers=payer.headers(key)
    )


async def _available(client: httpx.AsyncClient, actor: Actor) -> int:
    return int((await client.get("/v1/wallet", headers=actor.headers())).json()["available"])


async def set_daily_limit(
    resources: Resources, client: httpx.AsyncClient, actor: Actor, daily: int
) -> None:
    """An operator sets the actor's daily limit (their token is looked up again afterwards)."""
    admin = await create_admin(resources)
    set_limit = await client.put(
        f"/v1/users/{actor.user.id}/limits", json={"daily": daily}, headers=admin.headers()
    )
    assert set_limit.status_code == 200, set_limit.text


async def _count(resources: Resources, model: type) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_concurrent_transfers_commit_as_one_group(grouped: Resources, groups: Groups) -> None:
    """Twelve payers at once: one group, twelve answers, every balance right."""
    payers = [await create_actor(grouped, balance=1_000) for _ in range(12)]
    payee = await create_actor(grouped)
    async with app_client(grouped) as client:
        for payer in payers:  # tokens looked up once, so the transfers arrive together
            await _available(client, payer)
        answers = await asyncio.gather(
            *(_transfer(client, p, payee.wallet_id, 100 + i) for i, p in enumerate(payers))
        )
        assert [a.status_code for a in answers] == [201] * 12
        assert sorted(a.json()["amount"] for a in answers) == [100 + i for i in range(12)]
        assert await _available(client, payee) == sum(100 + i for i in range(12))
        for i, payer in enumerate(payers):
            assert await _available(client, payer) == 1_000 - 100 - i
    assert max(groups.sizes) > 1, groups.sizes
    assert sum(groups.sizes) == 12
    assert await _count(grouped, LedgerTransaction) == 12 + 12  # and the payers' fundings


async def _refusal_journey(resources: Resources) -> None:
    """At once: the same payer's second 600 of 1,000 is refused (in arrival order), a transfer
    to a missing wallet is 404, the rest go through; a refusal replays as it was."""
    ana = await create_actor(resources, balance=1_000)
    bia = await create_actor(resources, balance=500)
    cai = await create_actor(resources)
    async with app_client(resources) as client:
        first, second, lost, fine = await asyncio.gather(
            _transfer(client, ana, cai.wallet_id, 600, key="ana-1"),
            _transfer(client, ana, cai.wallet_id, 600, key="ana-2"),
            _transfer(client, bia, "wal_doesnotexist", 100, key="bia-1"),
            _transfer(client, bia, cai.wallet_id, 500, key="bia-2"),
        )
        codes = sorted([first.status_code, second.status_code])
        assert codes == [201, 402], (first.text, second.text)
        refused = first if first.status_code == 402 else second
        assert refused.json()["code"] == "insufficient_funds"
        assert lost.status_code == 404, lost.text
        assert fine.status_code == 201, fine.text
        assert await _available(client, ana) == 400
        assert await _available(client, bia) == 0
        assert await _available(client, cai) == 1_100
        key = "ana-1" if refused is first else "ana-2"
        again = await _transfer(client, ana, cai.wallet_id, 600, key=key)
        assert again.status_code == 402
        assert again.headers["Idempotent-Replayed"] == "true"
        replayed = again.json()
        assert (replayed["code"], replayed["detail"]) == (
            refused.json()["code"],
            refused.json()["detail"],
        )
    assert await _count(resources, Transaction) == 2 + 2  # two transfers and two fundings


async def test_a_refusal_refuses_only_itself_and_replays(
    grouped: Resources, groups: Groups
) -> None:
    await _refusal_journey(grouped)
    assert max(groups.sizes) >= 2, groups.sizes


async def test_with_group_commit_off_the_answers_are_the_same(ungrouped: Resources) -> None:
    """`GROUP_COMMIT=false`: each transfer in its own transaction, the same answers."""
    assert ungrouped.transfers is None
    await _refusal_journey(ungrouped)


async def test_a_stored_key_is_replayed_not_run_again(
    grouped: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the key's Redis lock has gone, a retry reaches the group, which finds the stored
    answer and hands it back: the money moved once."""
    ana = await create_actor(grouped, balance=1_000)
    bia = await create_actor(grouped)
    async with app_client(grouped) as client:
        first = await _transfer(client, ana, bia.wallet_id, 250, key="k-1")
        assert first.status_code == 201
        monkeypatch.setattr(grouped.idempotency, "locks", MemoryLocks())  # the lock lapsed
        again, other = await asyncio.gather(
            _transfer(client, ana, bia.wallet_id, 250, key="k-1"),
            _transfer(client, ana, bia.wallet_id, 50, key="k-2"),
        )
        assert again.status_code == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        assert other.status_code == 201
        assert await _available(client, bia) == 300


async def test_a_failed_group_runs_each_transfer_alone(
    grouped: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's lock read fails (a deadlock, say): every transfer runs on its own, once."""
    assert grouped.transfers is not None
    real = grouped.transfers.prepare
    calls = 0

    async def failing(session: AsyncSession, claims: Sequence[Any]) -> PayerGroup:
        nonlocal calls
        calls += 1
        raise OperationalError("SELECT ... FOR UPDATE", {}, Exception("deadlock"))

    monkeypatch.setattr(grouped.transfers, "prepare", failing)
    before = GROUP_COMMIT_FALLBACKS.labels("transfers")._value.get()
    payers = [await create_actor(grouped, balance=100) for _ in range(4)]
    payee = await create_actor(grouped)
    async with app_client(grouped) as client:
        answers = await asyncio.gather(
            *(_transfer(client, p, payee.wallet_id, 100) for p in payers)
        )
        assert [a.status_code for a in answers] == [201] * 4
        assert await _available(client, payee) == 400
    assert calls >= 1
    assert GROUP_COMMIT_FALLBACKS.labels("transfers")._value.get() - before == 4
    monkeypatch.setattr(grouped.transfers, "prepare", real)


def lose_group_commit_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every group's COMMIT lands, and then its connection is lost before the answer."""
    real = flush_and_commit

    async def committed_then_lost(session: AsyncSession) -> None:
        await real(session)
        raise OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(groupcommit, "flush_and_commit", committed_then_lost)


async def test_a_group_that_committed_but_was_not_told_replays(
    grouped: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT lands but its answer is lost: each transfer, run alone, finds its key taken
    and replays what the group stored — no transfer happens twice."""
    lose_group_commit_answers(monkeypatch)
    payers = [await create_actor(grouped, balance=500) for _ in range(3)]
    payee = await create_actor(grouped)
    async with app_client(grouped) as client:
        answers = await asyncio.gather(
            *(_transfer(client, p, payee.wallet_id, 500) for p in payers)
        )
        assert [a.status_code for a in answers] == [201] * 3
        assert all(a.headers.get("Idempotent-Replayed") == "true" for a in answers)
        assert await _available(client, payee) == 1_500
        for payer in payers:
            assert await _available(client, payer) == 0
    assert await _count(grouped, Transaction) == 3 + 3


async def test_a_period_limit_is_judged_in_the_group_in_arrival_order(
    grouped: Resources, groups: Groups
) -> None:
    """A user with a daily limit of 1,000 sends 400 three times at once, in one group: the
    first two pass, the third is refused; a refusal gives its share back, so a later 200
    still fits."""
    ana = await create_actor(grouped, balance=10_000)
    bia = await create_actor(grouped)
    async with app_client(grouped) as client:
        await set_daily_limit(grouped, client, ana, 1_000)
        await _available(client, ana)  # the token is looked up again (so the three meet)
        answers = await asyncio.gather(
            *(_transfer(client, ana, bia.wallet_id, 400) for _ in range(3))
        )
        assert sorted(a.status_code for a in answers) == [201, 201, 403]
        refused = next(a for a in answers if a.status_code == 403).json()
        assert (refused["code"], refused["remaining"]) == ("daily_limit_exceeded", 200)
        assert (await _transfer(client, ana, bia.wallet_id, 200)).status_code == 201
        assert (await _transfer(client, ana, bia.wallet_id, 1)).status_code == 403
        assert await _available(client, bia) == 1_000
    assert max(groups.sizes) >= 2, groups.sizes


async def test_a_group_counts_a_payment_committed_while_it_waited_for_the_payer(
    backends: dict[str, Resources], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One group locks Ana's row and waits for Bia's, held by a transfer of Bia's running on
    its own; once that commits, the group's sum for Bia must count it. It does only if no plain
    read of the group came before its locks (REPEATABLE READ would answer the sum from that
    earlier snapshot): checked to fail when the group reads its keys before locking."""
    daily = await _backend(
        "mariadb-daily",
        backends,
        tmp_path_factory,
        redis_url=redis_url,
        group_commit_window_ms=20,
        limit_daily=1_000,
    )
    await wipe(daily)
    daily.token_cache.clear()
    first, second = (
        await create_actor(daily, balance=5_000),
        await create_actor(daily, balance=5_000),
    )
    ana, bia = sorted((first, second), key=lambda actor: actor.user.id)  # Ana's row is locked first
    cai = await create_actor(daily, balance=5_000)
    payee = await create_actor(daily)
    async with daily.sessionmaker() as alone, daily.sessionmaker() as holder:
        await wallets.transfer(
            alone,
            daily.limits,
            bia.principal,
            TransferCreate(to_wallet_id=payee.wallet_id, amount=700),
        )
        await flush(alone)  # Bia's row is locked, her 700 written, not committed
        await daily.limits.judge(holder, cai.principal, 1)  # Cai's row is locked
        async with app_client(daily) as client:
            for actor in (ana, bia, cai):
                await _available(client, actor)
            # Cai's transfer is a group in flight, waiting for her row: the next two gather.
            blocked = asyncio.ensure_future(_transfer(client, cai, payee.wallet_id, 100))
            await asyncio.sleep(0.2)
            pending = asyncio.gather(
                _transfer(client, ana, payee.wallet_id, 100),
                _transfer(client, bia, payee.wallet_id, 400),
            )
            await asyncio.sleep(0.5)  # their group waits for Bia's row
            await flush_and_commit(alone)
            ana_answer, bia_answer = await pending
            await holder.rollback()
            assert (await blocked).status_code == 201
    assert ana_answer.status_code == 201, ana_answer.text
    assert bia_answer.status_code == 403, bia_answer.text
    assert bia_answer.json()["remaining"] == 300
    await assert_ledger_balances(daily)
