"""inbox events left for a human

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixwave.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "inbox_events", sa.Column("abandoned_at", pixwave.db.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("inbox_events", "abandoned_at")
