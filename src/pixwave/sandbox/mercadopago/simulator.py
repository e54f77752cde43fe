"""The Mercado Pago simulator: Payments API for Pix, refunds, Money Out, signed webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import Sequence
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, FastAPI

from pixwave.sandbox.core import Simulator
from pixwave.sandbox.faults import Route
from pixwave.sandbox.mercadopago import errors
from pixwave.sandbox.mercadopago.api import ROUTES, build_provider_router
from pixwave.sandbox.mercadopago.config import MercadoPagoSimConfig
from pixwave.sandbox.mercadopago.payer import build_sandbox_router
from pixwave.sandbox.mercadopago.service import MercadoPagoService
from pixwave.sandbox.mercadopago.state import (
    PAYOUT_APPROVED,
    PAYOUT_PENDING,
    PENDING,
    Store,
)
from pixwave.sandbox.mercadopago.webhooks import Notifier

log = structlog.get_logger("pixwave.sandbox.mercadopago")

#: Injected faults by status: MP's ``error`` word and a message in its voice.
_FAULT_MESSAGES: dict[int, str] = {
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


#: Seconds between notification attempts: every 15 minutes, spacing out after the third try
#: (Mercado Pago's documentation).
WEBHOOK_SCHEDULE: tuple[float, ...] = tuple(m * 60 for m in (15, 15, 15, 30, 60, 120, 240))


class MercadoPagoSimulator(Simulator[MercadoPagoSimConfig]):
    """A stateful stand-in for ``https://api.mercadopago.com`` (see the package docstring)."""

    name: ClassVar[str] = "mercadopago"
    routes: ClassVar[Sequence[Route]] = ROUTES
    webhook_schedule: ClassVar[Sequence[float]] = WEBHOOK_SCHEDULE
    webhook_timeout: ClassVar[float] = 22.0
    #: Seconds between background ticks, which expire payments nobody asks about.
    tick_interval: ClassVar[float] = 1.0

    def __init__(self, config: MercadoPagoSimConfig | None = None) -> None:
        super().__init__(config or MercadoPagoSimConfig())
        self.store = Store()
        self.notifier = Notifier(
            self.webhooks,
            config=lambda: self.config,
            clock=self.clock,
            ids=self.store.notification_ids,
        )
        self.service = MercadoPagoService(
            store=self.store,
            clock=self.clock,
            config=lambda: self.config,
            notifier=self.notifier,
        )
        self._ticker: asyncio.Task[None] | None = None

    # --- Simulator hooks ------------------------------------------------------------------
    def provider_router(self) -> APIRouter:
        return build_provider_router(self)

    def sandbox_router(self) -> APIRouter:
        return build_sandbox_router(self)

    def error_body(self, status: int, reason: str) -> dict[str, Any]:
        """An injected fault (``reason`` is the injector's action) in MP's error shape."""
        message = _FAULT_MESSAGES.get(status, "Service error")
        return errors.error_body(status, message, code=status, description=f"{message} ({reason})")

    def clear_state(self) -> None:
        self.service.clear()

    def counts(self) -> dict[str, int]:
        payouts = self.store.payouts.values()
        return {
            "payments": len(self.store.payments),
            "payments_pending": sum(p.status == "pending" for p in self.store.payments.values()),
            "refunds": len(self.store.refunds),
            "payouts": len(self.store.payouts),
            "payouts_pending": sum(p.status == "pending" for p in payouts),
            "idempotency_keys": len(self.store.answers),
        }

    def records(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for payment in self.store.payments.values():
            found.append(
                {
                    "kind": "charge",
                    "id": str(payment.id),
                    "reference": payment.external_reference,
                    "parent": None,
                    "amount": payment.amount,
                    "status": f"{payment.status}/{payment.status_detail}",
                    "done": payment.status != PENDING[0],
                    "moved": payment.date_approved is not None,
                }
            )
            for refund in payment.refunds:  # MP refunds are approved when created
                found.append(
                    {
                        "kind": "refund",
                        "id": str(refund.id),
                        "reference": None,  # MP keeps only the idempotency key's answer
                        "parent": payment.external_reference,
                        "amount": refund.amount,
                        "status": "approved",
                        "done": True,
                        "moved": True,
                    }
                )
        for payout in self.store.payouts.values():
            found.append(
                {
                    "kind": "send",
                    "id": payout.id,
                    "reference": payout.external_reference,
                    "parent": None,
                    "amount": payout.amount,
                    "status": payout.status,
                    "done": payout.status != PAYOUT_PENDING,
                    "moved": payout.status == PAYOUT_APPROVED,
                }
            )
        return found

    async def tick(self) -> None:
        self.service.tick()

    # --- access and background time -------------------------------------------------------
    def authorize(self, header: str | None) -> None:
        """``Authorization: Bearer <token>``; with ``access_token`` set, only that token."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.missing_token()
        expected = self.config.access_token
        # In constant time: how long a refusal takes says nothing of how much of it matched.
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            raise errors.invalid_token()

    def ensure_background(self) -> None:
        """Start the periodic tick on first use, in the loop that serves requests."""
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.service.tick()
            except Exception:  # keep ticking; the failure is logged for whoever debugs it
                log.exception("sandbox.mercadopago.tick_failed")

    async def stop_background(self) -> None:
        """Stop the periodic tick and pending settlements (server shutdown)."""
        self.service.clear_timers()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            if ticker.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    def app(self) -> FastAPI:
        app = super().app()
        app.router.on_shutdown.append(self.stop_background)
        return app

    async def aclose(self) -> None:
        await self.stop_background()
        await super().aclose()
