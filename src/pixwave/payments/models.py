"""The payment `transactions` table (the original "payment history") and gateway attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        Index(None, "wallet_id", "id"),
        # What a wallet sent since a moment (the daily and night-time limits).
        Index(None, "wallet_id", "created_at"),
        Index(None, "counterparty_wallet_id", "id"),
        Index(None, "status", "updated_at"),
        Index(None, "gateway", "gateway_payment_id"),
        Index(None, "parent_id"),
        Index(None, "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    amount: Mapped[int] = mapped_column(BigInteger)  # centavos, always > 0
    currency: Mapped[str] = mapped_column(String(3), default="BRL")
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    #: The other PixWave wallet of an internal transfer.
    counterparty_wallet_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    #: The transaction a refund returns money of.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("transactions.id"))
    gateway: Mapped[str | None] = mapped_column(String(32))
    txid: Mapped[str | None] = mapped_column(String(35), unique=True)
    end_to_end_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    gateway_payment_id: Mapped[str | None] = mapped_column(String(64))
    pix_key: Mapped[str | None] = mapped_column(String(77))
    description: Mapped[str | None] = mapped_column(String(140))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    ledger_transaction_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    hold_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_holds.id"))
    #: The charge's Pix copia e cola and its QR image (PNG, base64), for cash-in.
    brcode: Mapped[str | None] = mapped_column(String(512))
    qr_png_base64: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the engine should look at this transaction again (NULL once it is final): the
    #: reconciliation sweep re-drives every row past it, so a lost job only delays a payment.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GatewayAttempt(Base):
    """Every call to a gateway, successful or not: the raw material of routing and audits."""

    __tablename__ = "gateway_attempts"
    __table_args__ = (Index(None, "transaction_id", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.id"))
    gateway: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32))
    try_number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(
        String(16)
    )  # succeeded | rejected | unavailable | ambiguous
    latency_ms: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(255))
    #: Centavos the gateway was expected to charge for this call (its configured fees, when
    #: routing chose it); null for reads.
    expected_fee: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
