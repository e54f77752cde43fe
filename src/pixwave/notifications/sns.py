"""Publishing outbox events to Amazon SNS: transaction events to one topic, alerts to another.

Each message carries attributes (event type, aggregate type, transaction type, gateway) so
subscribers can filter without reading bodies — an SQS queue subscribed with
``{"event_type": ["transaction.succeeded"]}`` sees only settlements. A FIFO topic (an ARN ending
``.fifo``) gets the aggregate id as message group and the event id as de-duplication id, so one
transaction's events arrive in order and a republished event is dropped by SNS itself; a
standard topic delivers at least once and subscribers de-duplicate by the event id in the body.

The client is created lazily on the event loop that publishes (aioboto3 clients are bound to
one) and uses the standard AWS configuration: credentials chain, region, ``AWS_ENDPOINT_URL``.
``SNS_API_KEY`` (the original deployment's name) supplies SNS-only credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import aioboto3
import orjson
from botocore.config import Config

from pixwave.config import Settings
from pixwave.notifications.events import envelope_of

#: Attribute values SNS accepts are non-empty strings; longer ones are never needed here.
_ATTRIBUTE_MAX = 256


def attributes(event: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """SNS message attributes for subscription filter policies (absent values left out)."""
    payload = event["payload"] if isinstance(event["payload"], Mapping) else {}
    values = {
        "event_type": event["event_type"],
        "aggregate_type": event["aggregate_type"],
        "transaction_type": payload.get("type")
        if event["aggregate_type"] == "transaction"
        else None,
        "gateway": payload.get("gateway"),
    }
    return {
        name: {"DataType": "String", "StringValue": str(value)[:_ATTRIBUTE_MAX]}
        for name, value in values.items()
        if value not in (None, "")
    }


class SnsPublisher:
    """One SNS client per process, publishing to the events and alerts topics."""

    def __init__(self, settings: Settings) -> None:
        assert settings.aws_sns_topic_arn is not None
        self.topic_arn = settings.aws_sns_topic_arn
        self.alerts_topic_arn = settings.aws_sns_alerts_topic_arn or settings.aws_sns_topic_arn
        credentials: dict[str, str] = {}
        if settings.sns_api_key:
            key_id, _, secret = settings.sns_api_key.partition(":")
            credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        self._session = aioboto3.Session(region_name=settings.aws_region, **credentials)
        self._endpoint_url = settings.aws_endpoint_url
        timeout = settings.aws_timeout_seconds
        # Two tries at most: the relay retries on its next round anyway, and a long botocore
        # retry loop would hold every event behind one slow call.
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SnsPublisher | None:
        return cls(settings) if settings.aws_sns_topic_arn else None

    def topic_for(self, event_type: str) -> str:
        return self.alerts_topic_arn if event_type.startswith("alert.") else self.topic_arn

    async def _sns(self) -> Any:
        if self._client is None:
            stack = contextlib.AsyncExitStack()
            self._client = await stack.enter_async_context(
                self._session.client("sns", endpoint_url=self._endpoint_url, config=self._config)
            )
            self._stack = stack
        return self._client

    async def publish(self, event: Mapping[str, Any]) -> str:
        """Publish one outbox event; return SNS's message id. Raises on any failure."""
        topic = self.topic_for(event["event_type"])
        request: dict[str, Any] = {
            "TopicArn": topic,
            "Message": orjson.dumps(envelope_of(event)).decode(),
            "MessageAttributes": attributes(event),
        }
        if topic.endswith(".fifo"):
            request["MessageGroupId"] = event["aggregate_id"]
            request["MessageDeduplicationId"] = event["id"]
        client = await self._sns()
        answer = await client.publish(**request)
        return str(answer["MessageId"])

    async def ping(self) -> None:
        """Readiness: both topics exist and these credentials may read them."""
        client = await self._sns()
        for topic in {self.topic_arn, self.alerts_topic_arn}:
            await client.get_topic_attributes(TopicArn=topic)

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        self._client = None
