"""Standard Webhooks signatures (https://www.standardwebhooks.com), with the reference package.

The receiver checks ``webhook-signature`` against ``webhook-id``, ``webhook-timestamp`` and the
raw body with its secret. During a rotation the header carries one signature per live secret,
space-separated as the spec allows, so a receiver still on the old secret keeps verifying
until it switches.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
#: How long the previous secret keeps signing after a rotation.
ROTATION_OVERLAP: Final = timedelta(hours=24)


def new_secret() -> str:
    """``whsec_`` + 32 random bytes in base64 (the spec's recommended 24–64 bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def live_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets that sign now: the current one, and the previous one inside its overlap."""
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return [secret, previous]
    return [secret]


def signature(keys: Sequence[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated."""
    return " ".join(Webhook(key).sign(msg_id, timestamp, body) for key in keys)
