"""Users and their API tokens. Tokens are stored only as SHA-256 hashes."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class DocumentType(StrEnum):
    CPF = "cpf"
    CNPJ = "cnpj"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    document_type: Mapped[str | None] = mapped_column(String(8))
    document: Mapped[str | None] = mapped_column(String(14), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Set while the user is deactivated: none of their tokens authenticates; money stays.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: An admin's limits for this user (centavos; unset: the operator's defaults, LIMIT_*).
    limit_per_transaction: Mapped[int | None] = mapped_column(BigInteger)
    limit_daily: Mapped[int | None] = mapped_column(BigInteger)
    limit_nighttime: Mapped[int | None] = mapped_column(BigInteger)
    #: When this user's night period starts (the Central Bank lets a user pick 22:00).
    night_starts: Mapped[time | None] = mapped_column(Time)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: First characters of the token, so an operator can tell tokens apart without the secret.
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the token last authenticated a request, to within about a minute (it is written
    #: when a process looks the token up, not on every request).
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
