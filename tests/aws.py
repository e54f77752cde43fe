"""A real SNS/SQS over HTTP for the tests: moto's server, started once per test run.

Tests reach it exactly as production reaches AWS — boto3/aioboto3 with an endpoint URL, a region
and credentials — so what is checked is what goes over the wire.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.support import free_port

REGION = "us-east-1"
#: Fake credentials: moto accepts any, and they keep the real credential chain out of the tests.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """The emulator's URL; AWS credentials and region are set for the whole run."""
    port = free_port()
    # Its HTTP server logs every request at info through werkzeug's logger: noise, not facts.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update({**CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def aws(aws_endpoint: str) -> str:
    """The emulator, emptied before the test (topics, queues, subscriptions)."""
    httpx.post(f"{aws_endpoint}/moto-api/reset", timeout=5).raise_for_status()
    return aws_endpoint


class Aws:
    """Topics and queues on the emulator, read with plain boto3 like any subscriber would."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.sns = boto3.client("sns", endpoint_url=endpoint, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)

    def topic(self, name: str) -> str:
        return str(self.sns.create_topic(Name=name)["TopicArn"])

    def subscribe(
        self, topic_arn: str, name: str, filter_policy: dict[str, Any] | None = None
    ) -> str:
        url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes = {"RawMessageDelivery": "true"}
        if filter_policy is not None:
            attributes["FilterPolicy"] = json.dumps(filter_policy)
        self.sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes
        )
        return url

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every message in the queue, in the order it hands them out (a standard queue keeps
        no strict order): body and attributes."""
        messages: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            batch = answer.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                body = json.loads(message["Body"])
                body["attributes"] = {
                    name: value["StringValue"]
                    for name, value in message.get("MessageAttributes", {}).items()
                }
                messages.append(body)
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
