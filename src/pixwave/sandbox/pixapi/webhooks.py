"""The standard's notifications: ``POST {webhookUrl}/pix`` with ``{"pix": [item]}``.

The suffix is appended as plain text, as PSPs do, so a URL registered as
``https://host/hook?hmac=secret&ignorar=`` receives ``…&ignorar=/pix`` and its own path is
untouched — the known trick for servers that cannot route ``/pix``. The standard authenticates
deliveries with mTLS, not a signature, so no extra header is sent. Retries are the
dispatcher's job, on the simulator's schedule.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
import structlog

from pixwave.sandbox.callbacks import WebhookDispatcher
from pixwave.sandbox.pixapi.state import PixState, ReceivedPix, Refund

log = structlog.get_logger("pixwave.sandbox.pixapi")

PIX_SUFFIX: Final = "/pix"


def received_item(pix: ReceivedPix) -> dict[str, Any]:
    """A received Pix as the callback shows it: the ``Pix`` object, without refunds."""
    item = pix.wire(refunds=[])
    del item["devolucoes"]
    return item


def refund_item(pix: ReceivedPix, refund: Refund) -> dict[str, Any]:
    """The refunded Pix with ``devolucoes`` holding the refund that reached a final state."""
    return pix.wire(refunds=[refund])


def notify(
    dispatcher: WebhookDispatcher,
    state: PixState,
    *,
    chave: str,
    item: dict[str, Any],
    topic: str,
) -> bool:
    """Queue ``{"pix": [item]}`` for the webhook of ``chave``; False when none is registered."""
    webhook = state.webhooks.get(chave)
    if webhook is None:
        log.info("sandbox.webhook.none", chave=chave, topic=topic)
        return False
    dispatcher.submit(webhook.url + PIX_SUFFIX, orjson.dumps({"pix": [item]}), topic=topic)
    return True
