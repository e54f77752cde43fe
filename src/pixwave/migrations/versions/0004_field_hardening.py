"""inbox events de-duplicated by digest; user deactivation; token last use

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00.000000
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixwave.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deactivated_at", pixwave.db.UTCDateTime(), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", pixwave.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("inbox_events") as batch:
        batch.add_column(sa.Column("event_digest", sa.String(length=64), nullable=True))
    # Rows stored before this revision kept at most 160 characters of their id: their digest
    # is of what was kept, which is what later deliveries of the same event were compared to.
    connection = op.get_bind()
    events = sa.table(
        "inbox_events", sa.column("id", sa.String), sa.column("event_id", sa.String),
        sa.column("event_digest", sa.String),
    )  # fmt: skip
    for row_id, event_id in connection.execute(sa.select(events.c.id, events.c.event_id)):
        digest = hashlib.sha256(event_id.encode()).hexdigest()
        connection.execute(events.update().where(events.c.id == row_id).values(event_digest=digest))
    with op.batch_alter_table("inbox_events") as batch:
        batch.drop_constraint("uq_inbox_events_gateway_event_id", type_="unique")
        batch.alter_column("event_digest", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column(
            "event_id", existing_type=sa.String(length=160), type_=sa.Text(), nullable=False
        )
        batch.create_unique_constraint(
            "uq_inbox_events_gateway_event_digest", ["gateway", "event_digest"]
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_events") as batch:
        batch.drop_constraint("uq_inbox_events_gateway_event_digest", type_="unique")
        batch.alter_column(
            "event_id", existing_type=sa.Text(), type_=sa.String(length=160), nullable=False
        )
        batch.create_unique_constraint("uq_inbox_events_gateway_event_id", ["gateway", "event_id"])
        batch.drop_column("event_digest")
    op.drop_column("api_tokens", "last_used_at")
    op.drop_column("users", "deactivated_at")
