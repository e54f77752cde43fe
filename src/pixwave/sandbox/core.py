"""What every simulator shares: a clock, fault injection, outbound webhooks and admin routes.

A provider simulator subclasses :class:`Simulator`, declares its routes (the provider's real
paths, each named by an operation for fault injection) and keeps its state in memory. The
admin routes live under ``/_sandbox`` — a prefix no real provider uses — so an official SDK
pointed at the simulator sees only the provider's API:

```
GET    /_sandbox                      name, configuration, counts
GET    /_sandbox/config               PATCH to change (webhook URL, time scale, …)
GET    /_sandbox/faults               PUT a whole FaultConfig, DELETE to clear
PUT    /_sandbox/faults/{operation}   one rule (DELETE removes it); operation "*" = all
POST   /_sandbox/clock/advance        {"seconds": N}: move simulated time (expiry)
GET    /_sandbox/webhooks             outbound deliveries and their attempts
GET    /_sandbox/records              every money movement: charges, sends, refunds
POST   /_sandbox/reset                forget every resource, fault and delivery
```

Whoever reaches these routes can invent payments, so a simulator mounted inside the API gets a
``control_guard`` (an admin token, see ``sandbox/embedded.py``) that every ``/_sandbox`` route
passes through, except the few marked public (a payer's ticket page) with ``PUBLIC_ROUTE``.
A standalone simulator is a test tool: its routes are open, and it listens on loopback.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Generic, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixwave.exceptions import PixWaveError
from pixwave.sandbox.callbacks import WebhookDispatcher
from pixwave.sandbox.faults import FaultConfig, FaultInjector, FaultMiddleware, FaultRule, Route


class SimulatorConfig(BaseModel):
    """Settings every simulator has; providers add their own fields."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    webhook_url: str | None = Field(
        default=None, description="Where notifications go when a resource names none."
    )
    time_scale: float = Field(
        default=1.0, gt=0, le=10, description="Multiplies webhook retry waits and settle delays."
    )
    merchant_name: str = Field(default="PIXWAVE SANDBOX", min_length=1)
    merchant_city: str = Field(default="SAO PAULO", min_length=1)
    auto_settle_sends: bool = Field(
        default=True, description="Sends (pay-outs) settle by themselves after the settle delay."
    )
    settle_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=86400,
        description="Seconds (× time_scale) until a send settles (a refund too, where the "
        "provider settles refunds later).",
    )


class Clock:
    """Wall-clock time plus an offset that tests move forward to make charges expire."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        self.offset = timedelta()


#: A payer's answer to a Pix Automático recurrence-only code (Jornada 2): an authorisation of
#: future debits, not a payment — no charge of the simulator can match it.
NOTHING_TO_PAY: Final = (
    "a recurrence-only code (Pix Automático) authorises debits; there is nothing to pay"
)

#: Raises (a PixWaveError: 401, 403) unless the request may drive the simulator.
ControlGuard = Callable[[Request], Awaitable[None]]

#: ``openapi_extra`` of a ``/_sandbox`` route anyone may call even when a guard is set.
PUBLIC_ROUTE: Final = {"x-sandbox-public": True}


async def _check_control(request: Request) -> None:
    """Run the simulator's control guard, unless the matched route is marked public."""
    guard: ControlGuard | None = request.app.state.simulator.control_guard
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    if guard is not None and not extra.get("x-sandbox-public"):
        await guard(request)


class ClockAdvance(BaseModel):
    seconds: float = Field(gt=0, le=400 * 86400)


ConfigT = TypeVar("ConfigT", bound=SimulatorConfig)


class Simulator(abc.ABC, Generic[ConfigT]):
    """Base of a provider simulator. Subclasses fill in ``routes`` and the provider API."""

    name: ClassVar[str]
    #: (method, path, operation) of every provider route, for fault injection.
    routes: ClassVar[Sequence[Route]]
    webhook_schedule: ClassVar[Sequence[float]]
    webhook_timeout: ClassVar[float]

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        #: Checked before every non-public ``/_sandbox`` route; None: open (standalone).
        self.control_guard: ControlGuard | None = None
        self.clock = Clock()
        self.faults = FaultInjector([r.operation for r in self.routes])
        self.webhooks = WebhookDispatcher(
            schedule=self.webhook_schedule,
            timeout=self.webhook_timeout,
            time_scale=config.time_scale,
        )

    # --- provider hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def provider_router(self) -> APIRouter:
        """The provider's own API, at its real paths."""

    @abc.abstractmethod
    def sandbox_router(self) -> APIRouter:
        """Provider-specific sandbox routes (pay a charge, settle a send) under /_sandbox."""

    @abc.abstractmethod
    def error_body(self, status: int, reason: str) -> dict[str, Any]:
        """The provider's error shape for an injected fault."""

    def error_media_type(self) -> str:
        """The content type of the provider's error answers (an injected fault's too)."""
        return "application/json"

    @abc.abstractmethod
    def clear_state(self) -> None:
        """Forget every resource."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """How many resources of each kind exist, for the summary."""

    def records(self) -> list[dict[str, Any]]:
        """Every resource that moves money, one flat dict each, for auditors that must count
        what the provider did (a charge paid, a Pix sent, a refund) without its dialect:

        ``{"kind": "charge" | "send" | "refund", "id", "reference", "parent", "amount",
        "status", "done", "moved"}`` — ``reference`` is the client's own id as the provider
        keeps it (an external reference, a txid, an idEnvio, a devolução id), ``parent`` the
        charge's reference for a refund, ``amount`` int centavos, ``done`` whether the
        resource reached a final state and ``moved`` whether money moved (paid, sent,
        refunded)."""
        return []

    async def tick(self) -> None:
        """Apply time-based transitions (expiry); called before each admin or API read."""

    # --- shared ---------------------------------------------------------------------------
    async def reset(self) -> None:
        self.clear_state()
        self.clock.reset()
        self.webhooks.reset()
        await self.faults.clear()

    def update_config(self, changes: dict[str, Any]) -> None:
        merged = {**self.config.model_dump(), **changes}
        self.config = type(self.config).model_validate(merged)
        self.webhooks.time_scale = self.config.time_scale

    def app(self) -> FastAPI:
        """A standalone ASGI app: provider API + admin routes, wrapped in fault injection."""
        # Swagger UI's assets come from the fastapi-offline wheel (no CDN), under /_sandbox so
        # that no path a real provider has is taken.
        app = FastAPIOffline(
            static_url="/_sandbox/static-offline-docs",
            title=f"PixWave sandbox: {self.name}",
            description="A stateful simulator of the provider's API, with fault injection.",
            docs_url="/_sandbox/docs",
            openapi_url="/_sandbox/openapi.json",
            redoc_url=None,
        )
        app.state.simulator = self
        app.include_router(self.provider_router())
        guarded = [Depends(_check_control)]
        for router in (self._admin_router(), self.sandbox_router()):
            app.include_router(router, prefix="/_sandbox", tags=["sandbox"], dependencies=guarded)
        app.add_middleware(
            FaultMiddleware,
            injector=self.faults,
            routes=self.routes,
            error_body=self.error_body,
            error_media_type=self.error_media_type(),
        )

        @app.exception_handler(PixWaveError)
        async def _refused(request: Request, exc: PixWaveError) -> JSONResponse:
            return JSONResponse(
                exc.problem(request.url.path),
                status_code=exc.status_code,
                media_type="application/problem+json",
            )

        @app.exception_handler(ValueError)
        async def _bad_admin_input(_: Request, exc: ValueError) -> JSONResponse:
            return JSONResponse({"error": "invalid", "message": str(exc)}, status_code=422)

        return app

    def _admin_router(self) -> APIRouter:  # noqa: C901 - one-line route handlers, each a nested def mccabe counts
        router = APIRouter()
        simulator = self

        @router.get("")
        async def summary() -> dict[str, Any]:
            await simulator.tick()
            return {
                "name": simulator.name,
                "now": simulator.clock.now().isoformat(),
                "config": simulator.config.model_dump(mode="json"),
                "resources": simulator.counts(),
                "faults": simulator.faults.snapshot(),
            }

        @router.get("/config")
        async def get_config() -> dict[str, Any]:
            return simulator.config.model_dump(mode="json")

        @router.patch("/config")
        async def patch_config(changes: dict[str, Any] = Body(...)) -> dict[str, Any]:
            try:
                simulator.update_config(changes)
            except ValidationError as exc:
                raise HTTPException(422, exc.errors(include_url=False)) from None
            return simulator.config.model_dump(mode="json")

        @router.get("/faults")
        async def get_faults() -> dict[str, Any]:
            return simulator.faults.snapshot()

        @router.put("/faults")
        async def put_faults(config: FaultConfig) -> dict[str, Any]:
            await simulator.faults.configure(config)
            return simulator.faults.snapshot()

        @router.delete("/faults")
        async def clear_faults() -> dict[str, Any]:
            await simulator.faults.clear()
            return simulator.faults.snapshot()

        @router.put("/faults/{operation}")
        async def put_rule(operation: str, rule: FaultRule) -> dict[str, Any]:
            await simulator.faults.set_rule(operation, rule)
            return simulator.faults.snapshot()

        @router.delete("/faults/{operation}")
        async def delete_rule(operation: str) -> dict[str, Any]:
            await simulator.faults.set_rule(operation, None)
            return simulator.faults.snapshot()

        @router.post("/clock/advance")
        async def advance(body: ClockAdvance) -> dict[str, Any]:
            simulator.clock.advance(body.seconds)
            await simulator.tick()
            return {"now": simulator.clock.now().isoformat()}

        @router.get("/webhooks")
        async def webhooks() -> list[dict[str, Any]]:
            return [d.as_dict() for d in simulator.webhooks.deliveries.values()]

        @router.get("/records")
        async def records() -> list[dict[str, Any]]:
            await simulator.tick()
            return simulator.records()

        @router.post("/reset")
        async def reset() -> dict[str, str]:
            await simulator.reset()
            return {"status": "reset"}

        return router

    async def aclose(self) -> None:
        await self.webhooks.aclose()
