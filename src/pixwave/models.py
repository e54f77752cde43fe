"""Imports every table so Alembic and `metadata.create_all` see the whole schema."""

from pixwave.accounts.models import ApiToken, User
from pixwave.db import Base
from pixwave.inbox.models import InboxEvent
from pixwave.kit.models import IdempotencyRecord
from pixwave.ledger.models import LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from pixwave.notifications.models import OutboxEvent
from pixwave.notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from pixwave.payments.models import GatewayAttempt, Transaction

__all__ = [
    "ApiToken",
    "Base",
    "GatewayAttempt",
    "IdempotencyRecord",
    "InboxEvent",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHold",
    "LedgerTransaction",
    "OutboxEvent",
    "Transaction",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
