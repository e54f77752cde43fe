"""Ledger tables.

An account's `posted` balance is the sum of its entries' signed amounts (credit > 0, debit < 0);
it is stored on the account row so a debit can be guarded by one conditional UPDATE, and
`pixwave audit` proves the stored value equals the sum. `held` is the sum of its pending holds.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class AccountKind(StrEnum):
    WALLET = "wallet"
    SYSTEM = "system"


class HoldStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        # The ledger's guarded updates already keep these true; the database enforces them too,
        # so no code path, present or future, can leave a wallet overdrawn.
        CheckConstraint("allow_negative OR posted - held >= 0", name="available_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: Stable name of a system account (`system:adjustments`, `clearing:efi`); null for wallets.
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="BRL")
    posted: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    held: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    #: System accounts (clearing, adjustments) mirror money outside PixWave and may go negative.
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerTransaction(Base):
    """One balanced group of entries: the unit in which money moves."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (Index(None, "reference"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: What caused it: a payment transaction id, an adjustment, a hold.
    reference: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerEntry(Base):
    """Immutable: never updated or deleted. A correction is a new ledger transaction."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index(None, "account_id", "id"), Index(None, "ledger_transaction_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ledger_transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    #: Signed centavos: positive credits the account, negative debits it.
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerHold(Base):
    """Money reserved on an account (a cash-out in flight): posted or voided exactly once."""

    __tablename__ = "ledger_holds"
    __table_args__ = (Index(None, "account_id", "status"), Index(None, "reference"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.PENDING)
    reference: Mapped[str | None] = mapped_column(String(64))
    #: The ledger transaction that posted it (null while pending or when voided).
    ledger_transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
