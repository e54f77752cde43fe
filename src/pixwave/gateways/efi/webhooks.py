"""Efí's inbound notifications: the standard's (``gateways/pixapi/webhooks.py``) plus its sends.

Efí POSTs ``{webhookUrl}/pix`` with ``{"pix": [item, …]}``; one body may batch received Pix,
refunds of them (``devolucoes``) and — Efí's extension — our own sends
(``gnExtras.idEnvio``). Efí authenticates itself with mutual TLS; the two schemes PixWave
accepts (mTLS verified at the ingress, or the URL's ``?hmac=`` secret from Efí's published
address) are the standard family's, with Efí's address as the default allow-list.

A batch is accepted or rejected whole: nothing of a body that fails to parse is processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from pixwave.gateways.base import InboundWebhook, WebhookEvent, WebhookKind
from pixwave.gateways.efi.mapping import GATEWAY
from pixwave.gateways.pixapi.webhooks import Notifications, WebhookAuth

#: Efí's documented webhook source address.
EFI_WEBHOOK_IP: Final = "34.193.116.226"


@dataclass(frozen=True)
class EfiWebhookAuth(WebhookAuth):
    """How inbound Efí webhooks are authenticated; either configured scheme suffices.

    The standard family's :class:`WebhookAuth`, allowing Efí's published address by default.
    """

    allowed_ips: frozenset[str] = field(default=frozenset({EFI_WEBHOOK_IP}))


class EfiNotifications(Notifications):
    """The standard's items, plus a Pix we sent (``gnExtras.idEnvio``) as a send's event."""

    def item_events(self, item: Any, where: str) -> list[WebhookEvent]:
        if not isinstance(item, dict):
            raise self.invalid(f"{where} must be an object")
        e2e = self.end_to_end_id(item, where)
        extras = item.get("gnExtras")
        if extras is not None and not isinstance(extras, dict):
            raise self.invalid(f"{where}.gnExtras must be an object")
        if not (extras and extras.get("idEnvio") is not None):
            return super().item_events(item, where)
        # A Pix we sent. Refunds *received* for it are not refunds we issued, so the item
        # yields only the send's event; the engine re-reads the send.
        id_envio = self.text(extras, "idEnvio", f"{where}.gnExtras")
        status = self.text(item, "status", where)
        data = {"status": status, "end_to_end_id": e2e}
        error = extras.get("erro")
        if isinstance(error, dict) and isinstance(error.get("codigo"), str):
            data["error_code"] = error["codigo"]
        return [self.event(WebhookKind.SEND, id_envio, f"{GATEWAY}:send:{id_envio}:{status}", data)]


NOTIFICATIONS: Final = EfiNotifications(GATEWAY, "Efí")


def authenticate(auth: WebhookAuth, request: InboundWebhook) -> str:
    """The scheme by which the request is Efí's; raise WebhookRejected."""
    return NOTIFICATIONS.authenticate(auth, request)


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """Every event of a ``{"pix": [...]}`` body, or WebhookRejected("invalid_body")."""
    return NOTIFICATIONS.parse(body)


def verify_webhook(auth: WebhookAuth, request: InboundWebhook) -> list[WebhookEvent]:
    """Authenticate, then parse; raises WebhookRejected and processes nothing on failure."""
    return NOTIFICATIONS.verify(auth, request)
