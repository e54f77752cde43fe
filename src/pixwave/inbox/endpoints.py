"""Inbound webhooks from the gateways (no API token: each is authenticated its own way).

The routes read the raw body, because each provider's signature check and parser
(`gateways/<provider>/webhooks.py`) work on the bytes as sent; the document shows the shapes
those parsers read through `openapi_extra` (`gateways/<provider>/openapi.py`). Any failure to
authenticate *or* to parse is 401 `webhook_rejected`, with a `reason` (`signature_mismatch`,
`hmac_missing`, `invalid_body`, …): nothing of a rejected notification is stored.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from pixwave.exceptions import ServiceUnavailable
from pixwave.gateways.base import InboundWebhook
from pixwave.gateways.efi import openapi as efi_doc
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.mercadopago import openapi as mercadopago_doc
from pixwave.inbox import service
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.resources import Resources

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=PixWaveRoute)

#: 401 for a notification that fails its check, 404 for a gateway this deployment lacks, 503
#: when it cannot be stored (the provider retries).
_RECEIVE = problems(WebhookRejected, service.GatewayNotConfigured, ServiceUnavailable)


async def _inbound(request: Request) -> InboundWebhook:
    return InboundWebhook(
        body=await request.body(),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        client_ip=request.client.host if request.client else None,
    )


async def _receive(request: Request, gateway: str) -> dict[str, int]:
    resources: Resources = request.app.state.resources
    return {"received": await service.receive(resources, gateway, await _inbound(request))}


@router.post("/mercadopago", responses=_RECEIVE, openapi_extra=mercadopago_doc.NOTIFICATION)
async def mercadopago(request: Request) -> dict[str, int]:
    """Mercado Pago notifications, verified by their `x-signature`.

    Answers how many events were new. A missing, stale or wrong signature, or a body that is
    not a notification, is 401 `webhook_rejected` with its `reason`; MP retries.
    """
    return await _receive(request, "mercadopago")


@router.post("/efi/pix", responses=_RECEIVE, openapi_extra=efi_doc.NOTIFICATION)
async def efi_pix(request: Request) -> dict[str, int]:
    """Efí notifications (registered as `…/webhooks/efi`; Efí appends `/pix`).

    Answers how many events were new. No verified mTLS and no valid `hmac`, a source address
    not Efí's, or a body that does not parse, is 401 `webhook_rejected` with its `reason`.
    """
    return await _receive(request, "efi")


@router.post("/efi", responses=_RECEIVE, openapi_extra=efi_doc.NOTIFICATION)
async def efi(request: Request) -> dict[str, int]:
    """Efí notifications registered as `…/webhooks/efi?hmac=<secret>&ignorar=`.

    The same checks and answers as `/webhooks/efi/pix`.
    """
    return await _receive(request, "efi")
