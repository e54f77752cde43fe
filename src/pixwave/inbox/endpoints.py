"""Inbound webhooks from the gateways (no API token: each is authenticated its own way)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from pixwave.gateways.base import InboundWebhook
from pixwave.inbox import service
from pixwave.resources import Resources

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


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


@router.post("/mercadopago")
async def mercadopago(request: Request) -> dict[str, int]:
    """Mercado Pago notifications, verified by their `x-signature`."""
    return await _receive(request, "mercadopago")


@router.post("/efi/pix")
async def efi_pix(request: Request) -> dict[str, int]:
    """Efí notifications (registered as `…/webhooks/efi`; Efí appends `/pix`)."""
    return await _receive(request, "efi")


@router.post("/efi")
async def efi(request: Request) -> dict[str, int]:
    """Efí notifications registered as `…/webhooks/efi?hmac=<secret>&ignorar=`."""
    return await _receive(request, "efi")
