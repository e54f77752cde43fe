"""Mercado Pago's own API, at its real paths, as the official SDK and PixWave's connector call it.

Every route goes through :class:`ProviderRoute`: Bearer token first (401 in MP's shape), then
the simulated clock moves on (expiries), then the handler; an :class:`MPError` anywhere becomes
MP's error body. Bodies are read by hand (``parse_float=Decimal``), so malformed JSON is a 400
in MP's shape, never a 500, and no amount is ever a float.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from pixwave.sandbox.faults import Route, route
from pixwave.sandbox.mercadopago import errors
from pixwave.sandbox.mercadopago.errors import MPError
from pixwave.sandbox.mercadopago.wire import InvalidJSON, MPResponse, loads

if TYPE_CHECKING:
    from pixwave.sandbox.mercadopago.simulator import MercadoPagoSimulator

#: Literal paths come before ``{id}`` ones, so ``/search`` is never read as an id.
ROUTES: Final[tuple[Route, ...]] = (
    route("POST", "/v1/payments", "payments.create"),
    route("GET", "/v1/payments/search", "payments.search"),
    route("GET", "/v1/payments/{id}", "payments.get"),
    route("PUT", "/v1/payments/{id}", "payments.update"),
    route("POST", "/v1/payments/{id}/refunds", "refunds.create"),
    route("GET", "/v1/payments/{id}/refunds", "refunds.list"),
    route("GET", "/v1/payments/{id}/refunds/{refund_id}", "refunds.get"),
    route("POST", "/v1/transaction-intents/process", "payouts.create"),
    route("GET", "/v1/transaction-intents/search", "payouts.search"),
    route("GET", "/v1/transaction-intents/{id}", "payouts.get"),
)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def idempotency_key(request: Request) -> str:
    """``X-Idempotency-Key`` (any case): mandatory on every POST that creates something."""
    key = request.headers.get("x-idempotency-key", "").strip()
    if not key:
        raise errors.missing_idempotency_key()
    return key


async def read_object(request: Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body (or ``null``) is ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = loads(raw)
    except InvalidJSON as exc:
        raise errors.invalid_json(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise errors.params_error("the body must be a JSON object")
    return data


def build_provider_router(simulator: MercadoPagoSimulator) -> APIRouter:  # noqa: C901 - one-line route handlers, each a nested def mccabe counts
    """The routes of ``ROUTES``, bound to ``simulator``."""

    class ProviderRoute(APIRoute):
        """Authenticate, let time act, run the handler, render MP's errors."""

        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    simulator.authorize(request.headers.get("authorization"))
                    simulator.ensure_background()
                    await simulator.tick()
                    response = await handler(request)
                except MPError as exc:
                    response = exc.response()
                except RequestValidationError:
                    response = errors.params_error("invalid request parameters").response()
                # MP tags every answer with a request id, which support asks for.
                response.headers.setdefault("x-request-id", str(uuid.uuid4()))
                return response

            return guarded

    router = APIRouter(route_class=ProviderRoute, tags=["mercadopago"])
    service = simulator.service

    async def created(
        request: Request, scope: str, make: Callable[[dict[str, Any]], Any]
    ) -> Response:
        """201 with the created resource — or, for a repeated X-Idempotency-Key, the first
        answer given for it."""
        key = idempotency_key(request)
        body = await read_object(request)
        payload = service.answer(scope, key, lambda: make(body).to_wire())
        return Response(payload, status_code=201, media_type="application/json")

    def require_payouts() -> None:
        if not simulator.config.payouts_enabled:
            raise errors.payouts_forbidden()

    # --- payments -------------------------------------------------------------------------
    @router.post("/v1/payments", status_code=201)
    async def create_payment(request: Request) -> Response:
        return await created(request, "payments.create", service.create_payment)

    @router.get("/v1/payments/search")
    async def search_payments(request: Request) -> Response:
        return MPResponse(service.search_payments(request.query_params))

    @router.get("/v1/payments/{payment_id}")
    async def get_payment(payment_id: str) -> Response:
        return MPResponse(service.get_payment(payment_id).to_wire())

    @router.put("/v1/payments/{payment_id}")
    async def update_payment(payment_id: str, request: Request) -> Response:
        body = await read_object(request)
        return MPResponse(service.update_payment(payment_id, body).to_wire())

    # --- refunds --------------------------------------------------------------------------
    @router.post("/v1/payments/{payment_id}/refunds", status_code=201)
    async def create_refund(payment_id: str, request: Request) -> Response:
        return await created(
            request,
            f"refunds.create:{payment_id}",
            lambda body: service.create_refund(payment_id, body),
        )

    @router.get("/v1/payments/{payment_id}/refunds")
    async def list_refunds(payment_id: str) -> Response:
        payment = service.get_payment(payment_id)
        return MPResponse([refund.to_wire() for refund in payment.refunds])

    @router.get("/v1/payments/{payment_id}/refunds/{refund_id}")
    async def get_refund(payment_id: str, refund_id: str) -> Response:
        return MPResponse(service.get_refund(payment_id, refund_id).to_wire())

    # --- pay-outs (Money Out) -------------------------------------------------------------
    @router.post("/v1/transaction-intents/process", status_code=201)
    async def create_payout(request: Request) -> Response:
        require_payouts()
        return await created(request, "payouts.create", service.create_payout)

    @router.get("/v1/transaction-intents/search")
    async def search_payouts(request: Request) -> Response:
        require_payouts()
        return MPResponse(service.search_payouts(request.query_params))

    @router.get("/v1/transaction-intents/{intent_id}")
    async def get_payout(intent_id: str) -> Response:
        require_payouts()
        return MPResponse(service.get_payout(intent_id).to_wire())

    return router
