"""The inbox: every authenticated gateway notification, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class InboxEvent(Base):
    """A verified notification. The unique (gateway, event_id) makes a redelivery a no-op."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("gateway", "event_id"),
        Index(None, "processed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set when no job handled the event within a day: retries stop and an alert went out.
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
