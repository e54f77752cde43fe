"""Ledger errors. Insufficient funds is a client error; an unbalanced posting is a bug."""

from __future__ import annotations

from pixwave.exceptions import Conflict, NotFound, PixWaveError


class InsufficientFunds(PixWaveError):
    status_code = 402
    code = "insufficient_funds"
    title = "The wallet's available balance is too low"


class AccountNotFound(NotFound):
    code = "wallet_not_found"
    title = "No such wallet"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold"


class HoldAlreadyResolved(Conflict):
    code = "hold_already_resolved"
    title = "The hold was already posted or voided"


class UnbalancedPosting(PixWaveError):
    """Raised before anything is written; reaching it means a caller is wrong, not the user."""

    status_code = 500
    code = "unbalanced_posting"
    title = "Ledger entries must sum to zero"
