"""gateway attempts record the expected fee of the gateway routing chose

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("gateway_attempts", sa.Column("expected_fee", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateway_attempts") as batch:
        batch.drop_column("expected_fee")
