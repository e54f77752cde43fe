"""Judging a payment against the user's limits, inside the unit of work that records it.

The check runs before anything is held or posted, so a refusal leaves nothing behind. When a
period limit applies, the user's row is locked first and what their wallet sent in the period
is summed under that lock: two payments at once are judged one after the other, never both
against the same remainder. By day with no daily limit — the common case — it costs no query
at all: the user's own values come with their token (see `accounts.auth`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import Principal
from pixwave.accounts.errors import UserNotFound
from pixwave.accounts.revocation import TokenEvictions
from pixwave.accounts.service import evict_user_after_commit
from pixwave.config import Settings
from pixwave.db import utcnow
from pixwave.ledger.errors import AccountNotFound
from pixwave.limits import repository
from pixwave.limits.policy import (
    Limits,
    Overrides,
    Spent,
    Windows,
    check,
    needs_history,
    windows,
)
from pixwave.limits.schemas import LimitOverrides, LimitsRead, LimitsUpdate

log = structlog.get_logger("pixwave.limits")


class MoneyLimits:
    """The operator's defaults (LIMIT_*), the time zone and the clock (injected in tests)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.defaults = Limits(
            per_transaction=settings.limit_per_transaction,
            daily=settings.limit_daily,
            nighttime=settings.limit_nighttime,
            night_starts=settings.limit_night_starts,
            night_ends=settings.limit_night_ends,
        )
        self.zone = ZoneInfo(settings.limit_timezone)
        self.clock = clock

    async def judge(self, session: AsyncSession, principal: Principal, amount: int) -> datetime:
        """Refuse ``amount`` from ``principal``'s wallet if it breaks a limit (403, nothing
        written); else the moment it was judged at. The payment's row is stamped with that
        moment, so the next judgement counts it in the same day and night."""
        wallet_id = principal.require_wallet()
        now, limits, periods = self._now(principal)
        check(limits, periods, amount, Spent(today=0, tonight=0))  # too large on its own
        if needs_history(limits, periods):
            spent = await repository.lock_and_sum(session, principal.user_id, wallet_id, periods)
            check(limits, periods, amount, spent)
        return now

    def _now(self, principal: Principal) -> tuple[datetime, Limits, Windows]:
        return self._at(self.clock(), principal)

    def _at(self, now: datetime, principal: Principal) -> tuple[datetime, Limits, Windows]:
        limits = self.defaults.with_overrides(principal.limits)
        return now, limits, windows(now, self.zone, limits.night_starts, limits.night_ends)

    async def lock_for_group(
        self, session: AsyncSession, principals: Sequence[Principal]
    ) -> GroupLimits:
        """Judge the payments of one group commit at one instant: lock the rows of the users
        a period limit applies to (in id order, before any ledger account, like :meth:`judge`)
        and sum their periods in one statement; the group then judges in memory, in arrival
        order.

        This must be the group's first read: every payer's row is locked in one statement
        before the sums, which are plain reads, so REPEATABLE READ takes their snapshot after
        the last lock was granted and they count a payment committed while the group waited.
        """
        now = self.clock()
        by_periods: dict[Windows, dict[str, str]] = {}
        for principal in principals:
            _now, limits, periods = self._at(now, principal)
            if principal.wallet_id is not None and needs_history(limits, periods):
                by_periods.setdefault(periods, {})[principal.user_id] = principal.wallet_id
        spent: dict[str, list[int]] = {}
        if not by_periods:
            return GroupLimits(self, now, spent)
        await repository.lock_users(session, [u for users in by_periods.values() for u in users])
        for periods, wallets in by_periods.items():  # one night per group, nearly always
            for user_id, found in (await repository.sum_many(session, wallets, periods)).items():
                spent[user_id] = [found.today, found.tonight]
        return GroupLimits(self, now, spent)

    async def view(self, session: AsyncSession, user_id: str) -> LimitsRead:
        """A user's limits in force now, with what is spent of each period."""
        found = await repository.user_limits(session, user_id)
        if found is None:
            raise UserNotFound(f"user {user_id} does not exist")
        overrides, wallet = found
        if wallet is None:
            raise AccountNotFound(f"user {user_id} holds no money (an admin), so has no limits")
        now = self.clock()
        limits = self.defaults.with_overrides(overrides)
        periods = windows(now, self.zone, limits.night_starts, limits.night_ends)
        spent = await repository.spent(session, wallet, periods)
        night = periods.night
        return LimitsRead(
            user_id=user_id,
            per_transaction=limits.per_transaction,
            daily=limits.daily,
            nighttime=limits.nighttime,
            night_starts=limits.night_starts,
            night_ends=limits.night_ends,
            timezone=self.zone.key,
            overrides=LimitOverrides(
                per_transaction=overrides.per_transaction,
                daily=overrides.daily,
                nighttime=overrides.nighttime,
                night_starts=overrides.night_starts,
            ),
            is_night=night is not None,
            spent_today=spent.today,
            spent_tonight=None if night is None else spent.tonight,
            remaining_today=_remaining(limits.daily, spent.today),
            remaining_tonight=(
                None if night is None else _remaining(limits.nighttime, spent.tonight)
            ),
            day_ends_at=periods.day.ends,
            night_ends_at=None if night is None else night.ends,
        )

    async def set_for(
        self,
        session: AsyncSession,
        evictions: TokenEvictions,
        *,
        user_id: str,
        data: LimitsUpdate,
        by_user_id: str,
    ) -> LimitsRead:
        """Replace a user's own limits (admin only). They apply to the user's next payment in
        every process: the user's cached token lookups, which carry them, are evicted."""
        found = await repository.user_limits(session, user_id)
        if found is None:
            raise UserNotFound(f"user {user_id} does not exist")
        if found[1] is None:
            raise AccountNotFound(f"user {user_id} holds no money (an admin), so has no limits")
        overrides = Overrides(
            per_transaction=data.per_transaction,
            daily=data.daily,
            nighttime=data.nighttime,
            night_starts=data.night_starts,
        )
        await repository.set_overrides(session, user_id, overrides)
        await evict_user_after_commit(session, evictions, user_id)
        log.info(
            "limits.changed",
            user_id=user_id,
            by_user_id=by_user_id,
            per_transaction=data.per_transaction,
            daily=data.daily,
            nighttime=data.nighttime,
            night_starts=None if data.night_starts is None else f"{data.night_starts:%H:%M}",
        )
        return await self.view(session, user_id)


class GroupLimits:
    """The limits of one group commit's payments, judged in memory at the group's instant."""

    def __init__(self, limits: MoneyLimits, now: datetime, spent: dict[str, list[int]]) -> None:
        self._limits = limits
        self.now = now
        self._spent = spent
        self._journal: list[tuple[list[int], int, int]] = []

    def judge(self, principal: Principal, amount: int) -> datetime:
        """:meth:`MoneyLimits.judge` against the group's sums, counting the group's earlier
        payments; the moment judged at is the group's."""
        _now, limits, periods = self._limits._at(self.now, principal)
        check(limits, periods, amount, Spent(today=0, tonight=0))
        if needs_history(limits, periods):
            spent = self._spent[principal.user_id]  # locked and summed for this group
            check(limits, periods, amount, Spent(today=spent[0], tonight=spent[1]))
            tonight = amount if periods.night is not None else 0
            spent[0] += amount
            spent[1] += tonight
            self._journal.append((spent, amount, tonight))
        return self.now

    def mark(self) -> int:
        return len(self._journal)

    def rewind(self, to: int) -> None:
        """Give back what the payments judged since :meth:`mark` counted (they were refused)."""
        while len(self._journal) > to:
            spent, today, tonight = self._journal.pop()
            spent[0] -= today
            spent[1] -= tonight


def _remaining(limit: int | None, spent: int) -> int | None:
    return None if limit is None else max(limit - spent, 0)
