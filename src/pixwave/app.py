"""The FastAPI application: routers, middleware and error rendering. Wiring only."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixwave import __doc__ as summary
from pixwave.accounts.endpoints import router as users_router
from pixwave.bootstrap import build_resources
from pixwave.config import Settings, get_settings
from pixwave.exceptions import (
    InternalError,
    InvalidDocument,
    InvalidPixKey,
    InvalidText,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PixWaveError,
    ServiceUnavailable,
    ValidationFailed,
)
from pixwave.gateways.endpoints import router as gateways_router
from pixwave.inbox.endpoints import router as webhooks_router
from pixwave.kit.problems import PROBLEM_JSON, PixWaveRoute, add_problem_schemas, problems
from pixwave.kit.ratelimit import Policy, RateLimit
from pixwave.kit.runtime import tune_gc
from pixwave.limits.endpoints import router as limits_router
from pixwave.notifications.webhooks.endpoints import router as operator_webhooks_router
from pixwave.observability.context import RequestContext
from pixwave.observability.endpoints import router as metrics_router
from pixwave.observability.logging import configure_logging
from pixwave.observability.metrics import HTTPMetrics
from pixwave.payments.endpoints import router as payments_router
from pixwave.resources import Resources
from pixwave.sandbox.core import Simulator
from pixwave.sandbox.embedded import internal_base_url, mount_simulators
from pixwave.wallet.endpoints import router as wallet_router
from pixwave.worker.health import broker_ready
from pixwave.worker.runner import runs_jobs, start_background_jobs

log = structlog.get_logger("pixwave.api")

#: Error types of our own validators that become the problem's code when they are the only kind
#: of error (pydantic raises them by these names in the schemas).
_OWN_CODES: dict[str, type[ValidationFailed]] = {
    error.code: error for error in (InvalidDocument, InvalidPixKey, InvalidText)
}

#: Starlette's own HTTP errors (routing, the body limit) by status; anything else: `http_error`.
_HTTP_ERRORS: dict[int, type[PixWaveError]] = {
    error.status_code: error for error in (NotFound, MethodNotAllowed, PayloadTooLarge)
}

#: FastAPI's error type for a body that is not JSON (see `kit/body.py`).
_JSON_INVALID = "json_invalid"


def create_served_app() -> FastAPI:
    """The factory `pixwave api` and `pixwave up` hand to uvicorn.

    With ``--workers N`` uvicorn starts each worker as a fresh interpreter, where the command's
    own logging set-up never ran: each configures it again here (LOG_LEVEL, JSON unless on a
    terminal), or it would log everything, in colour, with slow rich tracebacks.
    """
    settings = get_settings()
    configure_logging(settings.log_level, json=not sys.stderr.isatty(), role="api")
    return create_app(settings)


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> FastAPI:
    """Build the app. Tests pass their own `resources`; production builds them at startup."""
    settings = settings or get_settings()
    # Swagger UI and ReDoc from assets shipped in the fastapi-offline wheel, not from a CDN:
    # the docs work on a machine without internet.
    app = FastAPIOffline(
        title="PixWave",
        version="0.1.0",
        summary=summary,
        description=(
            "A Pix digital wallet over several payment gateways. Amounts are integer centavos. "
            "Every POST needs an `Idempotency-Key`. Every error is `application/problem+json` "
            "(the `Problem` schema) with a stable `code`; each operation lists the codes each "
            "status can carry. A body that is not JSON, or repeats a key, is 422 "
            "`validation_error` with an `errors` item of type `json_invalid`."
        ),
        lifespan=_lifespan(settings, resources),
    )
    app.router.route_class = PixWaveRoute
    add_problem_schemas(app)
    if resources is not None:
        app.state.resources = resources
    app.state.simulators = mount_simulators(app, settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.rate_limiting:  # inside the metrics (429s counted), before any body is read
        app.add_middleware(
            RateLimit,
            policy=Policy.from_settings(settings),
            timeout=settings.rate_limit_timeout,
            sandbox_mounted=bool(app.state.simulators),
        )
    app.add_middleware(HTTPMetrics)  # outer to the body limit, so 413s are counted too
    app.add_middleware(RequestContext)  # outermost: every line of a request has its id
    for router in (
        users_router,
        wallet_router,
        limits_router,
        payments_router,
        gateways_router,
        webhooks_router,
        operator_webhooks_router,
        metrics_router,
        ops_router,
    ):
        app.include_router(router)
    _install_error_handlers(app)
    return app


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _lifespan(settings: Settings, resources: Resources | None) -> Lifespan:
    """Start-up and shutdown: the process's resources (unless a test brought its own), the
    broker, background jobs where this process runs them, the idempotency purge."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = resources is None
        simulators: dict[str, Simulator[Any]] = app.state.simulators
        res = resources or build_resources(
            settings,
            sandbox_base_url=internal_base_url(settings),
            clocks={name: simulator.clock.now for name, simulator in simulators.items()},
        )
        app.state.resources = res
        if owned and res.eviction_listener is not None:
            # Revocations made by other processes evict this one's cached token lookups.
            res.eviction_listener.start()
        purger = asyncio.create_task(_purge_idempotency_keys(res))
        await res.broker.startup()
        background = start_background_jobs(res) if runs_jobs(settings) else None
        tune_gc(settings.python_gc_threshold)
        try:
            yield
        finally:
            purger.cancel()
            if background is not None:
                await background.stop()
            for simulator in simulators.values():
                await simulator.aclose()
            if owned:
                await res.close()

    return lifespan


ops_router = APIRouter(tags=["ops"], route_class=PixWaveRoute)


@ops_router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/docs")


@ops_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@ops_router.head("/healthz", response_class=Response, response_description="Alive")
async def healthz_head() -> Response:
    """Liveness for probes that send HEAD (load balancers): the same status, no body."""
    return Response()


@ops_router.get("/readyz", responses=problems(ServiceUnavailable))
async def readyz(request: Request) -> dict[str, Any]:
    """Readiness: the database, Redis, the job broker and SNS (each when configured)
    answer within two seconds; a 503 names what is down (and has `checks` per dependency)."""
    checks = await _check_ready(request.app.state.resources)
    return {"status": "ready", "checks": checks}


@ops_router.head(
    "/readyz",
    response_class=Response,
    response_description="Ready",
    responses=problems(ServiceUnavailable),
)
async def readyz_head(request: Request) -> Response:
    """Readiness for probes that send HEAD: 200 or 503 like GET, no body."""
    await _check_ready(request.app.state.resources)
    return Response()


#: Each readiness check answers within this, so a hung dependency fails the probe fast.
READY_TIMEOUT_SECONDS = 2.0


async def _check_ready(res: Resources) -> dict[str, str]:
    """Ask every dependency at once; raise 503 naming each one that did not answer."""
    checks: dict[str, Callable[[], Awaitable[object]]] = {"database": lambda: _ping_database(res)}
    if res.redis is not None:
        checks["redis"] = res.redis.ping
    broker_ping = broker_ready(res.broker)
    if broker_ping is not None:
        checks["broker"] = broker_ping
    if res.sns is not None:
        checks["sns"] = res.sns.ping

    async def run(check: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
        except Exception as exc:
            return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        return "ok"

    results = dict(
        zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True)
    )
    down = [f"{name} ({result})" for name, result in results.items() if result != "ok"]
    if down:
        raise ServiceUnavailable(f"not ready: {', '.join(down)}", checks=results)
    return results


async def _ping_database(res: Resources) -> None:
    async with res.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _purge_idempotency_keys(resources: Resources, every_seconds: float = 3600) -> None:
    """Forget idempotency keys past their 24 h; expired ones are already ignored on lookup."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            purged = await resources.idempotency.purge_expired()
            log.info("idempotency.purged", records=purged)
        except Exception as exc:  # the next round retries; a purge is never urgent
            log.warning("idempotency.purge_failed", error=repr(exc))


def _problem(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PixWaveError)
    async def pixwave_error(request: Request, exc: PixWaveError) -> JSONResponse:
        return _problem(exc.status_code, exc.problem(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(err) for err in exc.errors()]
        types = {e["type"] for e in errors}
        kind = (
            _OWN_CODES.get(types.pop(), ValidationFailed) if len(types) == 1 else ValidationFailed
        )
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors[:5])
        problem = kind(detail).problem(request.url.path)
        return _problem(422, {**problem, "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        known = _HTTP_ERRORS.get(exc.status_code)
        code = known.code if known is not None else "http_error"
        return _problem(
            exc.status_code,
            {
                "type": f"urn:pixwave:error:{code}",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
                "code": code,
                "instance": request.url.path,
            },
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("api.database_unavailable", error=str(exc.orig))
        return _problem(
            503, ServiceUnavailable("the database is unavailable").problem(request.url.path)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
        error = InternalError("an unexpected error occurred; it has been logged")
        return _problem(500, error.problem(request.url.path))


def _field_error(err: Any) -> dict[str, str]:
    """One `errors` item. A body that is not JSON is reported at `body` with the parser's
    reason (FastAPI puts a character offset in the location and keeps the reason aside)."""
    if err.get("type") == _JSON_INVALID:
        reason = (err.get("ctx") or {}).get("error") or err.get("msg", "")
        return {"location": "body", "message": f"invalid JSON: {reason}", "type": _JSON_INVALID}
    return {
        "location": ".".join(str(p) for p in err.get("loc", ())),
        "message": err.get("msg", ""),
        "type": err.get("type", ""),
    }


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(scope, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Starlette's HTTPException passes through FastAPI's body parsing untouched
                    # and is rendered as problem+json by the handler below.
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"request bodies are limited to {self.max_bytes} bytes"

    async def _reject(self, scope: Scope, send: Send) -> None:
        error = PayloadTooLarge(self._message())
        response = _problem(413, error.problem(scope.get("path")))
        await response(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}
