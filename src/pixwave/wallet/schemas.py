"""API shapes of wallets, statements, transfers and adjustments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pixwave.kit.money import PositiveCentavos
from pixwave.kit.text import PlainText


class WalletRead(BaseModel):
    id: str
    object: str = "wallet"
    user_id: str | None
    currency: str
    posted: int = Field(description="Centavos settled on the wallet.")
    held: int = Field(description="Centavos reserved by pending operations (cash-outs).")
    available: int = Field(description="posted − held: what the wallet can spend now.")


class StatementEntry(BaseModel):
    id: str
    object: str = "ledger_entry"
    ledger_transaction_id: str
    kind: str
    reference: str | None
    description: str
    amount: int = Field(description="Signed centavos: positive credits the wallet.")
    created_at: datetime


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    to_wallet_id: str = Field(min_length=1, max_length=32, description="The receiving wallet.")
    amount: PositiveCentavos
    description: PlainText | None = Field(default=None, max_length=140)


class AdjustmentDirection(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class AdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    wallet_id: str = Field(min_length=1, max_length=32)
    direction: AdjustmentDirection
    amount: PositiveCentavos
    reason: PlainText = Field(min_length=3, max_length=140, description="Why; kept in the ledger.")
