"""Efí's inbound notifications: who may send them, and what they say.

Efí POSTs ``{webhookUrl}/pix`` with ``{"pix": [item, …]}``; one body may batch received Pix,
refunds of them (``devolucoes``) and our own sends (``gnExtras.idEnvio``). Efí authenticates
itself with mutual TLS. Deployments differ in where TLS ends, so two schemes are accepted:

* **mTLS at the ingress** (opt-in) — the proxy that verified Efí's client certificate says so
  in a header (``x-ssl-client-verify: SUCCESS`` for nginx). No header is trusted unless the
  operator names one: the ingress must set it on every request it forwards (overwriting
  whatever the caller sent), or a caller could simply send it.
* **skip-mTLS** — the URL is registered with a secret query parameter
  (``…?hmac=<secret>&ignorar=``; a static shared secret, not an HMAC signature) and requests
  must also come from Efí's published source address.

A batch is accepted or rejected whole: nothing of a body that fails to parse is processed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from pixwave.gateways.base import InboundWebhook, WebhookEvent, WebhookKind
from pixwave.gateways.efi.mapping import GATEWAY
from pixwave.gateways.errors import WebhookRejected
from pixwave.kit.money import from_decimal_string

#: Efí's documented webhook source address.
EFI_WEBHOOK_IP: Final = "34.193.116.226"

#: Efí's own samples carry endToEndIds shorter than the SPI's 32 characters; accept any
#: alphanumeric id up to the BCB's 35 rather than drop a real payment over a sample's format.
_LENIENT_ID = re.compile(r"[A-Za-z0-9]{1,35}")


@dataclass(frozen=True)
class EfiWebhookAuth:
    """How inbound Efí webhooks are authenticated; either configured scheme suffices."""

    #: The header an ingress that terminated mTLS sets; None (the default): trust no header.
    mtls_header: str | None = None
    mtls_header_value: str = "SUCCESS"
    hmac_secret: str | None = None  # the ?hmac= query secret registered with the URL
    allowed_ips: frozenset[str] = frozenset({EFI_WEBHOOK_IP})  # empty = no IP check


def _reject(reason: str, message: str) -> WebhookRejected:
    return WebhookRejected(reason, f"Efí webhook rejected: {message}")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _ip_allowed(client_ip: str | None, allowed: frozenset[str]) -> bool:
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


def authenticate(auth: EfiWebhookAuth, request: InboundWebhook) -> None:
    """Return when the request is Efí's by one configured scheme; raise WebhookRejected."""
    if auth.mtls_header is None and auth.hmac_secret is None:
        raise _reject(
            "no_authentication_configured",
            "neither an mTLS verification header nor an hmac secret is configured",
        )
    mtls_seen: str | None = None
    if auth.mtls_header is not None:
        mtls_seen = request.headers.get(auth.mtls_header.lower())
        if mtls_seen is not None and _same(mtls_seen, auth.mtls_header_value):
            return
    mtls_problem = (
        f"header {auth.mtls_header!r} is "
        + ("missing" if mtls_seen is None else f"{mtls_seen!r}, not {auth.mtls_header_value!r}")
        if auth.mtls_header is not None
        else None
    )
    if auth.hmac_secret is None:
        raise _reject("mtls_not_verified", f"mTLS not verified: {mtls_problem}")
    given = request.query.get("hmac")
    if not given:
        if mtls_seen is not None:
            # The request claimed the mTLS path and failed it; say that, not "no hmac".
            raise _reject("mtls_not_verified", f"mTLS not verified: {mtls_problem}")
        raise _reject("hmac_missing", "no hmac query parameter and no verified mTLS")
    if not _same(given, auth.hmac_secret):
        raise _reject("hmac_mismatch", "the hmac query parameter does not match the secret")
    if auth.allowed_ips and not _ip_allowed(request.client_ip, auth.allowed_ips):
        raise _reject(
            "ip_not_allowed",
            f"client address {request.client_ip!r} is not among Efí's webhook addresses",
        )


def _invalid(message: str) -> WebhookRejected:
    return _reject("invalid_body", message)


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"{where}.{key} must be a non-empty string")
    return value


def _amount(item: dict[str, Any], where: str) -> str:
    """``valor`` as int centavos, in text (event data is text)."""
    value = item.get("valor")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        value = str(value)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(from_decimal_string(value))
    except ValueError:
        raise _invalid(f"{where}.valor must be a decimal amount like '10.50'") from None


def _event(
    kind: WebhookKind, resource_id: str, event_id: str, data: dict[str, str]
) -> WebhookEvent:
    return WebhookEvent(
        gateway=GATEWAY, event_id=event_id, kind=kind, resource_id=resource_id, data=data
    )


def _item_events(item: Any, where: str) -> list[WebhookEvent]:
    if not isinstance(item, dict):
        raise _invalid(f"{where} must be an object")
    e2e = _text(item, "endToEndId", where)
    if not _LENIENT_ID.fullmatch(e2e):
        raise _invalid(f"{where}.endToEndId {e2e!r} is not alphanumeric (1..35)")
    extras = item.get("gnExtras")
    if extras is not None and not isinstance(extras, dict):
        raise _invalid(f"{where}.gnExtras must be an object")
    if extras and extras.get("idEnvio") is not None:
        # A Pix we sent (Efí extension). Refunds *received* for it are not refunds we issued,
        # so the item yields only the send's event; the engine re-reads the send.
        id_envio = _text(extras, "idEnvio", f"{where}.gnExtras")
        status = _text(item, "status", where)
        data = {"status": status, "end_to_end_id": e2e}
        error = extras.get("erro")
        if isinstance(error, dict) and isinstance(error.get("codigo"), str):
            data["error_code"] = error["codigo"]
        return [_event(WebhookKind.SEND, id_envio, f"efi:send:{id_envio}:{status}", data)]
    refunds = item.get("devolucoes")
    if refunds:
        if not isinstance(refunds, list):
            raise _invalid(f"{where}.devolucoes must be a list")
        events = []
        for index, refund in enumerate(refunds):
            at = f"{where}.devolucoes[{index}]"
            if not isinstance(refund, dict):
                raise _invalid(f"{at} must be an object")
            refund_id = _text(refund, "id", at)
            status = _text(refund, "status", at)
            data = {"end_to_end_id": e2e, "status": status, "amount": _amount(refund, at)}
            event_id = f"efi:refund:{e2e}:{refund_id}:{status}"
            events.append(_event(WebhookKind.REFUND, refund_id, event_id, data))
        return events
    txid = item.get("txid")
    if txid is not None:
        txid = _text(item, "txid", where)
        data = {"end_to_end_id": e2e, "amount": _amount(item, where)}
        return [_event(WebhookKind.CHARGE, txid, f"efi:pix:{e2e}", data)]
    # A received Pix without a txid (a static QR without one) belongs to no charge of ours;
    # the BCB does not notify those, and there is nothing to reconcile.
    return []


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """Every event of a ``{"pix": [...]}`` body, or WebhookRejected("invalid_body")."""
    try:
        data: Any = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise _invalid("the body is not JSON") from None
    if isinstance(data, dict) and "pix" not in data:
        # Efí probes a URL when it is registered (reportedly `{"evento": "teste_webhook"}`):
        # an authenticated object without a "pix" list is acknowledged and carries no event.
        return []
    if not isinstance(data, dict) or not isinstance(data.get("pix"), list):
        raise _invalid('the body has no "pix" list')
    events: list[WebhookEvent] = []
    for index, item in enumerate(data["pix"]):
        events.extend(_item_events(item, f"pix[{index}]"))
    return events


def verify_webhook(auth: EfiWebhookAuth, request: InboundWebhook) -> list[WebhookEvent]:
    """Authenticate, then parse; raises WebhookRejected and processes nothing on failure."""
    authenticate(auth, request)
    return parse_webhook(request.body)
