"""What the webhook and event endpoints answer on purpose (the URL guard's refusal is in
:mod:`.urls`, next to the rule)."""

from __future__ import annotations

from pixwave.exceptions import Conflict, NotFound


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "No such webhook endpoint"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "The webhook endpoint is disabled; enable it first"


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "No such event"


class EventNotPublished(Conflict):
    code = "event_not_published"
    title = "The event has not been published yet; it will be delivered when it is"
