"""The inbox: every authenticated gateway notification, once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pixwave.db import Base, UTCDateTime, utcnow


class InboxEvent(Base):
    """A verified notification. The unique (gateway, event_digest) makes a redelivery a no-op.

    The provider's event id is kept whole and de-duplicated by its SHA-256: an id of any length
    has a fixed-size unique key, and two ids that merely share a prefix stay two events.
    """

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("gateway", "event_digest"),
        Index(None, "processed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(Text)
    #: hex SHA-256 of ``event_id``: the de-duplication key.
    event_digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    #: The provider's id of the charge, send or refund: never longer than the columns it is
    #: matched against (longer ids are refused on receipt, not cut).
    resource_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Set when no job handled the event within a day: retries stop and an alert went out.
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
