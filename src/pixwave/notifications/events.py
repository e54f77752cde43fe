"""The one shape an event has outside PixWave, whichever way it leaves (SNS, SQS subscribers,
operator webhooks): receivers parse one format, and de-duplicate by its ``id``.

The payload passes the same masking as the logs: events are built from ids, amounts and
statuses, but a free-text field (a gateway's refusal message) could quote a CPF or a Pix key,
and what leaves PixWave should not carry personal data it does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pixwave.observability.masking import mask_value


def envelope(
    event_id: str,
    event_type: str,
    created_at: datetime,
    aggregate_type: str,
    aggregate_id: str,
    payload: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "timestamp": created_at.isoformat(),
        "aggregate": {"type": aggregate_type, "id": aggregate_id},
        "data": mask_value(payload),
    }


def envelope_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`envelope` of an outbox row (``id``, ``event_type``, ``created_at`` …)."""
    return envelope(
        event["id"],
        event["event_type"],
        event["created_at"],
        event["aggregate_type"],
        event["aggregate_id"],
        event["payload"],
    )
