"""The limit rules on a clock: the night's edges in Brasília time, periods, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from pixwave.limits.errors import DailyLimitExceeded, NightLimitExceeded, TransactionLimitExceeded
from pixwave.limits.policy import Limits, Overrides, Spent, Window, check, needs_history, windows
from tests.limits.support import BRT, brt

NIGHT = (time(20), time(6))


def limits(
    per_transaction: int | None = None, daily: int | None = None, nighttime: int | None = 100_000
) -> Limits:
    return Limits(per_transaction, daily, nighttime, *NIGHT)


class TestWindows:
    @pytest.mark.parametrize(
        ("moment", "night"),
        [
            (brt(7, 19, 59, 59, 999_999), False),
            (brt(7, 20), True),
            (brt(7, 23, 59, 59), True),
            (brt(8, 0), True),
            (brt(8, 5, 59, 59, 999_999), True),
            (brt(8, 6), False),
            (brt(8, 12), False),
        ],
    )
    def test_night_is_from_20_00_inclusive_to_06_00_exclusive(
        self, moment: datetime, night: bool
    ) -> None:
        assert (windows(moment, BRT, *NIGHT).night is not None) is night

    def test_the_edges_are_brasilia_time_not_utc(self) -> None:
        """20:00 in Brasília is 23:00 UTC: 22:30 UTC is still day there."""
        assert windows(datetime(2026, 12, 7, 22, 30, tzinfo=UTC), BRT, *NIGHT).night is None
        assert windows(datetime(2026, 12, 7, 23, 0, tzinfo=UTC), BRT, *NIGHT).night is not None

    def test_a_night_crossing_midnight_is_one_period(self) -> None:
        """At 23:00 and at 03:00 the same period: it started the evening before."""
        evening = windows(brt(7, 23), BRT, *NIGHT).night
        small_hours = windows(brt(8, 3), BRT, *NIGHT).night
        assert evening == small_hours == Window(brt(7, 20), brt(8, 6))

    def test_the_day_resets_at_local_midnight(self) -> None:
        day = windows(brt(8, 3), BRT, *NIGHT).day
        assert (day.starts, day.ends) == (brt(8, 0), brt(9, 0))
        assert day.starts == datetime(2026, 12, 8, 3, 0, tzinfo=UTC)

    def test_a_user_given_22_00_is_still_in_the_day_at_21_00(self) -> None:
        assert windows(brt(7, 21), BRT, time(22), time(6)).night is None
        assert windows(brt(7, 22), BRT, time(22), time(6)).night == Window(brt(7, 22), brt(8, 6))

    def test_a_night_inside_one_day(self) -> None:
        """00:00–06:00 is night only after midnight."""
        assert windows(brt(7, 23), BRT, time(0), time(6)).night is None
        assert windows(brt(8, 1), BRT, time(0), time(6)).night == Window(brt(8, 0), brt(8, 6))

    def test_since_covers_the_night_that_began_yesterday(self) -> None:
        """At 03:00 the night began at 20:00 yesterday, before today's midnight."""
        assert windows(brt(8, 3), BRT, *NIGHT).since == brt(7, 20)
        assert windows(brt(7, 21), BRT, *NIGHT).since == brt(7, 0)
        assert windows(brt(7, 12), BRT, *NIGHT).since == brt(7, 0)


class TestCheck:
    def test_by_day_the_night_limit_does_not_apply(self) -> None:
        check(limits(), windows(brt(7, 19, 59), BRT, *NIGHT), 150_000, Spent(0, 0))

    def test_at_night_one_payment_over_the_limit_is_refused(self) -> None:
        periods = windows(brt(7, 20), BRT, *NIGHT)
        with pytest.raises(NightLimitExceeded) as refused:
            check(limits(), periods, 100_001, Spent(0, 0))
        assert refused.value.extra == {
            "limit": 100_000,
            "remaining": 100_000,
            "resets_at": "2026-12-08T09:00:00+00:00",
        }
        check(limits(), periods, 100_000, Spent(0, 0))

    def test_the_night_limit_is_per_period_not_per_payment(self) -> None:
        periods = windows(brt(8, 2), BRT, *NIGHT)
        check(limits(), periods, 40_000, Spent(today=0, tonight=60_000))
        with pytest.raises(NightLimitExceeded) as refused:
            check(limits(), periods, 40_001, Spent(today=0, tonight=60_000))
        assert refused.value.extra["remaining"] == 40_000

    def test_the_daily_limit_counts_the_day(self) -> None:
        periods = windows(brt(7, 12), BRT, *NIGHT)
        rule = limits(daily=500_000)
        check(rule, periods, 100_000, Spent(today=400_000, tonight=0))
        with pytest.raises(DailyLimitExceeded) as refused:
            check(rule, periods, 100_001, Spent(today=400_000, tonight=0))
        assert refused.value.extra == {
            "limit": 500_000,
            "remaining": 100_000,
            "resets_at": "2026-12-08T03:00:00+00:00",
        }

    def test_spent_beyond_a_lowered_limit_leaves_nothing_not_less_than_nothing(self) -> None:
        with pytest.raises(DailyLimitExceeded) as refused:
            check(limits(daily=1_000), windows(brt(7, 12), BRT, *NIGHT), 1, Spent(5_000, 0))
        assert refused.value.extra["remaining"] == 0

    def test_the_single_payment_limit_is_named_first(self) -> None:
        """A payment over every limit at night names the per-payment one."""
        rule = limits(per_transaction=50_000, daily=60_000)
        with pytest.raises(TransactionLimitExceeded) as refused:
            check(rule, windows(brt(7, 21), BRT, *NIGHT), 200_000, Spent(0, 0))
        assert refused.value.extra == {"limit": 50_000}
        assert refused.value.status_code == 403

    def test_no_limits_no_refusal_and_no_history_needed(self) -> None:
        rule = limits(nighttime=None)
        periods = windows(brt(7, 21), BRT, *NIGHT)
        assert not needs_history(rule, periods)
        check(rule, periods, 10**12, Spent(10**12, 10**12))

    def test_history_is_needed_at_night_or_with_a_daily_limit(self) -> None:
        assert needs_history(limits(), windows(brt(7, 21), BRT, *NIGHT))
        assert not needs_history(limits(), windows(brt(7, 12), BRT, *NIGHT))
        assert needs_history(limits(daily=1), windows(brt(7, 12), BRT, *NIGHT))


class TestOverrides:
    def test_a_users_values_win_and_unset_ones_keep_the_default(self) -> None:
        base = limits(per_transaction=500_000, daily=None, nighttime=100_000)
        own = base.with_overrides(Overrides(nighttime=300_000, night_starts=time(22)))
        assert own == Limits(500_000, None, 300_000, time(22), time(6))

    def test_no_overrides_is_the_default(self) -> None:
        assert limits().with_overrides(Overrides()) == limits()
