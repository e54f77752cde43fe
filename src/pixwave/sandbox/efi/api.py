"""Efí's Pix API routes: the standard's (``sandbox/pixapi/api.py``) plus Efí's extensions.

Efí adds a cob's QR code (``GET /v2/loc/{id}/qrcode``) and sends under ``/gn``
(``PUT /v3/gn/pix/{idEnvio}``, the older ``/v2`` alias, and their queries). Every route except
``/oauth/token`` needs a live Bearer token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pixwave.pix import qr_png_base64
from pixwave.sandbox.efi.schemas import ID_PATTERN, SendCreate, check_path, parse_body
from pixwave.sandbox.pixapi.api import (
    access,
    json_answer,
    oauth_router,
    parse_loc_id,
    standard_router,
)
from pixwave.sandbox.pixapi.errors import ApiRoute

if TYPE_CHECKING:
    from pixwave.sandbox.efi.simulator import EfiSimulator

#: Efí's page showing a charge's QR code (works only in production).
VIEW_LINK = "https://pix.sejaefi.com.br/cob/pagar/"


def build_provider_router(sim: EfiSimulator) -> APIRouter:
    """The OAuth route, the standard API and Efí's extensions."""
    router = APIRouter(route_class=ApiRoute)
    router.include_router(oauth_router(sim))
    router.include_router(standard_router(sim))
    router.include_router(_extension_router(sim))
    return router


def _extension_router(sim: EfiSimulator) -> APIRouter:
    router = APIRouter(route_class=ApiRoute)

    @router.get("/v2/loc/{loc_id}/qrcode", dependencies=[access(sim, "payloadlocation.read")])
    async def loc_qrcode(loc_id: str) -> JSONResponse:
        cob = sim.cob_by_loc(parse_loc_id(sim, loc_id))
        return json_answer(
            {
                "qrcode": cob.pix_copia_e_cola,
                "imagemQrcode": "data:image/png;base64," + qr_png_base64(cob.pix_copia_e_cola),
                "linkVisualizacao": VIEW_LINK + cob.location.rsplit("/", 1)[-1],
            }
        )

    async def put_send(id_envio: str, request: Request) -> JSONResponse:
        with sim.reading("send"):
            check_path(id_envio, ID_PATTERN, "idEnvio")
            body = parse_body(SendCreate, await request.body())
        return json_answer(sim.create_send(id_envio, body).created_wire(), 201)

    # v3 is the SDK 1.0.7 path; v2 is the older documented one, kept as an alias.
    send_access = [access(sim, "pix.send")]
    router.add_api_route(
        "/v3/gn/pix/{id_envio}", put_send, methods=["PUT"], dependencies=send_access
    )
    router.add_api_route(
        "/v2/gn/pix/{id_envio}", put_send, methods=["PUT"], dependencies=send_access
    )

    @router.get(
        "/v2/gn/pix/enviados/id-envio/{id_envio}", dependencies=[access(sim, "gn.pix.send.read")]
    )
    async def get_send(id_envio: str) -> JSONResponse:
        return json_answer(sim.send_by_id(id_envio).wire())

    @router.get("/v2/gn/pix/enviados/{e2e_id}", dependencies=[access(sim, "gn.pix.send.read")])
    async def get_send_e2e(e2e_id: str) -> JSONResponse:
        return json_answer(sim.send_by_e2e(e2e_id).wire())

    return router
