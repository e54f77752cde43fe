"""How much a user may send, and when: pure rules over amounts and a clock.

Three limits apply to money leaving a wallet (withdrawals and transfers): a largest single
payment, a most per calendar day, and the Central Bank's night-time limit for individuals —
R$ 1,000 per *night period* (20:00–06:00 Brasília time by default), which also caps every
single night-time payment. Days and nights are counted in one IANA time zone, so a night that
crosses midnight is one period, and the day resets at local midnight, not UTC's.

An admin may give a user other values (``Overrides``); an unset override means the operator's
default. Nothing here touches the database: the service reads what was spent and asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pixwave.limits.errors import DailyLimitExceeded, NightLimitExceeded, TransactionLimitExceeded


@dataclass(frozen=True, slots=True)
class Overrides:
    """A user's own values; ``None`` keeps the operator's default for that limit."""

    per_transaction: int | None = None
    daily: int | None = None
    nighttime: int | None = None
    night_starts: time | None = None


NO_OVERRIDES = Overrides()


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force for one user (``None``: no such limit)."""

    per_transaction: int | None
    daily: int | None
    nighttime: int | None
    night_starts: time
    night_ends: time

    def with_overrides(self, overrides: Overrides) -> Limits:
        return Limits(
            per_transaction=_pick(overrides.per_transaction, self.per_transaction),
            daily=_pick(overrides.daily, self.daily),
            nighttime=_pick(overrides.nighttime, self.nighttime),
            night_starts=overrides.night_starts or self.night_starts,
            night_ends=self.night_ends,
        )


def _pick(own: int | None, default: int | None) -> int | None:
    return default if own is None else own


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open period ``[starts, ends)`` in UTC."""

    starts: datetime
    ends: datetime


@dataclass(frozen=True, slots=True)
class Windows:
    """The day and (when it is night) the night period ``now`` falls in."""

    day: Window
    night: Window | None

    @property
    def since(self) -> datetime:
        """The earliest instant whose payments count: one query covers both windows."""
        return self.day.starts if self.night is None else min(self.day.starts, self.night.starts)


def _at(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time, tzinfo=zone).astimezone(UTC)


def windows(now: datetime, zone: ZoneInfo, night_starts: time, night_ends: time) -> Windows:
    """The local day of ``now`` and its night period, if ``now`` is in one.

    Night is ``[night_starts, night_ends)``: at 20:00:00 it is night, at 06:00:00 it is day. A
    night that crosses midnight (20:00–06:00) started yesterday evening when it is 03:00.
    """
    local = now.astimezone(zone)
    today = local.date()
    day = Window(_at(today, time(0), zone), _at(today + timedelta(days=1), time(0), zone))
    clock = local.time().replace(tzinfo=None)
    night: Window | None = None
    if night_starts < night_ends:  # a night inside one day (00:00–06:00)
        if night_starts <= clock < night_ends:
            night = Window(_at(today, night_starts, zone), _at(today, night_ends, zone))
    elif clock >= night_starts:  # the evening: the period ends tomorrow morning
        night = Window(
            _at(today, night_starts, zone), _at(today + timedelta(days=1), night_ends, zone)
        )
    elif clock < night_ends:  # the small hours: the period started yesterday evening
        night = Window(
            _at(today - timedelta(days=1), night_starts, zone), _at(today, night_ends, zone)
        )
    return Windows(day=day, night=night)


@dataclass(frozen=True, slots=True)
class Spent:
    """What the user already sent (and is sending) in each window, in centavos."""

    today: int
    tonight: int


def needs_history(limits: Limits, windows: Windows) -> bool:
    """Whether judging a payment needs what was already spent (a query and a lock)."""
    return limits.daily is not None or (windows.night is not None and limits.nighttime is not None)


def check(limits: Limits, windows: Windows, amount: int, spent: Spent) -> None:
    """Refuse ``amount`` if it breaks a limit; the single-payment limit is judged first, then
    the night's, then the day's, so the answer names the tightest rule that applies now."""
    if limits.per_transaction is not None and amount > limits.per_transaction:
        raise TransactionLimitExceeded(
            f"at most {limits.per_transaction} centavos per payment",
            limit=limits.per_transaction,
        )
    if windows.night is not None and limits.nighttime is not None:
        remaining = max(limits.nighttime - spent.tonight, 0)
        if amount > remaining:
            raise NightLimitExceeded(
                f"at most {limits.nighttime} centavos between "
                f"{limits.night_starts:%H:%M} and {limits.night_ends:%H:%M}; "
                f"{remaining} remain until {windows.night.ends.isoformat()}",
                limit=limits.nighttime,
                remaining=remaining,
                resets_at=windows.night.ends.isoformat(),
            )
    if limits.daily is not None:
        remaining = max(limits.daily - spent.today, 0)
        if amount > remaining:
            raise DailyLimitExceeded(
                f"at most {limits.daily} centavos per day; {remaining} remain until "
                f"{windows.day.ends.isoformat()}",
                limit=limits.daily,
                remaining=remaining,
                resets_at=windows.day.ends.isoformat(),
            )
