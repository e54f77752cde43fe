"""core schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 03:24:01.274132
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixwave.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_method", sa.String(length=8), nullable=False),
        sa.Column("request_path", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    op.create_index(
        op.f("ix_ledger_transactions_reference"), "ledger_transactions", ["reference"], unique=False
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("published_at", pixwave.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index(
        op.f("ix_outbox_events_aggregate_id"), "outbox_events", ["aggregate_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbox_events_published_at_id"),
        "outbox_events",
        ["published_at", "id"],
        unique=False,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("document_type", sa.String(length=8), nullable=True),
        sa.Column("document", sa.String(length=14), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("document", name=op.f("uq_users_document")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", pixwave.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("posted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("held", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ledger_accounts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
        sa.UniqueConstraint("user_id", name=op.f("uq_ledger_accounts_user_id")),
        sa.CheckConstraint(
            "allow_negative OR posted - held >= 0",
            name=op.f("ck_ledger_accounts_available_not_negative"),
        ),
        sa.CheckConstraint("held >= 0", name=op.f("ck_ledger_accounts_held_not_negative")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ledger_transaction_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_ledger_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        op.f("ix_ledger_entries_account_id_id"),
        "ledger_entries",
        ["account_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_entries_ledger_transaction_id"),
        "ledger_entries",
        ["ledger_transaction_id"],
        unique=False,
    )
    op.create_table(
        "ledger_holds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("ledger_transaction_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", pixwave.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_holds_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_holds_ledger_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_holds")),
        sa.UniqueConstraint(
            "ledger_transaction_id", name=op.f("uq_ledger_holds_ledger_transaction_id")
        ),
    )
    op.create_index(
        op.f("ix_ledger_holds_account_id_status"),
        "ledger_holds",
        ["account_id", "status"],
        unique=False,
    )
    op.create_index(op.f("ix_ledger_holds_reference"), "ledger_holds", ["reference"], unique=False)
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("wallet_id", sa.String(length=32), nullable=False),
        sa.Column("counterparty_wallet_id", sa.String(length=32), nullable=True),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("gateway", sa.String(length=32), nullable=True),
        sa.Column("txid", sa.String(length=35), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=32), nullable=True),
        sa.Column("gateway_payment_id", sa.String(length=64), nullable=True),
        sa.Column("pix_key", sa.String(length=77), nullable=True),
        sa.Column("description", sa.String(length=140), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=255), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("ledger_transaction_id", sa.String(length=32), nullable=True),
        sa.Column("hold_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["counterparty_wallet_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_transactions_counterparty_wallet_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_holds.id"], name=op.f("fk_transactions_hold_id_ledger_holds")
        ),
        sa.ForeignKeyConstraint(
            ["ledger_transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_transactions_ledger_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["transactions.id"], name=op.f("fk_transactions_parent_id_transactions")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_transactions_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_transactions_wallet_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_transactions_end_to_end_id")),
        sa.UniqueConstraint("txid", name=op.f("uq_transactions_txid")),
    )
    op.create_index(
        op.f("ix_transactions_counterparty_wallet_id_id"),
        "transactions",
        ["counterparty_wallet_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transactions_gateway_gateway_payment_id"),
        "transactions",
        ["gateway", "gateway_payment_id"],
        unique=False,
    )
    op.create_index(op.f("ix_transactions_parent_id"), "transactions", ["parent_id"], unique=False)
    op.create_index(
        op.f("ix_transactions_status_updated_at"),
        "transactions",
        ["status", "updated_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_transactions_wallet_id_id"), "transactions", ["wallet_id", "id"], unique=False
    )
    op.create_table(
        "gateway_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=255), nullable=True),
        sa.Column("created_at", pixwave.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_gateway_attempts_transaction_id_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_attempts")),
    )
    op.create_index(
        op.f("ix_gateway_attempts_transaction_id_id"),
        "gateway_attempts",
        ["transaction_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping indexes first trips MySQL's foreign keys.
    op.drop_table("gateway_attempts")
    op.drop_table("transactions")
    op.drop_table("ledger_holds")
    op.drop_table("ledger_entries")
    op.drop_table("ledger_accounts")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("outbox_events")
    op.drop_table("ledger_transactions")
    op.drop_table("idempotency_keys")
