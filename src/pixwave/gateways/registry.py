"""Which gateways this deployment has, built from Settings.

Adding a provider is a new package plus one arm in :func:`build_gateway`'s ``match`` — the
``assert_never`` makes mypy point at every place a new name must be handled.

A gateway without credentials runs against its built-in simulator (see ``Settings.use_sandbox``),
reached over HTTP like the real thing, with the simulator's own well-known credentials.
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


def timeouts(settings: Settings) -> Timeouts:
    return Timeouts(connect=settings.gateway_connect_timeout, read=settings.gateway_read_timeout)


def is_configured(name: GatewayName, settings: Settings) -> bool:
    match name:
        case "mercadopago":
            return settings.mercadopago_configured
        case "efi":
            return settings.efi_configured
        case _:
            assert_never(name)


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


def sandboxed(settings: Settings) -> list[GatewayName]:
    """The gateways that run against a built-in simulator in this configuration."""
    return [name for name in GATEWAY_NAMES if settings.use_sandbox(is_configured(name, settings))]


def build_gateways(
    settings: Settings,
    *,
    sandbox_base_url: str | None,
    clocks: Mapping[str, Clock] | None = None,
) -> dict[str, PixGateway]:
    """Every usable gateway by name. ``sandbox_base_url`` is where the simulators are mounted
    (``…/sandbox``); ``clocks`` their clocks. A gateway with neither credentials nor a
    simulator, or with unusable settings (an Efí host over https without its certificate), is
    left out with an error in the log rather than failing every other command."""
    gateways: dict[str, PixGateway] = {}
    clocks = clocks or {}
    for name in GATEWAY_NAMES:
        clock = clocks.get(name, utcnow)
        try:
            if settings.use_sandbox(is_configured(name, settings)):
                if sandbox_base_url is None:
                    log.warning("gateway.disabled", gateway=name, reason="no simulator available")
                    continue
                url = f"{sandbox_base_url.rstrip('/')}/{name}"
                gateways[name] = build_gateway(name, settings, sandbox_url=url, clock=clock)
            elif is_configured(name, settings):
                gateways[name] = build_gateway(name, settings, clock=clock)
            else:
                log.warning("gateway.disabled", gateway=name, reason="no credentials configured")
        except ValueError as exc:
            log.error("gateway.misconfigured", gateway=name, error=str(exc))
    return gateways
