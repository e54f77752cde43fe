"""money limits: a user's own limits, and an index to sum what a wallet sent since a moment

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("limit_per_transaction", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("limit_daily", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("limit_nighttime", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("night_starts", sa.Time(), nullable=True))
    op.create_index(
        "ix_transactions_wallet_id_created_at", "transactions", ["wallet_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_wallet_id_created_at", table_name="transactions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("night_starts")
        batch.drop_column("limit_nighttime")
        batch.drop_column("limit_daily")
        batch.drop_column("limit_per_transaction")
