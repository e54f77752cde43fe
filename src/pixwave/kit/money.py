"""Money is an `int` of centavos everywhere inside PixWave.

The string form ("123.45") exists only at boundaries (gateway connectors, BR Codes, humans);
these helpers convert with integer arithmetic so no float ever touches an amount.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

#: Largest amount one operation may carry: R$ 10 000 000 000.00 fits Pix's `\d{1,10}\.\d{2}`.
MAX_AMOUNT = 999_999_999_999

#: A positive amount of centavos. `strict` makes 10.5, "1050" and true invalid, not coerced.
PositiveCentavos = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_AMOUNT, description="Amount in centavos (R$ 1,00 = 100)."),
]

_DECIMAL = re.compile(r"^(?P<units>\d{1,10})(?:\.(?P<cents>\d{1,2}))?$")


def to_decimal_string(centavos: int) -> str:
    """1050 → "10.50", the form Pix APIs and BR Codes use."""
    if centavos < 0:
        return "-" + to_decimal_string(-centavos)
    units, cents = divmod(centavos, 100)
    return f"{units}.{cents:02d}"


def from_decimal_string(text: str) -> int:
    """ "10.50" → 1050, "10.5" → 1050, "10" → 1000. Rejects anything that is not plain decimal."""
    match = _DECIMAL.match(text.strip())
    if match is None:
        raise ValueError(f"not a decimal amount: {text!r}")
    cents = (match.group("cents") or "0").ljust(2, "0")
    return int(match.group("units")) * 100 + int(cents)


def format_brl(centavos: int) -> str:
    """1234567 → "R$ 12.345,67", for logs and human-facing text."""
    sign = "-" if centavos < 0 else ""
    units, cents = divmod(abs(centavos), 100)
    grouped = f"{units:,}".replace(",", ".")
    return f"{sign}R$ {grouped},{cents:02d}"
