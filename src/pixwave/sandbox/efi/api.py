"""Efí's Pix API routes at their real paths: parse, authorise, call the simulator, answer.

Bodies are read raw and validated here (not by FastAPI) so every malformed request gets Efí's
``json_invalido`` shape rather than FastAPI's 422. Every route except ``/oauth/token`` needs a
live Bearer token.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from pixwave.pix import qr_png_base64
from pixwave.sandbox.efi.auth import SCOPES, basic_credentials, check_grant, credentials_match
from pixwave.sandbox.efi.errors import EfiError, EfiRoute, efi_error, schema_error, violation
from pixwave.sandbox.efi.schemas import (
    CobCreate,
    CobRevision,
    RefundCreate,
    SendCreate,
    WebhookConfig,
    check_path,
    parse_body,
)
from pixwave.sandbox.efi.state import Webhook, rfc3339

if TYPE_CHECKING:
    from pixwave.sandbox.efi.simulator import EfiSimulator

TXID_PATTERN = r"[a-zA-Z0-9]{26,35}"
ID_PATTERN = r"[a-zA-Z0-9]{1,35}"
#: Efí's page showing a charge's QR code (works only in production).
VIEW_LINK = "https://pix.sejaefi.com.br/cob/pagar/"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

ItemT = TypeVar("ItemT")


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _query_time(request: Request, name: str) -> datetime:
    raw = request.query_params.get(name)
    if raw is None:
        raise schema_error([violation("required", f".query.{name}")])
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise schema_error(
            [violation("format", f".query.{name}", "Data deve respeitar a RFC 3339")]
        )
    return moment


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise schema_error(
            [violation("type", f".query.{name}", f"Informe um inteiro entre {low} e {high}")]
        )
    return int(raw)


def _page(
    request: Request, items: Sequence[ItemT], parametros: dict[str, Any]
) -> tuple[dict[str, Any], Sequence[ItemT]]:
    """BCB pagination (``paginacao.paginaAtual`` / ``itensPorPagina``) over sorted items."""
    page = _query_int(request, "paginacao.paginaAtual", 0, 0, 10**9)
    size = _query_int(request, "paginacao.itensPorPagina", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    parametros["paginacao"] = {
        "paginaAtual": page,
        "itensPorPagina": size,
        "quantidadeDePaginas": max(1, math.ceil(len(items) / size)),
        "quantidadeTotalDeItens": len(items),
    }
    return parametros, items[page * size : (page + 1) * size]


def _period(request: Request) -> tuple[datetime, datetime, dict[str, Any]]:
    inicio = _query_time(request, "inicio")
    fim = _query_time(request, "fim")
    return inicio, fim, {"inicio": rfc3339(inicio), "fim": rfc3339(fim)}


def build_provider_router(sim: EfiSimulator) -> APIRouter:
    """The OAuth route plus the token-protected Pix API."""
    router = APIRouter(route_class=EfiRoute)
    router.include_router(_oauth_router(sim))
    router.include_router(_api_router(sim))
    return router


def _oauth_router(sim: EfiSimulator) -> APIRouter:
    router = APIRouter(route_class=EfiRoute)

    @router.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        client_id, client_secret = basic_credentials(request)
        if not (
            credentials_match(sim.config.client_id, client_id)
            and credentials_match(sim.config.client_secret, client_secret)
        ):
            raise EfiError(
                401,
                {"error": "invalid_client", "error_description": "Credenciais inválidas"},
                headers={"www-authenticate": 'Basic realm="efi"'},
            )
        check_grant(await request.body())
        ttl = sim.config.token_ttl_seconds
        return _json(
            {
                "access_token": sim.tokens.issue(sim.clock.now(), ttl),
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": SCOPES,
            }
        )

    return router


def _api_router(sim: EfiSimulator) -> APIRouter:
    async def authorised(request: Request) -> None:
        sim.run_due()
        sim.tokens.check(request, sim.clock.now())

    router = APIRouter(route_class=EfiRoute, dependencies=[Depends(authorised)])
    _cob_routes(router, sim)
    _pix_routes(router, sim)
    _send_routes(router, sim)
    _webhook_routes(router, sim)
    return router


def _cob_routes(router: APIRouter, sim: EfiSimulator) -> None:
    @router.post("/v2/cob")
    async def post_cob(request: Request) -> JSONResponse:
        body = parse_body(CobCreate, await request.body())
        cob = sim.create_cob(secrets.token_hex(16), body)
        return _json(sim.cob_wire(cob), 201)

    @router.get("/v2/cob")
    async def list_cobs(request: Request) -> JSONResponse:
        inicio, fim, parametros = _period(request)
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
        parametros, page = _page(request, cobs, parametros)
        return _json({"parametros": parametros, "cobs": [sim.cob_wire(c) for c in page]})

    @router.put("/v2/cob/{txid}")
    async def put_cob(txid: str, request: Request) -> JSONResponse:
        check_path(txid, TXID_PATTERN, "txid")
        body = parse_body(CobCreate, await request.body())
        return _json(sim.cob_wire(sim.create_cob(txid, body)), 201)

    @router.patch("/v2/cob/{txid}")
    async def patch_cob(txid: str, request: Request) -> JSONResponse:
        sim.get_cob(txid)
        body = parse_body(CobRevision, await request.body())
        return _json(sim.cob_wire(sim.revise_cob(txid, body)))

    @router.get("/v2/cob/{txid}")
    async def get_cob(txid: str) -> JSONResponse:
        return _json(sim.cob_wire(sim.get_cob(txid)))

    @router.get("/v2/loc/{loc_id}/qrcode")
    async def loc_qrcode(loc_id: str) -> JSONResponse:
        cob = sim.cob_by_loc(_loc_id(loc_id))
        return _json(
            {
                "qrcode": cob.pix_copia_e_cola,
                "imagemQrcode": "data:image/png;base64," + qr_png_base64(cob.pix_copia_e_cola),
                "linkVisualizacao": VIEW_LINK + cob.location.rsplit("/", 1)[-1],
            }
        )

    @router.get("/v2/loc/{loc_id}")
    async def get_loc(loc_id: str) -> JSONResponse:
        return _json(sim.cob_by_loc(_loc_id(loc_id)).loc_wire())


def _loc_id(raw: str) -> int:
    if not raw.isdigit():
        raise efi_error(404, "location_nao_encontrada", "Location não encontrada")
    return int(raw)


def _pix_routes(router: APIRouter, sim: EfiSimulator) -> None:
    @router.get("/v2/pix")
    async def list_pix(request: Request) -> JSONResponse:
        inicio, fim, parametros = _period(request)
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
        parametros, page = _page(request, received, parametros)
        return _json({"parametros": parametros, "pix": [p.wire() for p in page]})

    @router.get("/v2/pix/{e2e_id}")
    async def get_pix(e2e_id: str) -> JSONResponse:
        return _json(sim.get_pix(e2e_id).wire())

    @router.put("/v2/pix/{e2e_id}/devolucao/{refund_id}")
    async def put_refund(e2e_id: str, refund_id: str, request: Request) -> JSONResponse:
        sim.get_pix(e2e_id)
        check_path(refund_id, ID_PATTERN, "id")
        body = parse_body(RefundCreate, await request.body())
        return _json(sim.create_refund(e2e_id, refund_id, body).wire(), 201)

    @router.get("/v2/pix/{e2e_id}/devolucao/{refund_id}")
    async def get_refund(e2e_id: str, refund_id: str) -> JSONResponse:
        return _json(sim.get_refund(e2e_id, refund_id).wire())


def _send_routes(router: APIRouter, sim: EfiSimulator) -> None:
    async def put_send(id_envio: str, request: Request) -> JSONResponse:
        check_path(id_envio, ID_PATTERN, "idEnvio")
        body = parse_body(SendCreate, await request.body())
        return _json(sim.create_send(id_envio, body).created_wire(), 201)

    # v3 is the SDK 1.0.7 path; v2 is the older documented one, kept as an alias.
    router.add_api_route("/v3/gn/pix/{id_envio}", put_send, methods=["PUT"])
    router.add_api_route("/v2/gn/pix/{id_envio}", put_send, methods=["PUT"])

    @router.get("/v2/gn/pix/enviados/id-envio/{id_envio}")
    async def get_send(id_envio: str) -> JSONResponse:
        return _json(sim.send_by_id(id_envio).wire())

    @router.get("/v2/gn/pix/enviados/{e2e_id}")
    async def get_send_e2e(e2e_id: str) -> JSONResponse:
        return _json(sim.send_by_e2e(e2e_id).wire())


def _webhook_routes(router: APIRouter, sim: EfiSimulator) -> None:
    def own_key(chave: str) -> str:
        if not sim.owns_key(chave):
            raise efi_error(400, "chave_invalida", "A chave informada não pertence a esta conta")
        return sim.config.pix_key

    def registered(chave: str) -> Webhook:
        webhook = sim.state.webhooks.get(own_key(chave))
        if webhook is None:
            # Efí's name for this case; the BCB would answer WebhookNaoEncontrado.
            raise efi_error(
                404, "webhook_nao_encontrado", "Webhook não encontrado para a chave informada"
            )
        return webhook

    @router.put("/v2/webhook/{chave}")
    async def put_webhook(chave: str, request: Request) -> JSONResponse:
        key = own_key(chave)
        body = parse_body(WebhookConfig, await request.body())
        _check_webhook_url(body.webhookUrl, https_only=sim.config.require_https_webhook)
        # Real Efí first calls the URL (and checks its mTLS); the simulator trusts it.
        skip = request.headers.get("x-skip-mtls-checking", "").lower() == "true"
        sim.state.webhooks[key] = Webhook(key, body.webhookUrl, sim.clock.now(), skip)
        # The BCB spec answers 200 without a body; the URL is echoed so SDKs get JSON.
        return _json({"webhookUrl": body.webhookUrl})

    @router.get("/v2/webhook/{chave}")
    async def get_webhook(chave: str) -> JSONResponse:
        return _json(registered(chave).wire())

    @router.delete("/v2/webhook/{chave}")
    async def delete_webhook(chave: str) -> Response:
        webhook = registered(chave)
        del sim.state.webhooks[webhook.chave]
        return Response(status_code=204)


def _check_webhook_url(url: str, *, https_only: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise efi_error(400, "webhook_invalido", "A URL informada é inválida")
    if https_only and parts.scheme != "https":
        raise efi_error(400, "webhook_invalido", "A URL do webhook deve usar o protocolo HTTPS")
