"""Mercado Pago webhook verification: x-signature as MP computes it, and the parsed events."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mercadopago.webhook import (
    InvalidWebhookSignatureError,
    SignatureFailureReason,
    WebhookSignatureValidator,
)

from pixwave.gateways.base import InboundWebhook, WebhookKind
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.mercadopago import MercadoPagoConnector
from pixwave.gateways.mercadopago.webhooks import build_manifest, parse_signature_header

SECRET = "a3f1c0ffee5ecret"
NOW = datetime(2024, 1, 10, 17, 33, 30, tzinfo=UTC)
TS = str(int(NOW.timestamp()))  # 10 digits: seconds
TS_MS = str(int(NOW.timestamp()) * 1000)  # 13 digits: milliseconds
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
DATA_ID = "999999999"


def mp_signature(secret: str, data_id: str | None, request_id: str | None, ts: str) -> str:
    """The x-signature header exactly as MP builds it (reference §1.6), written out here."""
    manifest = ""
    if data_id:
        manifest += f"id:{data_id};"
    if request_id:
        manifest += f"request-id:{request_id};"
    manifest += f"ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


def notification(
    *, data_id: str = DATA_ID, kind: str = "payment", action: str = "payment.updated"
) -> bytes:
    return json.dumps(
        {
            "id": 12345,
            "live_mode": True,
            "type": kind,
            "date_created": "2024-01-10T10:04:58.396-04:00",
            "user_id": 44444,
            "api_version": "v1",
            "action": action,
            "data": {"id": data_id},
        }
    ).encode()


def inbound(
    *,
    body: bytes | None = None,
    data_id: str | None = DATA_ID,
    request_id: str | None = REQUEST_ID,
    signature: str | None = None,
    secret: str = SECRET,
    ts: str = TS,
    query_type: str = "payment",
) -> InboundWebhook:
    """A delivery as MP sends it: POST {url}?data.id=…&type=…, signed headers, JSON body."""
    headers: dict[str, str] = {"content-type": "application/json"}
    if request_id is not None:
        headers["x-request-id"] = request_id
    headers["x-signature"] = (
        signature if signature is not None else mp_signature(secret, data_id, request_id, ts)
    )
    query: dict[str, str] = {"type": query_type}
    if data_id is not None:
        query["data.id"] = data_id
    return InboundWebhook(
        body=notification() if body is None else body,
        headers=headers,
        query=query,
        client_ip="54.88.218.97",
    )


@pytest.fixture
async def connector() -> AsyncIterator[MercadoPagoConnector]:
    connector = MercadoPagoConnector(
        access_token="APP_USR-x", webhook_secret=SECRET, clock=lambda: NOW
    )
    yield connector
    await connector.aclose()


def rejected(connector: MercadoPagoConnector, request: InboundWebhook) -> str:
    with pytest.raises(WebhookRejected) as caught:
        connector.verify_webhook(request)
    return caught.value.reason


class TestValidSignature:
    def test_payment(self, connector: MercadoPagoConnector) -> None:
        """A correctly signed payment notification yields one CHARGE event."""
        [event] = connector.verify_webhook(inbound())
        assert event.gateway == "mercadopago"
        assert event.kind is WebhookKind.CHARGE
        assert event.resource_id == DATA_ID
        assert event.event_id == "mercadopago:12345"
        assert event.data == {"action": "payment.updated"}

    def test_millisecond_timestamp(self, connector: MercadoPagoConnector) -> None:
        """A 13-digit ts (milliseconds) within the window is accepted."""
        [event] = connector.verify_webhook(inbound(ts=TS_MS))
        assert event.resource_id == DATA_ID

    def test_without_request_id(self, connector: MercadoPagoConnector) -> None:
        """Without x-request-id the manifest drops that pair and still validates."""
        [event] = connector.verify_webhook(inbound(request_id=None))
        assert event.kind is WebhookKind.CHARGE

    def test_spaces_around_parts(self, connector: MercadoPagoConnector) -> None:
        """Keys and values of x-signature are trimmed."""
        ts, hashes = parse_signature_header(mp_signature(SECRET, DATA_ID, REQUEST_ID, TS))
        header = f" ts = {ts} , v1 = {hashes['v1']} "
        [event] = connector.verify_webhook(inbound(signature=header))
        assert event.resource_id == DATA_ID

    def test_within_tolerance(self, connector: MercadoPagoConnector) -> None:
        """A ts 299 s old is inside the default 300 s window."""
        ts = str(int((NOW - timedelta(seconds=299)).timestamp()))
        assert len(connector.verify_webhook(inbound(ts=ts))) == 1

    def test_transaction_intent(self, connector: MercadoPagoConnector) -> None:
        """A transaction_intent notification is a SEND event naming the intent id."""
        intent_id = "3f1c2a9e-8d4b-4c6a-9e2f-1a2b3c4d5e6f"
        body = notification(
            data_id=intent_id, kind="transaction_intent", action="transaction_intent.updated"
        )
        request = inbound(body=body, data_id=intent_id, query_type="transaction_intent")
        [event] = connector.verify_webhook(request)
        assert event.kind is WebhookKind.SEND
        assert event.resource_id == intent_id

    def test_other_topics_ignored(self, connector: MercadoPagoConnector) -> None:
        """A signed notification of another topic is acknowledged with no events."""
        body = notification(kind="merchant_order", action="merchant_order.updated")
        assert connector.verify_webhook(inbound(body=body)) == []

    def test_creation_notices_carry_no_event(self, connector: MercadoPagoConnector) -> None:
        """payment.created (MP announcing the charge we just made) is accepted, with no event."""
        assert connector.verify_webhook(inbound(body=notification(action="payment.created"))) == []

    def test_alphanumeric_id_kept_verbatim(self, connector: MercadoPagoConnector) -> None:
        """An alphanumeric data.id is signed and compared as received, case preserved."""
        body = notification(data_id="ORD01JQ4S4KY8HWQ6NA5PXB65B3D3")
        request = inbound(body=body, data_id="ORD01JQ4S4KY8HWQ6NA5PXB65B3D3")
        [event] = connector.verify_webhook(request)
        assert event.resource_id == "ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"


class TestRejected:
    def test_tampered_body(self, connector: MercadoPagoConnector) -> None:
        """A body naming another payment than the signed query is refused."""
        request = inbound(body=notification(data_id="111111111"))
        assert rejected(connector, request) == "invalid_body"

    def test_a_signed_but_deeply_nested_body_is_invalid(
        self, connector: MercadoPagoConnector
    ) -> None:
        """The signature covers the query, not the body: 50,000 brackets under a valid
        signature are invalid_body, never a 500 from the parser's recursion limit."""
        assert rejected(connector, inbound(body=b"[" * 50_000)) == "invalid_body"

    def test_tampered_query(self, connector: MercadoPagoConnector) -> None:
        """Changing the query's data.id after signing breaks the signature."""
        good = inbound()
        request = InboundWebhook(
            body=notification(data_id="111111111"),
            headers=good.headers,
            query={**good.query, "data.id": "111111111"},
        )
        assert rejected(connector, request) == "signature_mismatch"

    def test_wrong_secret(self, connector: MercadoPagoConnector) -> None:
        """A signature made with another secret does not match."""
        assert rejected(connector, inbound(secret="not-the-secret")) == "signature_mismatch"

    def test_tampered_request_id(self, connector: MercadoPagoConnector) -> None:
        """The request id is part of the manifest."""
        good = inbound()
        request = InboundWebhook(
            body=good.body,
            headers={**good.headers, "x-request-id": "00000000-0000-0000-0000-000000000000"},
            query=good.query,
        )
        assert rejected(connector, request) == "signature_mismatch"

    def test_stale_seconds(self, connector: MercadoPagoConnector) -> None:
        """A 10-digit ts older than the window is stale."""
        ts = str(int((NOW - timedelta(seconds=301)).timestamp()))
        assert rejected(connector, inbound(ts=ts)) == "stale_timestamp"

    def test_stale_milliseconds(self, connector: MercadoPagoConnector) -> None:
        """A 13-digit ts older than the window is stale."""
        ts = str(int((NOW - timedelta(seconds=301)).timestamp() * 1000))
        assert rejected(connector, inbound(ts=ts)) == "stale_timestamp"

    def test_future_timestamp(self, connector: MercadoPagoConnector) -> None:
        """A ts far in the future is outside the window too."""
        ts = str(int((NOW + timedelta(hours=1)).timestamp()))
        assert rejected(connector, inbound(ts=ts)) == "stale_timestamp"

    def test_missing_header(self, connector: MercadoPagoConnector) -> None:
        """No x-signature header at all."""
        good = inbound()
        headers = {k: v for k, v in good.headers.items() if k != "x-signature"}
        request = InboundWebhook(body=good.body, headers=headers, query=good.query)
        assert rejected(connector, request) == "missing_signature"

    def test_blank_header(self, connector: MercadoPagoConnector) -> None:
        """A blank x-signature is a missing one."""
        assert rejected(connector, inbound(signature="   ")) == "missing_signature"

    def test_malformed_header(self, connector: MercadoPagoConnector) -> None:
        """A header with no k=v parts is malformed."""
        assert rejected(connector, inbound(signature="garbage")) == "malformed_signature"

    def test_non_numeric_ts(self, connector: MercadoPagoConnector) -> None:
        """A ts that is not a number is malformed."""
        assert rejected(connector, inbound(signature="ts=yesterday,v1=abc")) == (
            "malformed_signature"
        )

    def test_missing_timestamp(self, connector: MercadoPagoConnector) -> None:
        """A header with a hash but no ts."""
        assert rejected(connector, inbound(signature="v1=abc123")) == "missing_timestamp"

    def test_missing_hash(self, connector: MercadoPagoConnector) -> None:
        """A header with a ts but no v1."""
        assert rejected(connector, inbound(signature=f"ts={TS}")) == "missing_hash"

    def test_other_version_only(self, connector: MercadoPagoConnector) -> None:
        """Only v1 is accepted, as the SDK's default."""
        assert rejected(connector, inbound(signature=f"ts={TS},v2=abc")) == "missing_hash"

    def test_body_not_json(self, connector: MercadoPagoConnector) -> None:
        """A correctly signed request whose body is not JSON is refused."""
        assert rejected(connector, inbound(body=b"<xml/>")) == "invalid_body"

    def test_body_without_data(self, connector: MercadoPagoConnector) -> None:
        """A payment notification without data.id is refused."""
        body = json.dumps({"id": 1, "type": "payment", "action": "payment.created"}).encode()
        assert rejected(connector, inbound(body=body)) == "invalid_body"

    def test_unsigned_id(self, connector: MercadoPagoConnector) -> None:
        """A payment notification whose query has no data.id (so no signed id) is refused."""
        assert rejected(connector, inbound(data_id=None)) == "invalid_body"

    async def test_no_secret(self) -> None:
        """Without a configured secret nothing is accepted."""
        connector = MercadoPagoConnector(
            access_token="APP_USR-x", webhook_secret=None, clock=lambda: NOW
        )
        try:
            assert rejected(connector, inbound()) == "no_secret_configured"
        finally:
            await connector.aclose()

    async def test_tolerance_is_configurable(self) -> None:
        """webhook_tolerance_seconds narrows the window."""
        strict = MercadoPagoConnector(
            access_token="APP_USR-x",
            webhook_secret=SECRET,
            webhook_tolerance_seconds=10,
            clock=lambda: NOW,
        )
        ts = str(int((NOW - timedelta(seconds=11)).timestamp()))
        try:
            assert rejected(strict, inbound(ts=ts)) == "stale_timestamp"
        finally:
            await strict.aclose()


def sdk_validate(request: InboundWebhook, **options: Any) -> None:
    WebhookSignatureValidator.validate(
        request.headers.get("x-signature"),
        request.headers.get("x-request-id"),
        request.query.get("data.id"),
        SECRET,
        tolerance_seconds=300,
        now=lambda: int(NOW.timestamp() * 1000),
        **options,
    )


class TestAgreesWithOfficialSdk:
    def test_manifest(self) -> None:
        """Our manifest is the one in MP's documentation."""
        assert build_manifest("123", "abc", "1704908010") == "id:123;request-id:abc;ts:1704908010;"
        assert build_manifest("123", None, "1704908010") == "id:123;ts:1704908010;"

    @pytest.mark.parametrize("request_id", [REQUEST_ID, None])
    def test_valid_for_both(self, connector: MercadoPagoConnector, request_id: str | None) -> None:
        """A signature we accept is one the official validator accepts."""
        request = inbound(request_id=request_id)
        sdk_validate(request)
        assert len(connector.verify_webhook(request)) == 1

    def test_mismatch_for_both(self, connector: MercadoPagoConnector) -> None:
        """A signature we refuse as a mismatch, the official validator refuses too."""
        request = inbound(secret="other")
        with pytest.raises(InvalidWebhookSignatureError) as caught:
            sdk_validate(request)
        assert caught.value.reason is SignatureFailureReason.SIGNATURE_MISMATCH
        assert rejected(connector, request) == "signature_mismatch"

    @pytest.mark.parametrize(
        ("header", "sdk_reason", "reason"),
        [
            ("garbage", SignatureFailureReason.MALFORMED_SIGNATURE_HEADER, "malformed_signature"),
            ("v1=abc", SignatureFailureReason.MISSING_TIMESTAMP, "missing_timestamp"),
            (f"ts={TS}", SignatureFailureReason.MISSING_HASH, "missing_hash"),
        ],
    )
    def test_header_failures_agree(
        self,
        connector: MercadoPagoConnector,
        header: str,
        sdk_reason: SignatureFailureReason,
        reason: str,
    ) -> None:
        """Malformed headers fail for the same reason in both."""
        request = inbound(signature=header)
        with pytest.raises(InvalidWebhookSignatureError) as caught:
            sdk_validate(request)
        assert caught.value.reason is sdk_reason
        assert rejected(connector, request) == reason
