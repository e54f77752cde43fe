"""Money limits over HTTP on MariaDB: withdrawals and transfers refused over a limit with
nothing held, the night's edges on an injected clock, an admin's overrides, and two payments
at once that cannot both fit."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.ledger import service as ledger
from pixwave.limits.errors import NightLimitExceeded
from pixwave.limits.service import MoneyLimits
from pixwave.payments import flows
from pixwave.payments import repository as payments
from pixwave.payments import service as transactions
from pixwave.payments.models import Transaction
from pixwave.payments.schemas import WithdrawalCreate
from pixwave.payments.status import TransactionStatus
from pixwave.resources import Resources
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import TransferCreate
from tests.conftest import make_settings
from tests.factories import Actor, create_actor, create_admin
from tests.limits.support import brt
from tests.notifications.webhooks.support import Clock, Kicks

PIX_KEY = "+5511987654321"


@pytest.fixture
async def clock(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The operator's defaults (R$ 1,000 at night, 20:00–06:00 Brasília) on a clock the test
    moves; withdrawals are recorded, their jobs only noted."""
    at = Clock(brt(7, 12))
    settings = make_settings(limit_nighttime=100_000, limit_daily=None)
    monkeypatch.setattr(resources, "limits", MoneyLimits(settings, clock=at))
    monkeypatch.setattr(resources, "jobs", Kicks().queue)
    return at


async def withdraw(client: httpx.AsyncClient, actor: Actor, amount: int) -> httpx.Response:
    return await client.post(
        "/v1/withdrawals", json={"amount": amount, "pix_key": PIX_KEY}, headers=actor.headers()
    )


async def transfer(
    client: httpx.AsyncClient, actor: Actor, to: Actor, amount: int
) -> httpx.Response:
    return await client.post(
        "/v1/transfers",
        json={"amount": amount, "to_wallet_id": to.wallet_id},
        headers=actor.headers(),
    )


async def held(client: httpx.AsyncClient, actor: Actor) -> tuple[int, int]:
    wallet = (await client.get("/v1/wallet", headers=actor.headers())).json()
    return wallet["posted"], wallet["held"]


async def count_transactions(resources: Resources, wallet_id: str) -> int:
    async with resources.sessionmaker() as session:
        statement = select(func.count()).where(Transaction.wallet_id == wallet_id)
        return int(await session.scalar(statement) or 0)


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


class TestNightEdges:
    @pytest.mark.parametrize(
        ("moment", "allowed"),
        [
            (brt(7, 19, 59, 59), True),
            (brt(7, 20), False),
            (brt(8, 5, 59, 59), False),
            (brt(8, 6), True),
        ],
    )
    async def test_a_withdrawal_over_r_1000_at_the_edges(
        self,
        client: httpx.AsyncClient,
        resources: Resources,
        clock: Clock,
        moment: datetime,
        allowed: bool,
    ) -> None:
        """R$ 1,500 leaves at 19:59:59 and 06:00:00; at 20:00:00 and 05:59:59 it is refused,
        with nothing held and nothing recorded."""
        ana = await create_actor(resources, balance=500_000)
        clock.now = moment
        response = await withdraw(client, ana, 150_000)
        if allowed:
            assert response.status_code == 202, response.text
            assert await held(client, ana) == (500_000, 150_000)
        else:
            body = refused(response, "nighttime_limit_exceeded")
            assert (body["limit"], body["remaining"]) == (100_000, 100_000)
            assert await held(client, ana) == (500_000, 0)
            assert await count_transactions(resources, ana.wallet_id) == 1  # the funding only

    async def test_transfers_at_night_share_the_period_with_withdrawals(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock
    ) -> None:
        """R$ 600 withdrawn at 21:00 and R$ 300 transferred at 02:00 leave R$ 100 of the night;
        at 06:00 a new day begins with no night limit."""
        ana = await create_actor(resources, balance=500_000)
        bia = await create_actor(resources)
        clock.now = brt(7, 21)
        assert (await withdraw(client, ana, 60_000)).status_code == 202
        clock.now = brt(8, 2)
        assert (await transfer(client, ana, bia, 30_000)).status_code == 201
        body = refused(await transfer(client, ana, bia, 10_001), "nighttime_limit_exceeded")
        assert body["remaining"] == 10_000
        assert body["resets_at"] == "2026-12-08T09:00:00+00:00"
        assert (await transfer(client, ana, bia, 10_000)).status_code == 201
        clock.now = brt(8, 6)
        assert (await transfer(client, ana, bia, 200_000)).status_code == 201

    async def test_a_failed_withdrawal_gives_its_share_of_the_night_back(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock
    ) -> None:
        ana = await create_actor(resources, balance=500_000)
        clock.now = brt(7, 22)
        first = await withdraw(client, ana, 100_000)
        assert first.status_code == 202
        refused(await withdraw(client, ana, 1), "nighttime_limit_exceeded")
        async with resources.sessionmaker() as session, session.begin():
            row = await payments.get(session, first.json()["id"], for_update=True)
            assert row is not None
            assert row["hold_id"] is not None
            await ledger.void_hold(session, hold_id=row["hold_id"])
            await transactions.transition(session, row["id"], TransactionStatus.FAILED)
        assert (await withdraw(client, ana, 100_000)).status_code == 202


class TestDailyAndSingle:
    async def test_the_daily_limit_resets_at_brasilia_midnight(
        self, client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        at = Clock(brt(7, 10))
        settings = make_settings(limit_daily=300_000, limit_nighttime=None)
        monkeypatch.setattr(resources, "limits", MoneyLimits(settings, clock=at))
        ana = await create_actor(resources, balance=1_000_000)
        bia = await create_actor(resources)
        assert (await transfer(client, ana, bia, 200_000)).status_code == 201
        at.now = brt(7, 23, 59, 59)
        body = refused(await transfer(client, ana, bia, 100_001), "daily_limit_exceeded")
        assert (body["remaining"], body["resets_at"]) == (100_000, "2026-12-08T03:00:00+00:00")
        at.now = brt(8, 0)
        assert (await transfer(client, ana, bia, 300_000)).status_code == 201

    async def test_one_payment_over_the_largest_is_refused(
        self, client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = make_settings(limit_per_transaction=50_000, limit_nighttime=None)
        monkeypatch.setattr(resources, "limits", MoneyLimits(settings))
        monkeypatch.setattr(resources, "jobs", Kicks().queue)
        ana = await create_actor(resources, balance=100_000)
        bia = await create_actor(resources)
        body = refused(await transfer(client, ana, bia, 50_001), "transaction_limit_exceeded")
        assert body["limit"] == 50_000
        refused(await withdraw(client, ana, 50_001), "transaction_limit_exceeded")
        assert await held(client, ana) == (100_000, 0)
        assert (await transfer(client, ana, bia, 50_000)).status_code == 201


class TestConcurrency:
    @pytest.mark.parametrize("kind", ["transfer", "withdrawal"])
    async def test_a_second_payment_waits_for_the_first_and_counts_it(
        self, resources: Resources, clock: Clock, kind: str
    ) -> None:
        """Two R$ 600 payments at 23:00 against R$ 1,000 of night, in two units of work at
        once: the second is judged only after the first commits, and is refused with nothing
        held. Without the lock on the user's row both would fit in the same R$ 1,000."""
        ana = await create_actor(resources, balance=1_000_000)
        bia = await create_actor(resources)
        clock.now = brt(7, 23)

        async def pay(session: AsyncSession) -> None:
            if kind == "transfer":
                payment = TransferCreate(to_wallet_id=bia.wallet_id, amount=60_000)
                await wallets.transfer(session, resources.limits, ana.principal, payment)
            else:
                withdrawal = WithdrawalCreate(amount=60_000, pix_key=PIX_KEY)
                await flows.create_withdrawal(session, resources, ana.principal, withdrawal)

        async def second() -> None:
            async with resources.sessionmaker() as session, session.begin():
                await pay(session)

        async with resources.sessionmaker() as first, first.begin():
            await pay(first)
            waiting = asyncio.create_task(second())
            done, _ = await asyncio.wait({waiting}, timeout=0.5)
            assert not done, "the second payment was judged while the first was uncommitted"
        with pytest.raises(NightLimitExceeded):
            await waiting
        assert await count_transactions(resources, ana.wallet_id) == 2  # funding + one
        async with resources.sessionmaker() as session:
            account = await ledger.get_balance(session, ana.wallet_id)
        assert account.held == (60_000 if kind == "withdrawal" else 0)

    async def test_a_refusal_replays_under_its_key_after_the_night(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock
    ) -> None:
        """The refusal is the request's answer: the same key and body in the morning replay
        the 403 (marked replayed), they do not send the Pix; a new key does."""
        ana = await create_actor(resources, balance=500_000)
        clock.now = brt(7, 21)
        headers = ana.headers("night-1")
        body = {"amount": 150_000, "pix_key": PIX_KEY}
        refused(await client.post("/v1/withdrawals", json=body, headers=headers),
                "nighttime_limit_exceeded")  # fmt: skip
        clock.now = brt(8, 9)
        again = await client.post("/v1/withdrawals", json=body, headers=headers)
        refused(again, "nighttime_limit_exceeded")
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await held(client, ana) == (500_000, 0)
        assert (await withdraw(client, ana, 150_000)).status_code == 202


class TestOverridesApi:
    async def test_an_admin_raises_a_users_night_limit_and_it_applies_at_once(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock
    ) -> None:
        """The user's token was just used (its lookup is cached); the new limit applies to the
        very next payment all the same."""
        ana = await create_actor(resources, balance=500_000)
        admin = await create_admin(resources)
        clock.now = brt(7, 22)
        refused(await withdraw(client, ana, 150_000), "nighttime_limit_exceeded")
        put = await client.put(
            f"/v1/users/{ana.user.id}/limits",
            json={"nighttime": 300_000, "night_starts": "22:30"},
            headers=admin.headers(),
        )
        assert put.status_code == 200, put.text
        view = put.json()
        assert view["nighttime"] == 300_000
        assert view["night_starts"] == "22:30"
        assert view["overrides"] == {
            "per_transaction": None,
            "daily": None,
            "nighttime": 300_000,
            "night_starts": "22:30",
        }
        assert view["is_night"] is False  # her night now starts at 22:30
        clock.now = brt(7, 23)
        assert (await withdraw(client, ana, 150_000)).status_code == 202
        mine = (await client.get(f"/v1/users/{ana.user.id}/limits", headers=ana.headers())).json()
        assert (mine["is_night"], mine["spent_tonight"], mine["remaining_tonight"]) == (
            True,
            150_000,
            150_000,
        )
        assert mine["spent_today"] == 150_000
        assert mine["remaining_today"] is None
        back = await client.put(f"/v1/users/{ana.user.id}/limits", json={}, headers=admin.headers())
        assert back.json()["nighttime"] == 100_000
        refused(await withdraw(client, ana, 1), "nighttime_limit_exceeded")

    async def test_who_may_read_and_set_limits(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock
    ) -> None:
        ana = await create_actor(resources)
        bia = await create_actor(resources)
        admin = await create_admin(resources)
        path = f"/v1/users/{ana.user.id}/limits"
        assert (await client.get(path, headers=ana.headers())).status_code == 200
        assert (await client.get(path, headers=admin.headers())).status_code == 200
        assert (await client.get(path, headers=bia.headers())).json()["code"] == "user_not_found"
        own = await client.put(path, json={"nighttime": 10**9}, headers=ana.headers())
        assert (own.status_code, own.json()["code"]) == (403, "forbidden")
        mine = await client.get(f"/v1/users/{admin.user.id}/limits", headers=admin.headers())
        assert mine.json()["code"] == "wallet_not_found"
        gone = await client.put("/v1/users/usr_nobody/limits", json={}, headers=admin.headers())
        assert (gone.status_code, gone.json()["code"]) == (404, "user_not_found")

    @pytest.mark.parametrize(
        "body",
        [
            {"nighttime": 0},
            {"daily": -5},
            {"per_transaction": 1.5},
            {"night_starts": "25:00"},
            {"night_starts": "22:00:00"},
            {"night_starts": "22:00-03:00"},
            {"unlimited": True},
        ],
    )
    async def test_bad_overrides_are_422_and_change_nothing(
        self, client: httpx.AsyncClient, resources: Resources, clock: Clock, body: dict[str, Any]
    ) -> None:
        ana = await create_actor(resources)
        admin = await create_admin(resources)
        path = f"/v1/users/{ana.user.id}/limits"
        response = await client.put(path, json=body, headers=admin.headers())
        assert response.status_code == 422
        assert (await client.get(path, headers=admin.headers())).json()["overrides"] == {
            "per_transaction": None,
            "daily": None,
            "nighttime": None,
            "night_starts": None,
        }


def test_a_time_zone_that_does_not_exist_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="LIMIT_TIMEZONE"):
        make_settings(limit_timezone="America/Atlantis")


def test_a_night_that_starts_when_it_ends_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="must differ"):
        make_settings(limit_night_starts=time(6), limit_night_ends=time(6))


def test_the_defaults_are_the_central_banks(monkeypatch: pytest.MonkeyPatch) -> None:
    """R$ 1,000 per night from 20:00 to 06:00 Brasília time; no other limit unless set."""
    monkeypatch.delenv("LIMIT_NIGHTTIME")  # the suite switches it off (tests/conftest.py)
    settings = make_settings()
    assert settings.limit_nighttime == 100_000
    assert (settings.limit_night_starts, settings.limit_night_ends) == (time(20), time(6))
    assert settings.limit_timezone == "America/Sao_Paulo"
    assert (settings.limit_per_transaction, settings.limit_daily) == (None, None)


def test_none_switches_a_limit_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIMIT_NIGHTTIME", "none")
    monkeypatch.setenv("LIMIT_DAILY", "250000")
    settings = make_settings()
    assert (settings.limit_nighttime, settings.limit_daily) == (None, 250_000)
