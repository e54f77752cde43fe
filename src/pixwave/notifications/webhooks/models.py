"""Operator webhook endpoints, one delivery per (event, endpoint), and every attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class WebhookEndpoint(Base):
    """A URL an operator registered, with the secret that signs what is sent to it.

    The secret is kept in clear because every delivery is signed with it; the API shows it
    once (on creation and on rotation) and it is never logged. After a rotation the previous
    secret keeps signing, next to the new one, until ``previous_secret_expires_at``.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(255), default="")
    #: Exact types (`transaction.succeeded`) or prefixes (`alert.*`); empty: every event.
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(64))
    previous_secret: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # enabled | disabled
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The first failed attempt after the last success (NULL while the endpoint answers 2xx).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event owed to one endpoint: its state and when to try next.

    A redelivery resets this row (``series`` + 1, ``attempts`` 0) rather than adding one, so
    "is anything still owed for this event?" is one indexed look-up, and the attempt log keeps
    every series apart by its number.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    #: Attempts claimed in the current series: the index into the retry schedule.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: 1 for the first series, + 1 on each redelivery.
    series: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    #: Due from this time (pending only). A claimed attempt moves it past the send's timeout,
    #: so a worker that dies mid-send leaves the delivery due again, never lost.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the current series started (creation or redelivery).
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookAttempt(Base):
    """One HTTP request made for a delivery, whatever came of it. Never the secret."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    series: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # succeeded | failed | error
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    #: The first 500 characters of the receiver's answer.
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
