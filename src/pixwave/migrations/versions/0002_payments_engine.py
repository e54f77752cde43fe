"""payments engine

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:24:53.752167
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixwave.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("processed_at", pixwave.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_events")),
        sa.UniqueConstraint("gateway", "event_id", name=op.f("uq_inbox_events_gateway_event_id")),
    )
    op.create_index(
        op.f("ix_inbox_events_processed_at"), "inbox_events", ["processed_at"], unique=False
    )
    op.add_column("transactions", sa.Column("brcode", sa.String(length=512), nullable=True))
    op.add_column("transactions", sa.Column("qr_png_base64", sa.Text(), nullable=True))
    op.add_column("transactions", sa.Column("expires_at", pixwave.db.UTCDateTime(), nullable=True))
    op.add_column(
        "transactions", sa.Column("next_attempt_at", pixwave.db.UTCDateTime(), nullable=True)
    )
    op.create_index(
        op.f("ix_transactions_next_attempt_at"), "transactions", ["next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_transactions_next_attempt_at"), table_name="transactions")
    op.drop_column("transactions", "next_attempt_at")
    op.drop_column("transactions", "expires_at")
    op.drop_column("transactions", "qr_png_base64")
    op.drop_column("transactions", "brcode")
    op.drop_index(op.f("ix_inbox_events_processed_at"), table_name="inbox_events")
    op.drop_table("inbox_events")
