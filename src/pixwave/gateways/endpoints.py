"""/v1/gateways: live gateway health for everyone, routing settings for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal
from pixwave.exceptions import ServiceUnavailable
from pixwave.gateways.router import Router, UnknownGateway
from pixwave.gateways.schemas import GatewayRead, GatewayUpdate
from pixwave.kit.problems import PixWaveRoute, problems

router = APIRouter(prefix="/v1/gateways", tags=["gateways"], route_class=PixWaveRoute)


def get_router(request: Request) -> Router:
    """The process's gateway router, built with its resources."""
    gateway_router: Router | None = getattr(request.app.state.resources, "router", None)
    if gateway_router is None:
        raise ServiceUnavailable("gateway routing is not configured in this process")
    return gateway_router


GatewayRouter = Annotated[Router, Depends(get_router)]


@router.get("", response_model=list[GatewayRead], responses=problems(ServiceUnavailable))
async def list_gateways(
    _principal: CurrentPrincipal, gateway_router: GatewayRouter
) -> list[GatewayRead]:
    """Every configured gateway: settings, capabilities, and each operation's circuit and
    recent success rate and p95 latency, as every process sees them."""
    return [GatewayRead.of(status) for status in await gateway_router.overview()]


@router.patch(
    "/{name}", response_model=GatewayRead, responses=problems(UnknownGateway, ServiceUnavailable)
)
async def update_gateway(
    name: str, body: GatewayUpdate, _admin: AdminPrincipal, gateway_router: GatewayRouter
) -> GatewayRead:
    """Enable, disable or re-prioritise a gateway (admin only); effective at once everywhere."""
    status = await gateway_router.configure(name, enabled=body.enabled, priority=body.priority)
    return GatewayRead.of(status)
