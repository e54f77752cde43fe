"""The attempt rows of one run: the tries written before it, and the calls it has made.

Every gateway call becomes a ``gateway_attempts`` row. Rows are not written one per call: they
go in with the step's next state change (one database transaction per step), and whatever is
left is written as the run ends. A money-moving call (a send, a refund) is the exception: its
row is written — ``ambiguous`` — *before* the call leaves (see ``Run.announce``), so a process
killed during the call leaves that try on record; its answer is written later as an update.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pixwave.gateways.errors import GatewayError, Outcome
from pixwave.kit.ids import new_id
from pixwave.payments.repository import AttemptRow


class AttemptBook:
    """What one run knows about the tries of its transaction."""

    def __init__(
        self,
        transaction_id: str,
        clock: Callable[[], datetime],
        fee: Callable[[str, str], int | None] = lambda _gateway, _operation: None,
    ) -> None:
        self.transaction_id = transaction_id
        self.clock = clock
        #: The expected fee of a call to (gateway, operation), recorded on its row.
        self.fee = fee
        #: Written tries per operation and gateway; None until they are needed.
        self.written: dict[str, dict[str, int]] | None = None
        #: Rows not written yet (new calls, and an announced call before its commit).
        self.unwritten: list[AttemptRow] = []
        #: The announced call (written before it left) whose answer is not known yet.
        self.announced: AttemptRow | None = None
        #: Answers to announced calls, written as updates with the next state change.
        self.answers: list[AttemptRow] = []

    def new(self, gateway: str, operation: str, try_number: int) -> AttemptRow:
        """A row for a call; ``ambiguous`` (not known) until its answer is filled in."""
        return {
            "id": new_id("att"),
            "transaction_id": self.transaction_id,
            "gateway": gateway,
            "operation": operation,
            "try_number": try_number,
            "outcome": Outcome.AMBIGUOUS.value,
            "latency_ms": 0,
            "error_code": None,
            "error_message": None,
            "expected_fee": self.fee(gateway, operation),
            "created_at": self.clock(),
        }

    def announce(self, gateway: str, operation: str, try_number: int) -> AttemptRow:
        """A row to write before the call leaves (with the write that commits the gateway)."""
        row = self.new(gateway, operation, try_number)
        self.unwritten.append(row)
        return row

    def announced_written(self, row: AttemptRow) -> None:
        """The announced row committed: the call's answer will update it."""
        self.announced = row

    def withdraw(self, row: AttemptRow) -> None:
        """The write that carried an announced row rolled back: that call is not made."""
        self.unwritten.remove(row)

    def record(
        self,
        gateway: str,
        operation: str,
        try_number: int,
        outcome: Outcome,
        latency_ms: int,
        error: GatewayError | None,
    ) -> None:
        """A call's answer: it fills in the announced row when it is that call's, else it is a
        new row."""
        row = self.announced
        if row is not None and (row["gateway"], row["operation"], row["try_number"]) == (
            gateway,
            operation,
            try_number,
        ):
            self.announced = None
            target = self.answers
        else:
            row = self.new(gateway, operation, try_number)
            target = self.unwritten
        target.append(
            {
                **row,
                "outcome": outcome.value,
                "latency_ms": latency_ms,
                "error_code": error.code if error else None,
                "error_message": error.message[:255] if error else None,
            }
        )

    def batch(self) -> tuple[list[AttemptRow], list[AttemptRow]]:
        """The rows to insert and the answers to update with the next write."""
        return list(self.unwritten), list(self.answers)

    def committed(self, inserted: list[AttemptRow], answered: list[AttemptRow]) -> None:
        """A write carrying ``batch()`` committed: forget those rows, count the new tries."""
        del self.unwritten[: len(inserted)]
        del self.answers[: len(answered)]
        if self.written is not None:
            for row in inserted:
                by_gateway = self.written.setdefault(row["operation"], {})
                by_gateway[row["gateway"]] = by_gateway.get(row["gateway"], 0) + 1

    def pending(self) -> bool:
        return bool(self.unwritten or self.answers)

    def tries(self, operation: str) -> dict[str, int]:
        """Tries of ``operation`` per gateway: written ones plus this run's not yet written.
        Needs :attr:`written` loaded (see ``Run.tries``)."""
        counts = dict((self.written or {}).get(operation, {}))
        for row in self.unwritten:
            if row["operation"] == operation:
                counts[row["gateway"]] = counts.get(row["gateway"], 0) + 1
        return counts
