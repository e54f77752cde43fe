"""Which gateways this deployment has, built from Settings.

Adding a provider is a new package plus one arm in :func:`build_gateway`'s ``match`` — the
``assert_never`` makes mypy point at every place a new name must be handled.

A gateway is either **real** (its credentials are configured) or **simulated** (it runs against
the built-in simulator mounted in the API, reached over HTTP like the real thing, with the
simulator's own well-known credentials). :func:`simulated_gateways` decides, and refuses every
mix: a simulator lets whoever drives it invent payments, so money credited through one must
never be able to leave through a real gateway of the same process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Literal, assert_never, get_args

import httpx
import structlog

from pixwave.config import Settings
from pixwave.db import utcnow
from pixwave.gateways.base import PixGateway
from pixwave.gateways.efi import EfiConnector, EfiWebhookAuth
from pixwave.gateways.http import Timeouts
from pixwave.gateways.mercadopago import MercadoPagoConnector
from pixwave.sandbox.efi import EfiSimConfig
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig

log = structlog.get_logger("pixwave.gateways")

Clock = Callable[[], datetime]


GatewayName = Literal["mercadopago", "efi"]
GATEWAY_NAMES: tuple[GatewayName, ...] = get_args(GatewayName)

#: Credentials the built-in simulators accept; they protect nothing and say so.
SANDBOX_MERCADOPAGO_TOKEN = "TEST-pixwave-sandbox"  # noqa: S105 - a public sandbox value
SANDBOX_EFI_CLIENT_ID = "Client_Id_pixwave_sandbox"
SANDBOX_EFI_CLIENT_SECRET = "Client_Secret_pixwave_sandbox"  # noqa: S105 - a public sandbox value
SANDBOX_EFI_WEBHOOK_HMAC = "pixwave-sandbox-hmac"


class GatewayModeError(ValueError):
    """The configuration mixes real gateways and simulators, or asks production for one."""


def _credentials(name: GatewayName, settings: Settings) -> dict[str, str | None]:
    """The variables a gateway needs to be real, by their original names, with their values."""
    match name:
        case "mercadopago":
            return {"MERCADOPAGO_ACCESS_TOKEN": settings.mercadopago_access_token}
        case "efi":
            return {
                "GERENCIANET_CLIENT_ID": settings.gerencianet_client_id,
                "GERENCIANET_CLIENT_SECRET": settings.gerencianet_client_secret,
                "GERENCIANET_PIX_KEY": settings.gerencianet_pix_key,
            }
        case _:
            assert_never(name)


def credential_variables(name: GatewayName, settings: Settings) -> list[str]:
    """The credential variables of ``name`` that are set (even partially): the operator's
    sign that this gateway is meant to be real."""
    return [variable for variable, value in _credentials(name, settings).items() if value]


def is_configured(name: GatewayName, settings: Settings) -> bool:
    """Every credential the gateway needs is set."""
    return all(_credentials(name, settings).values())


def simulated_gateways(settings: Settings) -> list[GatewayName]:
    """The gateways that run against a mounted simulator; raises :class:`GatewayModeError`.

    * ``SANDBOX_GATEWAYS=true``: every gateway is simulated — refused with ``APP_ENV=production``
      and refused when any gateway's credentials are set (a real gateway and a simulator never
      share a process);
    * ``SANDBOX_GATEWAYS=false``, or ``APP_ENV=production``: none;
    * unset: every gateway in the pure demo (no credentials at all), otherwise none — a
      gateway without credentials beside a real one is left out, never simulated.
    """
    production = settings.is_production
    credentials = [v for name in GATEWAY_NAMES for v in credential_variables(name, settings)]
    if settings.sandbox_gateways is True:
        if production:
            raise GatewayModeError(
                "SANDBOX_GATEWAYS=true is refused with APP_ENV=production: a simulator lets "
                "whoever drives it invent payments. Unset SANDBOX_GATEWAYS, or use another APP_ENV."
            )
        if credentials:
            raise GatewayModeError(
                "SANDBOX_GATEWAYS=true, but gateway credentials are set "
                f"({', '.join(credentials)}): a real gateway and a simulator never run in one "
                "process. Unset SANDBOX_GATEWAYS to use the real gateways, or unset the "
                "credentials for a demo; point the connectors at standalone simulators "
                "(`pixwave sandbox …`, MERCADOPAGO_BASE_URL, EFI_BASE_URL) to test with both."
            )
        return list(GATEWAY_NAMES)
    if settings.sandbox_gateways is False or production or credentials:
        return []
    return list(GATEWAY_NAMES)


def timeouts(settings: Settings) -> Timeouts:
    return Timeouts(connect=settings.gateway_connect_timeout, read=settings.gateway_read_timeout)


def build_gateway(
    name: GatewayName,
    settings: Settings,
    *,
    sandbox_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utcnow,
) -> PixGateway:
    """One connector; ``sandbox_url`` (the simulator's base URL) selects the simulator.

    ``clock`` is the simulator's (movable) clock when there is one, so that expiry and webhook
    timestamps agree between the two sides. Raises ValueError on unusable configuration.
    """
    match name:
        case "mercadopago":
            if sandbox_url is not None:
                return MercadoPagoConnector(
                    access_token=SANDBOX_MERCADOPAGO_TOKEN,
                    webhook_secret=MercadoPagoSimConfig().webhook_secret,
                    base_url=sandbox_url,
                    timeouts=timeouts(settings),
                    payouts_enabled=True,
                    payer_email=settings.mercadopago_payer_email,
                    webhook_tolerance_seconds=settings.mercadopago_webhook_tolerance_seconds,
                    transport=transport,
                    clock=clock,
                )
            assert settings.mercadopago_access_token is not None
            return MercadoPagoConnector(
                access_token=settings.mercadopago_access_token,
                webhook_secret=settings.mercadopago_webhook_secret,
                base_url=settings.mercadopago_base_url,
                timeouts=timeouts(settings),
                payouts_enabled=settings.mercadopago_payouts_enabled,
                payer_email=settings.mercadopago_payer_email,
                webhook_tolerance_seconds=settings.mercadopago_webhook_tolerance_seconds,
                transport=transport,
                clock=clock,
            )
        case "efi":
            if sandbox_url is not None:
                return EfiConnector(
                    client_id=SANDBOX_EFI_CLIENT_ID,
                    client_secret=SANDBOX_EFI_CLIENT_SECRET,
                    pix_key=EfiSimConfig().pix_key,
                    base_url=sandbox_url,
                    timeouts=timeouts(settings),
                    # The simulator calls from loopback: the shared secret is the check.
                    webhook_auth=EfiWebhookAuth(
                        mtls_header=None,
                        hmac_secret=SANDBOX_EFI_WEBHOOK_HMAC,
                        allowed_ips=frozenset(),
                    ),
                    transport=transport,
                    clock=clock,
                )
            assert settings.gerencianet_client_id is not None
            assert settings.gerencianet_client_secret is not None
            assert settings.gerencianet_pix_key is not None
            return EfiConnector(
                client_id=settings.gerencianet_client_id,
                client_secret=settings.gerencianet_client_secret,
                pix_key=settings.gerencianet_pix_key,
                base_url=settings.efi_url,
                certificate_path=settings.gerencianet_certificate_path,
                timeouts=timeouts(settings),
                webhook_auth=EfiWebhookAuth(
                    mtls_header=settings.efi_webhook_mtls_header,
                    mtls_header_value=settings.efi_webhook_mtls_value,
                    hmac_secret=settings.efi_webhook_hmac,
                    allowed_ips=frozenset(
                        ip.strip()
                        for ip in settings.efi_webhook_allowed_ips.split(",")
                        if ip.strip()
                    ),
                ),
                transport=transport,
                clock=clock,
            )
        case _:
            assert_never(name)


def build_gateways(
    settings: Settings,
    *,
    sandbox_base_url: str | None,
    clocks: Mapping[str, Clock] | None = None,
) -> dict[str, PixGateway]:
    """Every usable gateway by name. ``sandbox_base_url`` is where the simulators are mounted
    (``…/sandbox``); ``clocks`` their clocks. A gateway with neither credentials nor a
    simulator, or with unusable settings (an Efí host over https without its certificate), is
    left out with an error in the log rather than failing every other command; a mix of real
    and simulated gateways raises :class:`GatewayModeError`."""
    gateways: dict[str, PixGateway] = {}
    clocks = clocks or {}
    simulated = simulated_gateways(settings)
    for name in GATEWAY_NAMES:
        clock = clocks.get(name, utcnow)
        try:
            if name in simulated:
                if sandbox_base_url is None:
                    log.warning("gateway.disabled", gateway=name, reason="no simulator available")
                    continue
                url = f"{sandbox_base_url.rstrip('/')}/{name}"
                gateways[name] = build_gateway(name, settings, sandbox_url=url, clock=clock)
                log.warning(
                    "gateway.simulated",
                    gateway=name,
                    detail="a built-in simulator, not the real provider: its money is not real",
                )
            elif is_configured(name, settings):
                gateways[name] = build_gateway(name, settings, clock=clock)
            else:
                log.warning("gateway.disabled", gateway=name, reason="no credentials configured")
        except ValueError as exc:
            log.error("gateway.misconfigured", gateway=name, error=str(exc))
    return gateways
