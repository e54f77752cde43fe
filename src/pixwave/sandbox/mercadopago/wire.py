"""Mercado Pago's JSON as it travels: amounts as JSON numbers, dates with MP's -04:00 offset.

MP writes money as JSON *numbers* (``"transaction_amount": 10.1``). Inside the simulator every
amount is int centavos; at the edge a request is parsed with ``parse_float=Decimal`` and a
response is written by :func:`dumps`, which prints a ``Decimal`` as its exact digits. No amount
ever passes through ``float``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from pixwave.gateways.mercadopago.schemas import encode_json, to_centavos
from pixwave.kit.money import MAX_AMOUNT

#: MP's API answers in its servers' local time (the docs' samples all carry -04:00).
MP_TIMEZONE = timezone(timedelta(hours=-4))
_MAX_REAIS = Decimal(MAX_AMOUNT).scaleb(-2)


class InvalidJSON(ValueError):
    """The request body is not JSON (or holds NaN / Infinity, which JSON does not have)."""


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number")


def loads(body: bytes) -> Any:
    """Parse a request body; fractional numbers become ``Decimal``."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except InvalidJSON:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        raise InvalidJSON(str(exc)) from None


#: The connector's exact encoder: a ``Decimal`` is written with its digits, a float refused.
dumps = encode_json


class MPResponse(Response):
    """A JSON response written by :func:`dumps`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return dumps(content)


def amount_json(centavos: int) -> Decimal | int:
    """1050 → 10.5, 1000 → 10, 1005 → 10.05: the shortest number, as MP prints it."""
    units, cents = divmod(centavos, 100)
    if cents == 0:
        return units
    return Decimal(centavos).scaleb(-2).normalize()


def centavos_from_json(value: object) -> int | None:
    """A JSON number (int or Decimal) → centavos, or None if it is not a positive amount of
    money with at most two decimals (``10.100`` is fine, ``10.001`` is not)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    # Comparisons are exact (no rounding to the context's 28 digits); the conversion is the
    # connector's, which refuses more than two decimals.
    if not Decimal(value).is_finite() or not 0 < value <= _MAX_REAIS:
        return None
    try:
        return to_centavos(value)
    except ValueError:
        return None


def mp_datetime(moment: datetime | None) -> str | None:
    """``2025-05-30T10:04:58.396-04:00``, MP's format, or None."""
    if moment is None:
        return None
    return moment.astimezone(MP_TIMEZONE).isoformat(timespec="milliseconds")


def parse_mp_datetime(value: object) -> datetime | None:
    """An ISO-8601 date-time *with* offset, or None (MP's cause 23 for anything else)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None
    return moment
