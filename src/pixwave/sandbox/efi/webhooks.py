"""Efí's notifications: ``POST {webhookUrl}/pix`` with ``{"pix": [item]}``.

The suffix is appended as plain text, exactly as Efí does, so a URL registered as
``https://host/hook?hmac=secret&ignorar=`` receives ``…&ignorar=/pix`` and its own path is
untouched — the documented trick for servers that cannot route ``/pix``. Efí authenticates
deliveries with mTLS, not a signature, so no extra header is sent. Retries (5, 10, 20 … minutes,
× ``time_scale``) are the dispatcher's job.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from pixwave.kit.money import to_decimal_string
from pixwave.sandbox.callbacks import WebhookDispatcher
from pixwave.sandbox.efi.state import EfiState, ReceivedPix, Refund, Send, rfc3339

log = structlog.get_logger("pixwave.sandbox.efi")

PIX_SUFFIX = "/pix"


def received_item(pix: ReceivedPix) -> dict[str, Any]:
    """A received Pix as the webhook shows it: the BCB item plus Efí's ``gnExtras.pagador``."""
    item = pix.wire(refunds=[])
    del item["devolucoes"]
    item["gnExtras"] = {"pagador": pix.payer.wire()}
    return item


def refund_item(pix: ReceivedPix, refund: Refund) -> dict[str, Any]:
    """The refunded Pix with ``devolucoes`` holding the refund that reached a final state."""
    return pix.wire(refunds=[refund])


def sent_item(send: Send) -> dict[str, Any]:
    """A sent Pix in its final state (Efí extension, ``tipo: SOLICITACAO``).

    ``chave`` is the receiver's key here: the documentation's sample does not say whose key it
    is, and the receiver's is the one a reconciliation needs (the sender's is the webhook's own).
    A rejected send has ``horario: null``, as Efí's sample shows.
    """
    gn_extras: dict[str, Any] = {"idEnvio": send.id_envio}
    if send.error is not None:
        gn_extras["erro"] = send.error.wire()
    return {
        "endToEndId": send.e2e_id,
        "chave": send.favorecido_chave,
        "tipo": "SOLICITACAO",
        "status": send.status,
        "valor": to_decimal_string(send.amount),
        "horario": rfc3339(send.settled_at) if send.settled_at is not None else None,
        "gnExtras": gn_extras,
    }


def notify(
    dispatcher: WebhookDispatcher,
    state: EfiState,
    *,
    chave: str,
    item: dict[str, Any],
    topic: str,
) -> bool:
    """Queue ``{"pix": [item]}`` for the webhook of ``chave``; False when none is registered."""
    webhook = state.webhooks.get(chave)
    if webhook is None:
        log.info("sandbox.efi.webhook.none", chave=chave, topic=topic)
        return False
    dispatcher.submit(webhook.url + PIX_SUFFIX, orjson.dumps({"pix": [item]}), topic=topic)
    return True
