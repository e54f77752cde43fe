"""Amazon SQS as the job broker (QUEUE_CONNECTION=sqs), a small taskiq broker on aioboto3.

The guarantees are the Redis streams broker's (ADR 0015 says why this is not taskiq-aio-sqs):

- **Acknowledged after the job ran.** A received message is hidden for the visibility timeout
  (``JOB_REDELIVERY_SECONDS``) and deleted only by its ``ack``; a worker that dies mid-job
  never deletes it, so SQS shows it to another worker once the timeout passes — on its own,
  without the new traffic Redis needs for XAUTOCLAIM.
- **Bounded prefetch.** One receive asks for at most ``receive_batch`` messages and the next
  receive waits until taskiq takes them all, so a worker hides no more than one batch beyond
  the jobs it runs; a batch left over at shutdown is made visible again at once.
- **Every call has a deadline**: connect and read timeouts of ``AWS_TIMEOUT_SECONDS``, the
  long poll's read timeout ``SQS_WAIT_SECONDS`` longer.
- **Refusals are loud.** A message larger than the queue's ``MaximumMessageSize`` or a delay
  beyond SQS's 15 minutes raises before anything is sent: the caller learns at the kick, not
  from a job that silently never runs. PixWave sends neither (jobs carry one id; waits are
  ``next_attempt_at`` rows the sweep re-drives).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aioboto3
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

log = structlog.get_logger("pixwave.worker")

#: SQS's longest ``DelaySeconds``; longer waits belong to ``next_attempt_at`` and the sweep.
MAX_DELAY_SECONDS = 900
#: SQS returns at most ten messages per receive.
MAX_RECEIVE_BATCH = 10
#: Until the queue says otherwise (GetQueueAttributes at start-up): the classic SQS limit.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024

_REGION_IN_URL = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?/")


class MessageTooLarge(ValueError):
    """A job message above the queue's ``MaximumMessageSize``: SQS would refuse it."""


class DelayTooLong(ValueError):
    """A delay SQS cannot hold (above 15 minutes, or negative)."""


def region_of(queue_url: str) -> str | None:
    """The region an AWS queue URL names (``https://sqs.sa-east-1.amazonaws.com/…``): the
    queue URL alone is enough, and a different AWS_DEFAULT_REGION cannot send the calls to
    the wrong region. None for emulators and custom endpoints (the region setting applies)."""
    match = _REGION_IN_URL.match(queue_url)
    return match.group(1) if match else None


def delay_seconds(value: Any) -> int:
    """A taskiq ``delay`` label as SQS ``DelaySeconds``, rounded up (never early)."""
    try:
        seconds = math.ceil(float(value))
    except (TypeError, ValueError):
        raise DelayTooLong(f"delay must be a number of seconds, not {value!r}") from None
    if not 0 <= seconds <= MAX_DELAY_SECONDS:
        raise DelayTooLong(
            f"SQS delays a message 0 to {MAX_DELAY_SECONDS} s, not {value}: store when to look "
            "again (next_attempt_at) and let the sweep re-drive it"
        )
    return seconds


class SqsBroker(AsyncBroker):
    """Jobs through one standard SQS queue, given by its URL (``AWS_SQS_QUEUE``)."""

    def __init__(
        self,
        queue_url: str,
        *,
        visibility_seconds: float,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_seconds: float = 5.0,
        wait_seconds: int = 10,
        receive_batch: int = MAX_RECEIVE_BATCH,
    ) -> None:
        super().__init__()
        if not 0 <= wait_seconds <= 20:
            raise ValueError(f"SQS long polls 0 to 20 s, not {wait_seconds}")
        self.queue_url = queue_url
        # SQS counts whole seconds (at most 12 h); rounding up never redelivers early.
        self.visibility_seconds = min(max(math.ceil(visibility_seconds), 1), 43_200)
        self.wait_seconds = wait_seconds
        self.receive_batch = min(max(receive_batch, 1), MAX_RECEIVE_BATCH)
        self.max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        # An AWS queue URL names its region, and only that region's endpoint serves it.
        self._session = aioboto3.Session(region_name=region_of(queue_url) or region)
        self._endpoint_url = endpoint_url
        # The long poll holds the response for up to wait_seconds: its read timeout must be
        # longer, or every idle receive would end in a timeout. Two tries: a caller that
        # fails (a kick, a receive) is retried by the sweep or the receive loop anyway.
        self.client_config = Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds + wait_seconds,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def startup(self) -> None:
        """Open the client and read the queue's size limit — which also fails the start
        when the queue does not exist or these credentials may not use it."""
        await super().startup()
        if self._client is None:
            stack = contextlib.AsyncExitStack()
            self._client = await stack.enter_async_context(
                self._session.client(
                    "sqs", endpoint_url=self._endpoint_url, config=self.client_config
                )
            )
            self._stack = stack
        answer = await self._client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["MaximumMessageSize"]
        )
        size = answer.get("Attributes", {}).get("MaximumMessageSize")
        if size:
            self.max_message_bytes = int(size)

    async def depth(self) -> tuple[int, int]:
        """(waiting, in flight) as SQS approximates them: the queue-depth metric, which
        drives the worker autoscaler, and the readiness check (it raises when SQS does not
        answer)."""
        answer = await self._client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
        attributes = answer.get("Attributes", {})
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    async def ping(self) -> None:
        await self.depth()

    async def shutdown(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._client = None, None
        await super().shutdown()

    async def kick(self, message: BrokerMessage) -> None:
        body = message.message
        if len(body) > self.max_message_bytes:
            raise MessageTooLarge(
                f"job {message.task_name} is {len(body)} bytes; the SQS queue takes at most "
                f"{self.max_message_bytes}: jobs carry an id and look the rest up"
            )
        request: dict[str, Any] = {"QueueUrl": self.queue_url, "MessageBody": body.decode()}
        delay = message.labels.get("delay")
        if delay is not None:
            request["DelaySeconds"] = delay_seconds(delay)
        await self._client.send_message(**request)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Receive with long polls; each message comes with the ``ack`` that deletes it."""
        received: deque[dict[str, Any]] = deque()
        try:
            while True:
                answer = await self._client.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.receive_batch,
                    WaitTimeSeconds=self.wait_seconds,
                    VisibilityTimeout=self.visibility_seconds,
                )
                received.extend(answer.get("Messages", ()))
                while received:
                    message = received.popleft()  # before the yield: taskiq owns it now
                    ack = self._ack(message["ReceiptHandle"])
                    yield AckableMessage(data=message["Body"].encode(), ack=ack)
        finally:
            # The receiver stopped (shutdown, an error) with messages it never started:
            # visible again now, not after the visibility timeout.
            if received and self._client is not None:
                await self._release(list(received))

    def _ack(self, receipt_handle: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            try:
                await self._client.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=receipt_handle
                )
            except (BotoCoreError, ClientError) as exc:
                # The job ran; SQS shows the message again after the visibility timeout
                # and the job runs once more, which every job is written to allow.
                log.warning("sqs.ack_failed", error=repr(exc))

        return ack

    async def _release(self, messages: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for n, m in enumerate(messages)
        ]
        try:
            await self._client.change_message_visibility_batch(
                QueueUrl=self.queue_url, Entries=entries
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("sqs.release_failed", messages=len(entries), error=repr(exc))
