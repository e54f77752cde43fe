"""API shapes of webhook endpoints, events and their deliveries."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from pixwave.kit.text import PlainText

#: The event families PixWave emits; a filter must name one of them (a typo would otherwise
#: subscribe to nothing, silently).
EVENT_FAMILIES: Final = ("transaction", "alert")
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _event_type_filter(value: str) -> str:
    if not _EVENT_TYPE.match(value) or value.split(".", 1)[0] not in EVENT_FAMILIES:
        raise PydanticCustomError(
            "invalid_event_type",
            "an event type is `family.name` or a prefix `family.*`, with family one of {families}",
            {"families": ", ".join(EVENT_FAMILIES)},
        )
    return value


EventTypeFilter = Annotated[
    str,
    Field(min_length=3, max_length=64, examples=["transaction.*", "alert.*"]),
    AfterValidator(_event_type_filter),
]


def subscribed(filters: list[str], event_type: str) -> bool:
    """Whether an endpoint with these filters wants the event (no filter: every event)."""
    if not filters:
        return True
    for wanted in filters:
        if wanted.endswith(".*"):
            if event_type.startswith(wanted[:-1]):
                return True
        elif wanted == event_type:
            return True
    return False


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(
        min_length=8,
        max_length=2048,
        description="Where events are posted: https (or http). Its host must resolve to "
        "public addresses only, unless private URLs are allowed (see docs/webhooks.md).",
        examples=["https://ops.example.com/pixwave/webhooks"],
    )
    description: PlainText = Field(default="", max_length=255)
    event_types: list[EventTypeFilter] = Field(
        default_factory=list,
        max_length=50,
        description="Exact types (`transaction.succeeded`) or prefixes (`transaction.*`, "
        "`alert.*`); empty: every event.",
    )


class WebhookEndpointRead(BaseModel):
    """An endpoint as operators see it: never its secret."""

    id: str
    object: str = "webhook_endpoint"
    url: str
    description: str
    event_types: list[str]
    status: EndpointStatus
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = Field(
        default=None, description="The first failed attempt since the last success."
    )
    last_succeeded_at: datetime | None = None
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="After a rotation: until then the previous secret signs too.",
    )
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str | None = Field(
        description="`whsec_…`: shown in this response only. A replay of the request (same "
        "Idempotency-Key) returns null here: rotate the secret if it was lost."
    )


class WebhookAttemptRead(BaseModel):
    """One HTTP request made for a delivery."""

    id: str
    series: int = Field(description="1, then + 1 for each redelivery.")
    number: int = Field(description="The attempt's number within its series, from 1.")
    outcome: str = Field(
        description="`succeeded` (2xx), `failed` (another status) or `error` (no answer: "
        "refused address, connection, timeout)."
    )
    status_code: int | None = None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = Field(
        default=None, description="The first 500 characters of the answer."
    )
    attempted_at: datetime


class WebhookDeliveryRead(BaseModel):
    """The event owed to one endpoint."""

    id: str
    endpoint_id: str
    status: DeliveryStatus
    series: int
    attempt_count: int = Field(description="Attempts made in the current series.")
    next_attempt_at: datetime | None = None
    queued_at: datetime
    attempts: list[WebhookAttemptRead] = Field(default_factory=list)


class EventRead(BaseModel):
    id: str = Field(description="Also the `webhook-id` of every delivery of this event.")
    object: str = "event"
    type: str
    aggregate_type: str
    aggregate_id: str
    data: dict[str, Any]
    created_at: datetime
    published_at: datetime | None = Field(
        default=None, description="When the relay handed the event on; null: not yet."
    )


class EventDetail(EventRead):
    deliveries: list[WebhookDeliveryRead]


class EventRedeliver(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    endpoint_id: str | None = Field(
        default=None,
        max_length=40,
        description="Only this endpoint (even if not subscribed to the type); unset: every "
        "enabled endpoint subscribed to the event's type.",
    )


class Redelivery(BaseModel):
    event_id: str
    deliveries: list[WebhookDeliveryRead] = Field(
        description="The deliveries queued: each starts a new series of attempts."
    )


class NoBody(BaseModel):
    """What an idempotent POST without a body is fingerprinted by."""

    model_config = ConfigDict(extra="forbid")
