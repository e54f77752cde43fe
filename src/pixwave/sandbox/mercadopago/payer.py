"""Sandbox-only routes (under ``/_sandbox``): the other side of each Pix.

```
POST /_sandbox/pay                      {"brcode", "payer"?}: what the payer's bank app does
POST /_sandbox/payments/{id}/expire     expire a pending payment now
GET  /_sandbox/payments/{id}/ticket     the page ticket_url points at (QR + copy-and-paste)
POST /_sandbox/sends/{id}/settle        a pending pay-out reaches the payee
POST /_sandbox/sends/{id}/reject        {"reason"?}: the payee's bank refuses it
```
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, Response

from pixwave.sandbox.core import PUBLIC_ROUTE
from pixwave.sandbox.mercadopago.api import Handler
from pixwave.sandbox.mercadopago.errors import SandboxError
from pixwave.sandbox.mercadopago.wire import InvalidJSON, MPResponse, loads

if TYPE_CHECKING:
    from pixwave.sandbox.mercadopago.simulator import MercadoPagoSimulator

_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


async def _read_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = loads(raw)
    except InvalidJSON as exc:
        raise SandboxError(422, "invalid_json", str(exc)) from None
    if not isinstance(data, dict):
        raise SandboxError(422, "invalid_body", "the body must be a JSON object")
    return data


def build_sandbox_router(simulator: MercadoPagoSimulator) -> APIRouter:  # noqa: C901 - short route handlers, each a nested def mccabe counts
    class SandboxRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    simulator.ensure_background()
                    await simulator.tick()
                    return await handler(request)
                except SandboxError as exc:
                    return exc.response()
                except RequestValidationError as exc:
                    return SandboxError(422, "invalid", str(exc.errors())).response()

            return guarded

    router = APIRouter(route_class=SandboxRoute)
    service = simulator.service

    @router.post("/pay")
    async def pay(request: Request) -> Response:
        """Pay a charge by its BR Code, as the payer's bank would after a scan."""
        body = await _read_object(request)
        brcode, payer = body.get("brcode"), body.get("payer")
        if not isinstance(brcode, str):
            raise SandboxError(422, "invalid_body", "brcode (a string) is required")
        if payer is not None and not isinstance(payer, dict):
            raise SandboxError(422, "invalid_body", "payer must be an object")
        payment = service.pay(brcode, payer)
        return MPResponse(
            {
                "gateway": simulator.name,
                "charge_id": str(payment.id),
                "end_to_end_id": payment.end_to_end_id,
                "status": payment.status,
                "amount": payment.amount,
            }
        )

    @router.post("/payments/{payment_id}/expire")
    async def expire(payment_id: str) -> Response:
        """Expire a pending payment without moving the clock."""
        return MPResponse(service.expire_now(payment_id).to_wire())

    @router.get("/payments/{payment_id}/ticket", openapi_extra=PUBLIC_ROUTE)
    async def ticket(payment_id: str) -> Response:
        """A minimal version of MP's ticket page: the QR image and the copy-and-paste code."""
        payment = service.store.payments.get(int(payment_id)) if payment_id.isdigit() else None
        if payment is None:
            raise SandboxError(404, "not_found", f"no payment {payment_id}")
        code = html.escape(payment.qr_code)
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Pix {payment.id}</title></head><body>"
            f"<h1>Pix {html.escape(payment.status)}</h1>"
            f"<img alt='QR code' src='data:image/png;base64,{payment.qr_code_base64}'>"
            f"<p><code>{code}</code></p></body></html>"
        )
        return HTMLResponse(page)

    @router.post("/sends/{intent_id}/settle")
    async def settle(intent_id: str) -> Response:
        """The pay-out reaches the payee: approved, with an endToEndId."""
        return MPResponse(service.finish_payout(intent_id, approve=True, reason=None).to_wire())

    @router.post("/sends/{intent_id}/reject")
    async def reject(intent_id: str, request: Request) -> Response:
        """The pay-out is refused; ``reason`` becomes its status_detail (as a snake_case word,
        so an SPI code like "AC03" reads "ac03")."""
        body = await _read_object(request)
        reason = body.get("reason")
        if isinstance(reason, str):
            reason = re.sub(r"[^a-z0-9]+", "_", reason.strip().lower()).strip("_")[:64] or None
        if reason is not None and not (isinstance(reason, str) and _REASON.fullmatch(reason)):
            raise SandboxError(422, "invalid_reason", "reason must be a word (an SPI code …)")
        payout = service.finish_payout(intent_id, approve=False, reason=reason)
        return MPResponse(payout.to_wire())

    return router
