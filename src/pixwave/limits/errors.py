"""Refusals of a payment over a limit: 403 (the request is well formed; the user may not send
this much now), nothing held, nothing recorded. Each names the limit and, for the period limits,
what remains and when the period ends."""

from __future__ import annotations

from typing import Any, ClassVar

from pixwave.exceptions import Forbidden


class LimitExceeded(Forbidden):
    code = "limit_exceeded"
    title = "The payment is over a limit"


class TransactionLimitExceeded(LimitExceeded):
    code = "transaction_limit_exceeded"
    title = "The payment is larger than the largest allowed"
    example: ClassVar[dict[str, Any]] = {"limit": 500000}


class NightLimitExceeded(LimitExceeded):
    code = "nighttime_limit_exceeded"
    title = "The payment is over the night-time limit"
    example: ClassVar[dict[str, Any]] = {
        "limit": 100000,
        "remaining": 25000,
        "resets_at": "2026-12-07T09:00:00+00:00",
    }


class DailyLimitExceeded(LimitExceeded):
    code = "daily_limit_exceeded"
    title = "The payment is over the daily limit"
    example: ClassVar[dict[str, Any]] = {
        "limit": 2000000,
        "remaining": 150000,
        "resets_at": "2026-12-07T03:00:00+00:00",
    }


#: What a withdrawal or a transfer may answer for its limits (for the OpenAPI document).
LIMIT_ERRORS = (TransactionLimitExceeded, NightLimitExceeded, DailyLimitExceeded)
