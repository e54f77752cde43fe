"""Mercado Pago's notifications: ``POST {url}?data.id=…&type=…`` signed with ``x-signature``.

The body names the resource and carries no status (reference §1.6). The signature is
``ts=<unix seconds>,v1=<hex HMAC-SHA256(secret, manifest)>`` over the manifest
``id:{data.id};request-id:{x-request-id};ts:{ts};``. It is computed again for every attempt,
with a fresh ``x-request-id``, as MP does; the body, and with it the notification ``id``, stays
the same across retries of one event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

from pixwave.gateways.mercadopago.webhooks import build_manifest, compute_signature
from pixwave.sandbox.callbacks import Delivery, WebhookDispatcher
from pixwave.sandbox.core import Clock
from pixwave.sandbox.mercadopago.config import MercadoPagoSimConfig
from pixwave.sandbox.mercadopago.state import Payment, Payout
from pixwave.sandbox.mercadopago.wire import dumps, mp_datetime

USER_AGENT = "MercadoPago WebHook v1.0"


def signed_headers(secret: str, data_id: str) -> dict[str, str]:
    """One attempt's headers: a new request id and the current time in seconds."""
    request_id = str(uuid.uuid4())
    ts = str(int(time.time()))
    # The very manifest and HMAC the connector checks (and the official SDK accepts).
    signature = compute_signature(secret, build_manifest(data_id, request_id, ts))
    return {"x-request-id": request_id, "x-signature": f"ts={ts},v1={signature}"}


def with_query(url: str, data_id: str, topic: str) -> str:
    """Append ``data.id`` and ``type`` to the URL, keeping a query it already has."""
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode({"data.id": data_id, "type": topic})


class Notifier:
    """Builds and submits the notifications of payments and transaction intents."""

    def __init__(
        self,
        dispatcher: WebhookDispatcher,
        *,
        config: Callable[[], MercadoPagoSimConfig],
        clock: Clock,
        ids: Iterator[int],
    ) -> None:
        self.dispatcher = dispatcher
        self.config = config
        self.clock = clock
        self.ids = ids

    def payment(self, payment: Payment, action: str) -> Delivery | None:
        """``payment.created`` or ``payment.updated``; None when no URL is known."""
        url = payment.notification_url or self.config().webhook_url
        return self._submit(url, "payment", action, str(payment.id))

    def transaction_intent(self, payout: Payout) -> Delivery | None:
        """A pay-out reached a final state. Topic, action and data.id for pay-outs are not
        published by MP (UNCONFIRMED): the simulator reuses the payment notification's shape
        with ``type=transaction_intent``, ``action=transaction_intent.updated`` and the
        intent's id."""
        url = payout.notification_url or self.config().webhook_url
        return self._submit(url, "transaction_intent", "transaction_intent.updated", payout.id)

    def _submit(self, url: str | None, topic: str, action: str, data_id: str) -> Delivery | None:
        if not url:
            return None
        config = self.config()
        body = {
            "id": next(self.ids),
            "live_mode": False,
            "type": topic,
            "date_created": mp_datetime(self.clock.now()),
            "user_id": config.collector_id,
            "api_version": "v1",
            "action": action,
            "data": {"id": data_id},
        }

        def headers() -> dict[str, str]:
            # Read the secret per attempt: a rotated secret signs the retries, as at MP.
            return {
                **signed_headers(self.config().webhook_secret, data_id),
                "user-agent": f"{USER_AGENT} {topic}",
            }

        return self.dispatcher.submit(
            with_query(url, data_id, topic), dumps(body), topic=topic, headers=headers
        )
