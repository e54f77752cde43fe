"""API shapes of the payment transaction record."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pixwave.payments.status import TransactionStatus, TransactionType


class TransactionRead(BaseModel):
    id: str
    object: str = "transaction"
    type: TransactionType
    status: TransactionStatus
    amount: int = Field(description="Centavos.")
    currency: str
    wallet_id: str
    counterparty_wallet_id: str | None = None
    parent_id: str | None = None
    gateway: str | None = None
    txid: str | None = None
    end_to_end_id: str | None = None
    gateway_payment_id: str | None = None
    pix_key: str | None = None
    description: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    refunded_amount: int = 0
    ledger_transaction_id: str | None = None
    created_at: datetime
    updated_at: datetime
