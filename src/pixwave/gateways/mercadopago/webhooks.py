"""Mercado Pago notifications: the ``x-signature`` check and the parse to our event.

MP signs a *manifest*, not the body (reference §1.6)::

    id:{data.id};request-id:{x-request-id};ts:{ts};

where ``data.id`` is the one in the query string, a pair whose value is absent is left out, and
the signature is ``hex(HMAC-SHA256(secret, manifest))`` in ``x-signature: ts=…,v1=…``. Because the
body is not signed, its ``data.id`` must equal the signed one, or a valid signature could carry a
tampered body.

A notification says only *which* resource changed, never its status: the engine re-reads the
payment (or transaction intent) from the API before acting, so a replayed notification can at
worst cause one extra read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pixwave.gateways.base import InboundWebhook, WebhookEvent, WebhookKind
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.mercadopago.mapping import GATEWAY
from pixwave.gateways.mercadopago.schemas import WebhookNotification, decode_json

SIGNATURE_VERSION = "v1"

#: Notification ``type`` → what it is about. Other topics are acknowledged and ignored.
WEBHOOK_KINDS: dict[str, WebhookKind] = {
    "payment": WebhookKind.CHARGE,
    # Pay-outs: resource_id is the transaction intent id, which get_send takes as send_id.
    "transaction_intent": WebhookKind.SEND,
}


def build_manifest(data_id: str | None, request_id: str | None, ts: str) -> str:
    """The signed text, leaving out the pair of any absent value (as MP's SDKs do)."""
    parts = []
    if data_id:
        parts.append(f"id:{data_id}")
    if request_id:
        parts.append(f"request-id:{request_id}")
    parts.append(f"ts:{ts}")
    return ";".join(parts) + ";"


def compute_signature(secret: str, manifest: str) -> str:
    return hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()


def _present(value: str | None) -> str | None:
    """Trimmed value, or None when missing or blank (a blank header is no header)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_signature_header(header: str) -> tuple[str | None, dict[str, str]]:
    """``ts=1704908010,v1=abc`` → ``("1704908010", {"v1": "abc"})``; bad parts are skipped."""
    ts: str | None = None
    hashes: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not key or not value:
            continue
        if key == "ts":
            ts = value
        elif key.startswith("v") and key[1:].isdigit():
            hashes[key] = value
    return ts, hashes


def _timestamp_seconds(ts: str) -> float:
    """MP's ``ts`` is seconds in its examples and milliseconds in its prose: 13 digits ⇒ ms."""
    return int(ts) / 1000 if len(ts) == 13 else int(ts)


def verify_signature(
    request: InboundWebhook,
    *,
    secret: str | None,
    tolerance_seconds: int,
    clock: Callable[[], datetime],
) -> None:
    """Raise :class:`WebhookRejected` unless ``x-signature`` is MP's signature of this request."""
    if not secret:
        raise WebhookRejected("no_secret_configured", "no Mercado Pago webhook secret configured")
    header = _present(request.headers.get("x-signature"))
    if header is None:
        raise WebhookRejected("missing_signature", "x-signature header is missing")
    ts, hashes = parse_signature_header(header)
    if ts is None and not hashes:
        raise WebhookRejected("malformed_signature", "x-signature is not ts=…,v1=…")
    if ts is None:
        raise WebhookRejected("missing_timestamp", "x-signature has no ts")
    if not (ts.isascii() and ts.isdigit()):
        raise WebhookRejected("malformed_signature", "x-signature ts is not a number")
    received = hashes.get(SIGNATURE_VERSION)
    if received is None:
        raise WebhookRejected("missing_hash", f"x-signature has no {SIGNATURE_VERSION}")
    manifest = build_manifest(
        _present(request.query.get("data.id")),
        _present(request.headers.get("x-request-id")),
        ts,
    )
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may carry anything.
    expected = compute_signature(secret, manifest).encode()
    if not hmac.compare_digest(expected, received.encode("utf-8", "replace")):
        raise WebhookRejected("signature_mismatch", "x-signature does not match")
    drift = abs(clock().timestamp() - _timestamp_seconds(ts))
    if drift > tolerance_seconds:
        raise WebhookRejected(
            "stale_timestamp",
            f"x-signature ts is {int(drift)} s from now; at most {tolerance_seconds} s allowed",
        )


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value)


def parse_notification(request: InboundWebhook) -> list[WebhookEvent]:
    """The events of an already authenticated notification (none for topics PixWave ignores)."""
    try:
        raw = decode_json(request.body)
    except (ValueError, RecursionError) as exc:  # deep nesting included
        raise WebhookRejected("invalid_body", "the body is not JSON") from exc
    if not isinstance(raw, dict):
        raise WebhookRejected("invalid_body", "the body is not a JSON object")
    kind = WEBHOOK_KINDS.get(str(raw.get("type")))
    if kind is None:
        return []
    try:
        notification = WebhookNotification.model_validate(raw)
    except ValidationError as exc:
        raise WebhookRejected("invalid_body", "the body lacks id, type or data.id") from exc
    data_id = _identifier(notification.data.id)
    signed_id = _present(request.query.get("data.id"))
    if data_id is None or signed_id is None or data_id != signed_id:
        raise WebhookRejected(
            "invalid_body", "the body's data.id is not the signed data.id of the query string"
        )
    if notification.action == "payment.created":
        # MP announces every payment we create: authenticated, acknowledged, nothing to learn.
        return []
    data = {"action": notification.action} if notification.action else {}
    return [
        WebhookEvent(
            gateway=GATEWAY,
            event_id=f"{GATEWAY}:{notification.id}",
            kind=kind,
            resource_id=data_id,
            data=data,
        )
    ]


def verify_webhook(
    request: InboundWebhook,
    *,
    secret: str | None,
    tolerance_seconds: int,
    clock: Callable[[], datetime],
) -> list[WebhookEvent]:
    """Authenticate, then parse; nothing is returned unless the signature holds.

    The events carry no status (MP's notifications do not): the engine re-reads the payment
    or the transaction intent they name.
    """
    verify_signature(request, secret=secret, tolerance_seconds=tolerance_seconds, clock=clock)
    return parse_notification(request)
