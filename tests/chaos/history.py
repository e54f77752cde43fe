"""What the load generator did and saw: every HTTP exchange, and one record per operation.

An *operation* is what a client wants (a deposit, a withdrawal, a transfer, a refund); it may
take several HTTP attempts (retries with the same `Idempotency-Key`). It is *acknowledged*
once the API answered it with a 2xx (accepted or done) or a 4xx that is a decision (402
insufficient funds, 409 not refundable …): from then on the answer is the system's promise,
and the checker holds the final state to it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["funding", "deposit", "withdrawal", "transfer", "refund"]


@dataclass
class Exchange:
    """One HTTP request and its answer (or the transport error instead)."""

    op: int  # the operation's seq (0: none, e.g. a replayed webhook)
    method: str
    url: str
    started: float
    answered: float
    status: int | None  # None: no answer (connection refused, timeout)
    error: str | None = None


@dataclass
class Op:
    """One operation of the load, from the first request to its last observed status."""

    seq: int
    kind: Kind
    wallet_id: str
    amount: int | None  # centavos; None: a refund of what is left
    key: str
    started: float
    to_wallet_id: str | None = None  # transfers
    parent_id: str | None = None  # refunds: the deposit refunded
    pix_key: str | None = None  # withdrawals
    attempts: int = 0
    acked_at: float | None = None
    status_code: int | None = None  # the acknowledging answer
    problem: str | None = None  # its problem code, for 4xx
    transaction_id: str | None = None
    paid: bool = False  # deposits: the payer paid the charge at the simulator (it said 200)
    paid_gateway: str | None = None
    terminal_at: float | None = None  # when the client saw a final status
    last_status: str | None = None  # the last transaction status the client saw

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @property
    def accepted(self) -> bool:
        """Acknowledged with a 2xx: the system took the payment."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class WebhookSent:
    """A webhook the harness itself sent (replayed, duplicated, late, out of order, forged)."""

    kind: str
    gateway: str
    at: float
    status: int | None
    forged: bool


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    webhooks: list[WebhookSent] = field(default_factory=list)

    def write(self, path: Path) -> None:
        """JSON lines: every exchange, operation and webhook, tagged by record type."""
        with path.open("w") as out:
            for name, items in (("op", self.ops), ("exchange", self.exchanges),
                                ("webhook", self.webhooks)):  # fmt: skip
                for item in items:
                    out.write(json.dumps({"record": name, **asdict(item)}) + "\n")

    @classmethod
    def read(cls, path: Path) -> History:
        history = cls()
        for line in path.read_text().splitlines():
            raw: dict[str, Any] = json.loads(line)
            record = raw.pop("record")
            if record == "op":
                history.ops.append(Op(**raw))
            elif record == "exchange":
                history.exchanges.append(Exchange(**raw))
            else:
                history.webhooks.append(WebhookSent(**raw))
        return history
