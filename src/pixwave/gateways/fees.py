"""What a gateway charges per operation, so routing can prefer the cheaper of equals.

Each gateway's fees are configured with its other settings (``<PREFIX>_FEES``) as
``operation=fixed+bpsbp`` pairs: ``charge=0+99bp,send=25,refund=0`` is 0.99 % per charge
received, R$ 0,25 per send, refunds free. Fixed parts are integer centavos and rates integer
basis points (1 bp = 0.01 %), so the expected fee is exact integer arithmetic, rounded half up
to the centavo as providers bill. An operation not listed costs nothing as far as routing knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from pixwave.gateways.health import Operation

#: ``25``, ``99bp`` or ``25+99bp`` (spaces allowed around the parts).
_FEE: Final = re.compile(
    r"^\s*(?:(?P<fixed>\d{1,9})|(?P<rate>\d{1,5})\s*bp|(?P<both>\d{1,9})\s*\+\s*(?P<bps>\d{1,5})\s*bp)\s*$"
)


@dataclass(frozen=True, slots=True)
class Fee:
    fixed: int = 0  # centavos per operation
    bps: int = 0  # basis points of the amount

    def of(self, amount: int) -> int:
        """The fee on ``amount`` centavos, rounded half up to the centavo."""
        return self.fixed + (amount * self.bps + 5_000) // 10_000


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    fees: Mapping[Operation, Fee] = field(default_factory=dict)

    def expected(self, operation: Operation, amount: int) -> int:
        fee = self.fees.get(operation)
        return 0 if fee is None else fee.of(amount)

    @classmethod
    def parse(cls, text: str | None) -> FeeSchedule:
        """``charge=0+99bp,send=25``; raises ValueError naming what it could not read."""
        fees: dict[Operation, Fee] = {}
        for item in (text or "").split(","):
            if not item.strip():
                continue
            name, _, value = item.partition("=")
            try:
                operation = Operation(name.strip().lower())
            except ValueError:
                raise ValueError(
                    f"fee for {name.strip()!r}: operations are "
                    f"{', '.join(o.value for o in Operation if o is not Operation.QUERY)}"
                ) from None
            if operation in fees:
                raise ValueError(f"fee for {operation.value!r} is given twice")
            match = _FEE.match(value)
            if operation is Operation.QUERY or match is None:
                raise ValueError(
                    f"fee {item.strip()!r}: write operation=CENTAVOS, operation=BPSbp or "
                    "operation=CENTAVOS+BPSbp (e.g. charge=0+99bp)"
                )
            fixed = match["fixed"] or match["both"] or 0
            fees[operation] = Fee(int(fixed), int(match["rate"] or match["bps"] or 0))
        return cls(fees)


NO_FEES: Final = FeeSchedule()
