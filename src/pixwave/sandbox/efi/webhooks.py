"""Efí's notifications: the standard's (``sandbox/pixapi/webhooks.py``) plus Efí's extensions.

Efí posts ``{webhookUrl}/pix`` like the standard, adds ``gnExtras.pagador`` to a received Pix
and notifies the Pix it sends (``gnExtras.idEnvio``). Retries (5, 10, 20 … minutes,
× ``time_scale``) are the dispatcher's job.
"""

from __future__ import annotations

from typing import Any

from pixwave.kit.money import to_decimal_string
from pixwave.sandbox.efi.state import ReceivedPix, Send, rfc3339
from pixwave.sandbox.pixapi.webhooks import PIX_SUFFIX, notify, refund_item
from pixwave.sandbox.pixapi.webhooks import received_item as standard_item

__all__ = ["PIX_SUFFIX", "notify", "received_item", "refund_item", "sent_item"]


def received_item(pix: ReceivedPix) -> dict[str, Any]:
    """A received Pix as the webhook shows it: the BCB item plus Efí's ``gnExtras.pagador``."""
    item = standard_item(pix)
    item["gnExtras"] = {"pagador": pix.payer.wire()}
    return item


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
