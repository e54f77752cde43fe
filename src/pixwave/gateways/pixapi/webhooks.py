"""API Pix notifications: who may send them, and what they say.

The standard's callback is ``POST {webhookUrl}/pix`` with ``{"pix": [Pix, …]}``: received Pix
that carry a txid, and — in the same item shape — refunds of them (``devolucoes``) once they
reach ``DEVOLVIDO`` or ``NAO_REALIZADO``; a PSP may batch several. The standard protects it with
mutual TLS. Deployments differ in where TLS ends, so two schemes are accepted:

* **mTLS at the ingress** (opt-in) — the proxy that verified the PSP's client certificate says
  so in a header (``x-ssl-client-verify: SUCCESS`` for nginx). No header is trusted unless the
  operator names one: the ingress must set it on every request it forwards (overwriting
  whatever the caller sent), or a caller could simply send it.
* **a URL secret** — the URL is registered with a secret query parameter
  (``…?hmac=<secret>&ignorar=``; a static shared secret, not an HMAC signature), and requests
  must also come from one of the PSP's source addresses when those are configured.

A batch is accepted or rejected whole: nothing of a body that fails to parse is processed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Final

from pixwave.gateways.base import TRUSTED_PAYMENT, InboundWebhook, WebhookEvent, WebhookKind
from pixwave.gateways.errors import WebhookRejected
from pixwave.kit.money import from_decimal_string

#: Sample payloads in PSPs' documentation carry endToEndIds shorter than the SPI's 32
#: characters; accept any alphanumeric id up to the BCB's 35 rather than drop a real payment
#: over a sample's format.
LENIENT_ID: Final = re.compile(r"[A-Za-z0-9]{1,35}")


@dataclass(frozen=True)
class WebhookAuth:
    """How a PSP's inbound webhooks are authenticated; either configured scheme suffices."""

    #: The header an ingress that terminated mTLS sets; None (the default): trust no header.
    mtls_header: str | None = None
    mtls_header_value: str = "SUCCESS"
    #: The ?hmac= query secret registered with the URL (kept out of ``repr`` and tracebacks).
    hmac_secret: str | None = field(default=None, repr=False)
    allowed_ips: frozenset[str] = frozenset()  # empty = no IP check
    #: Opt-in: a received Pix notified over verified mTLS may be credited from the
    #: notification itself (``TRUSTED_PAYMENT``), without reading the charge back.
    trust_mtls_payments: bool = False


class Notifications:
    """Reads one PSP's notifications; ``provider`` is how messages name it (``Efí``)."""

    def __init__(self, gateway: str, provider: str | None = None) -> None:
        self.gateway = gateway
        self.provider = provider or gateway

    # --- authentication -------------------------------------------------------------------
    def reject(self, reason: str, message: str) -> WebhookRejected:
        return WebhookRejected(reason, f"{self.provider} webhook rejected: {message}")

    def authenticate(self, auth: WebhookAuth, request: InboundWebhook) -> str:
        """The scheme (``mtls`` or ``hmac``) by which the request is the PSP's; else raise."""
        if auth.mtls_header is None and auth.hmac_secret is None:
            raise self.reject(
                "no_authentication_configured",
                "neither an mTLS verification header nor an hmac secret is configured",
            )
        mtls_seen: str | None = None
        if auth.mtls_header is not None:
            mtls_seen = request.headers.get(auth.mtls_header.lower())
            if mtls_seen is not None and _same(mtls_seen, auth.mtls_header_value):
                return "mtls"
        mtls_problem = (
            f"header {auth.mtls_header!r} is "
            + ("missing" if mtls_seen is None else f"{mtls_seen!r}, not {auth.mtls_header_value!r}")
            if auth.mtls_header is not None
            else None
        )
        if auth.hmac_secret is None:
            raise self.reject("mtls_not_verified", f"mTLS not verified: {mtls_problem}")
        given = request.query.get("hmac")
        if not given:
            if mtls_seen is not None:
                # The request claimed the mTLS path and failed it; say that, not "no hmac".
                raise self.reject("mtls_not_verified", f"mTLS not verified: {mtls_problem}")
            raise self.reject("hmac_missing", "no hmac query parameter and no verified mTLS")
        if not _same(given, auth.hmac_secret):
            raise self.reject("hmac_mismatch", "the hmac query parameter does not match the secret")
        if auth.allowed_ips and not ip_allowed(request.client_ip, auth.allowed_ips):
            raise self.reject(
                "ip_not_allowed",
                f"client address {request.client_ip!r} is not among {self.provider}'s webhook "
                "addresses",
            )
        return "hmac"

    # --- parsing --------------------------------------------------------------------------
    def invalid(self, message: str) -> WebhookRejected:
        return self.reject("invalid_body", message)

    def text(self, item: dict[str, Any], key: str, where: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise self.invalid(f"{where}.{key} must be a non-empty string")
        return value

    def amount(self, item: dict[str, Any], where: str) -> str:
        """``valor`` as int centavos, in text (event data is text)."""
        value = item.get("valor")
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            value = str(value)
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return str(from_decimal_string(value))
        except ValueError:
            raise self.invalid(f"{where}.valor must be a decimal amount like '10.50'") from None

    def event(
        self, kind: WebhookKind, resource_id: str, event_id: str, data: dict[str, str]
    ) -> WebhookEvent:
        return WebhookEvent(
            gateway=self.gateway, event_id=event_id, kind=kind, resource_id=resource_id, data=data
        )

    def item_events(self, item: Any, where: str) -> list[WebhookEvent]:
        """The events of one standard ``Pix`` item: its refunds, else the received Pix."""
        if not isinstance(item, dict):
            raise self.invalid(f"{where} must be an object")
        e2e = self.end_to_end_id(item, where)
        refunds = item.get("devolucoes")
        if refunds:
            if not isinstance(refunds, list):
                raise self.invalid(f"{where}.devolucoes must be a list")
            events = []
            for index, refund in enumerate(refunds):
                at = f"{where}.devolucoes[{index}]"
                if not isinstance(refund, dict):
                    raise self.invalid(f"{at} must be an object")
                refund_id = self.text(refund, "id", at)
                status = self.text(refund, "status", at)
                data = {"end_to_end_id": e2e, "status": status, "amount": self.amount(refund, at)}
                event_id = f"{self.gateway}:refund:{e2e}:{refund_id}:{status}"
                events.append(self.event(WebhookKind.REFUND, refund_id, event_id, data))
            return events
        txid = item.get("txid")
        if txid is not None:
            txid = self.text(item, "txid", where)
            data = {"end_to_end_id": e2e, "amount": self.amount(item, where)}
            return [self.event(WebhookKind.CHARGE, txid, f"{self.gateway}:pix:{e2e}", data)]
        # A received Pix without a txid (a static QR without one) belongs to no charge of ours;
        # the standard does not notify those, and there is nothing to reconcile.
        return []

    def end_to_end_id(self, item: dict[str, Any], where: str) -> str:
        e2e = self.text(item, "endToEndId", where)
        if not LENIENT_ID.fullmatch(e2e):
            raise self.invalid(f"{where}.endToEndId {e2e!r} is not alphanumeric (1..35)")
        return e2e

    def parse(self, body: bytes) -> list[WebhookEvent]:
        """Every event of a ``{"pix": [...]}`` body, or WebhookRejected("invalid_body")."""
        try:
            data: Any = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting included
            raise self.invalid("the body is not JSON") from None
        if isinstance(data, dict) and "pix" not in data:
            # PSPs probe a URL when it is registered (Efí: `{"evento": "teste_webhook"}`): an
            # authenticated object without a "pix" list is acknowledged and carries no event.
            return []
        if not isinstance(data, dict) or not isinstance(data.get("pix"), list):
            raise self.invalid('the body has no "pix" list')
        events: list[WebhookEvent] = []
        for index, item in enumerate(data["pix"]):
            events.extend(self.item_events(item, f"pix[{index}]"))
        return events

    def verify(self, auth: WebhookAuth, request: InboundWebhook) -> list[WebhookEvent]:
        """Authenticate, then parse; raises WebhookRejected and processes nothing on failure.

        With ``trust_mtls_payments``, the received Pix of a notification that came over
        verified mTLS are marked ``TRUSTED_PAYMENT``: the engine may credit them from what
        they say (checked against the charge) instead of asking the PSP first. The mark also
        needs one of the PSP's addresses (``allowed_ips``, when set): the header alone proves
        only that *something* set it, and with the mark a forged one would be worth money."""
        scheme = self.authenticate(auth, request)
        events = self.parse(request.body)
        if (
            scheme != "mtls"
            or not auth.trust_mtls_payments
            or (auth.allowed_ips and not ip_allowed(request.client_ip, auth.allowed_ips))
        ):
            return events
        return [
            replace(event, data={**event.data, TRUSTED_PAYMENT: scheme})
            if event.kind is WebhookKind.CHARGE
            else event
            for event in events
        ]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def ip_allowed(client_ip: str | None, allowed: frozenset[str]) -> bool:
    """Exact addresses or CIDR networks; an IPv4-mapped IPv6 address counts as its IPv4."""
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def split_ips(value: str) -> frozenset[str]:
    """A comma-separated setting as a set of addresses or networks."""
    return frozenset(ip.strip() for ip in value.split(",") if ip.strip())
