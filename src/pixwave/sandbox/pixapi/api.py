"""The standard API Pix routes at their real paths: parse, authorise, call the simulator, answer.

Bodies are read raw and validated here (not by FastAPI) so every malformed request gets the
provider's own answer rather than FastAPI's 422. Every route except the token route needs a
live Bearer token carrying the scope the specification names for it.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse

from pixwave.sandbox.pixapi.auth import basic_credentials, credentials_match
from pixwave.sandbox.pixapi.errors import ApiRoute, InvalidInput, Violation
from pixwave.sandbox.pixapi.schemas import (
    ID_PATTERN,
    TXID_PATTERN,
    CobCreate,
    CobRevision,
    RefundCreate,
    WebhookConfig,
    check_path,
    parse_body,
)
from pixwave.sandbox.pixapi.state import Webhook, rfc3339

if TYPE_CHECKING:
    from pixwave.sandbox.pixapi.simulator import PixSimulator

    AnySimulator = PixSimulator[Any, Any]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
API = "/v2"

ItemT = TypeVar("ItemT")


def json_answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def access(sim: AnySimulator, scope: str) -> DependsParam:
    """The route's guard: settle what is due, then require a live token with ``scope``."""

    async def guard(request: Request) -> None:
        sim.run_due()
        granted = sim.tokens.granted(request, sim.clock.now())
        if granted is None:
            raise sim.errors.unauthorised()
        if scope not in granted:
            raise sim.errors.scope_missing(scope)

    dependency: DependsParam = Depends(guard)
    return dependency


def query_time(request: Request, name: str) -> datetime:
    moment = optional_time(request, name)
    if moment is None:
        raise InvalidInput([Violation("required", f".query.{name}")])
    return moment


def optional_time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            [Violation("format", f".query.{name}", "Data deve respeitar a RFC 3339")]
        )
    return moment


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(
            [Violation("type", f".query.{name}", f"Informe um inteiro entre {low} e {high}")]
        )
    return int(raw)


def page(
    request: Request, items: Sequence[ItemT], parametros: dict[str, Any]
) -> tuple[dict[str, Any], Sequence[ItemT]]:
    """BCB pagination (``paginacao.paginaAtual`` / ``itensPorPagina``) over sorted items."""
    current = query_int(request, "paginacao.paginaAtual", 0, 0, 10**9)
    size = query_int(request, "paginacao.itensPorPagina", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    parametros["paginacao"] = {
        "paginaAtual": current,
        "itensPorPagina": size,
        "quantidadeDePaginas": max(1, math.ceil(len(items) / size)),
        "quantidadeTotalDeItens": len(items),
    }
    return parametros, items[current * size : (current + 1) * size]


def period(request: Request) -> tuple[datetime, datetime, dict[str, Any]]:
    inicio = query_time(request, "inicio")
    fim = query_time(request, "fim")
    return inicio, fim, {"inicio": rfc3339(inicio), "fim": rfc3339(fim)}


def build_provider_router(sim: AnySimulator) -> APIRouter:
    """The token route plus the token-protected standard API."""
    router = APIRouter(route_class=ApiRoute)
    router.include_router(oauth_router(sim))
    router.include_router(standard_router(sim))
    return router


def oauth_router(sim: AnySimulator) -> APIRouter:
    router = APIRouter(route_class=ApiRoute)

    @router.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        client_id, client_secret = basic_credentials(request, sim.errors)
        if not (
            credentials_match(sim.config.client_id, client_id)
            and credentials_match(sim.config.client_secret, client_secret)
        ):
            raise sim.errors.oauth(401, "invalid_client", "Credenciais inválidas")
        granted, scope = sim.grant(await request.body(), request.headers.get("content-type", ""))
        ttl = sim.config.token_ttl_seconds
        return json_answer(
            {
                "access_token": sim.tokens.issue(sim.clock.now(), ttl, granted),
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": scope,
            }
        )

    return router


def standard_router(sim: AnySimulator) -> APIRouter:
    router = APIRouter(route_class=ApiRoute)
    _cob_routes(router, sim)
    _loc_routes(router, sim)
    _pix_routes(router, sim)
    _webhook_routes(router, sim)
    return router


def _cob_routes(router: APIRouter, sim: AnySimulator) -> None:  # noqa: C901 - short route handlers, each a nested def mccabe counts
    @router.post(f"{API}/cob", dependencies=[access(sim, "cob.write")])
    async def post_cob(request: Request) -> JSONResponse:
        with sim.reading("cob"):
            body = parse_body(CobCreate, await request.body())
        cob = sim.create_cob(secrets.token_hex(16), body)
        return json_answer(sim.cob_wire(cob), 201)

    @router.get(f"{API}/cob", dependencies=[access(sim, "cob.read")])
    async def list_cobs(request: Request) -> JSONResponse:
        with sim.reading("cobs"):
            inicio, fim, parametros = period(request)
        status = request.query_params.get("status")
        cpf = request.query_params.get("cpf")
        cnpj = request.query_params.get("cnpj")
        for name, value in (("status", status), ("cpf", cpf), ("cnpj", cnpj)):
            if value is not None:
                parametros[name] = value

        def wanted(created: datetime, cob_status: str, devedor: dict[str, str] | None) -> bool:
            if not inicio <= created <= fim:
                return False
            if status is not None and cob_status != status:
                return False
            if cpf is not None and (devedor or {}).get("cpf") != cpf:
                return False
            return cnpj is None or (devedor or {}).get("cnpj") == cnpj

        cobs = sorted(
            (c for c in sim.state.cobs.values() if wanted(c.created_at, c.status, c.devedor)),
            key=lambda c: c.created_at,
        )
        with sim.reading("cobs"):
            parametros, found = page(request, cobs, parametros)
        return json_answer({"parametros": parametros, "cobs": [sim.cob_wire(c) for c in found]})

    @router.put(f"{API}/cob/{{txid}}", dependencies=[access(sim, "cob.write")])
    async def put_cob(txid: str, request: Request) -> JSONResponse:
        with sim.reading("cob"):
            check_path(txid, TXID_PATTERN, "txid")
            body = parse_body(CobCreate, await request.body())
        return json_answer(sim.cob_wire(sim.create_cob(txid, body)), 201)

    @router.patch(f"{API}/cob/{{txid}}", dependencies=[access(sim, "cob.write")])
    async def patch_cob(txid: str, request: Request) -> JSONResponse:
        sim.get_cob(txid)
        with sim.reading("cob"):
            body = parse_body(CobRevision, await request.body())
        return json_answer(sim.cob_wire(sim.revise_cob(txid, body)))

    @router.get(f"{API}/cob/{{txid}}", dependencies=[access(sim, "cob.read")])
    async def get_cob(txid: str) -> JSONResponse:
        return json_answer(sim.cob_wire(sim.get_cob(txid)))


def parse_loc_id(sim: AnySimulator, raw: str) -> int:
    if not raw.isdigit():
        raise sim.errors.loc_not_found()
    return int(raw)


def _loc_routes(router: APIRouter, sim: AnySimulator) -> None:
    @router.get(f"{API}/loc/{{loc_id}}", dependencies=[access(sim, "payloadlocation.read")])
    async def get_loc(loc_id: str) -> JSONResponse:
        return json_answer(sim.cob_by_loc(parse_loc_id(sim, loc_id)).loc_wire())


def _pix_routes(router: APIRouter, sim: AnySimulator) -> None:
    @router.get(f"{API}/pix", dependencies=[access(sim, "pix.read")])
    async def list_pix(request: Request) -> JSONResponse:
        with sim.reading("pix"):
            inicio, fim, parametros = period(request)
        txid = request.query_params.get("txid")
        if txid is not None:
            parametros["txid"] = txid
        received = sorted(
            (
                p
                for p in sim.state.pix.values()
                if inicio <= p.paid_at <= fim and (txid is None or p.txid == txid)
            ),
            key=lambda p: p.paid_at,
        )
        with sim.reading("pix"):
            parametros, found = page(request, received, parametros)
        return json_answer({"parametros": parametros, "pix": [p.wire() for p in found]})

    @router.get(f"{API}/pix/{{e2e_id}}", dependencies=[access(sim, "pix.read")])
    async def get_pix(e2e_id: str) -> JSONResponse:
        return json_answer(sim.get_pix(e2e_id).wire())

    @router.put(
        f"{API}/pix/{{e2e_id}}/devolucao/{{refund_id}}", dependencies=[access(sim, "pix.write")]
    )
    async def put_refund(e2e_id: str, refund_id: str, request: Request) -> JSONResponse:
        sim.get_pix(e2e_id)
        with sim.reading("devolucao"):
            check_path(refund_id, ID_PATTERN, "id")
            body = parse_body(RefundCreate, await request.body())
        return json_answer(sim.create_refund(e2e_id, refund_id, body).wire(), 201)

    @router.get(
        f"{API}/pix/{{e2e_id}}/devolucao/{{refund_id}}", dependencies=[access(sim, "pix.read")]
    )
    async def get_refund(e2e_id: str, refund_id: str) -> JSONResponse:
        return json_answer(sim.get_refund(e2e_id, refund_id).wire())


def _webhook_routes(router: APIRouter, sim: AnySimulator) -> None:  # noqa: C901 - short route handlers, each a nested def mccabe counts
    def own_key(chave: str) -> str:
        if not sim.owns_key(chave):
            raise sim.errors.webhook_key_not_owned()
        return str(sim.config.pix_key)

    def registered(chave: str) -> Webhook:
        webhook: Webhook | None = sim.state.webhooks.get(own_key(chave))
        if webhook is None:
            raise sim.errors.webhook_not_found()
        return webhook

    @router.get(f"{API}/webhook", dependencies=[access(sim, "webhook.read")])
    async def list_webhooks(request: Request) -> JSONResponse:
        with sim.reading("webhooks"):
            inicio = optional_time(request, "inicio")
            fim = optional_time(request, "fim")
        parametros: dict[str, Any] = {}
        if inicio is not None:
            parametros["inicio"] = rfc3339(inicio)
        if fim is not None:
            parametros["fim"] = rfc3339(fim)
        webhooks = sorted(
            (
                w
                for w in sim.state.webhooks.values()
                if (inicio is None or w.created_at >= inicio)
                and (fim is None or w.created_at <= fim)
            ),
            key=lambda w: w.created_at,
        )
        with sim.reading("webhooks"):
            parametros, found = page(request, webhooks, parametros)
        return json_answer(
            {"parametros": parametros, "webhooks": [sim.webhook_wire(w) for w in found]}
        )

    @router.put(f"{API}/webhook/{{chave}}", dependencies=[access(sim, "webhook.write")])
    async def put_webhook(chave: str, request: Request) -> Response:
        key = own_key(chave)
        with sim.reading("webhook"):
            body = parse_body(WebhookConfig, await request.body())
        check_webhook_url(sim, body.webhookUrl)
        # Real PSPs first call the URL (and check its mTLS); the simulator trusts it.
        webhook = Webhook(key, body.webhookUrl, sim.clock.now())
        sim.state.webhooks[key] = webhook
        return sim.webhook_registered(webhook, request)

    @router.get(f"{API}/webhook/{{chave}}", dependencies=[access(sim, "webhook.read")])
    async def get_webhook(chave: str) -> JSONResponse:
        return json_answer(sim.webhook_wire(registered(chave)))

    @router.delete(f"{API}/webhook/{{chave}}", dependencies=[access(sim, "webhook.write")])
    async def delete_webhook(chave: str) -> Response:
        webhook = registered(chave)
        del sim.state.webhooks[webhook.chave]
        return Response(status_code=204)


def check_webhook_url(sim: AnySimulator, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise sim.errors.webhook_url_invalid(https_required=False)
    if sim.config.require_https_webhook and parts.scheme != "https":
        raise sim.errors.webhook_url_invalid(https_required=True)
