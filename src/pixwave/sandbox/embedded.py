"""Build simulators for `pixwave sandbox …` and for mounting inside the embedded API.

The embedded default (`pixwave up`) mounts each simulator under ``/sandbox/<name>`` of the API
itself and points the connectors there over loopback HTTP, so `make run` needs no other
process. State lives in that one process: with several API workers, run the simulators as
their own servers (`pixwave sandbox efi --port 9002`) and point the connectors at them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from pixwave.config import Settings
from pixwave.gateways.registry import (
    SANDBOX_EFI_CLIENT_ID,
    SANDBOX_EFI_CLIENT_SECRET,
    SANDBOX_EFI_WEBHOOK_HMAC,
    SANDBOX_MERCADOPAGO_TOKEN,
    GatewayName,
    sandboxed,
)
from pixwave.sandbox.core import Simulator
from pixwave.sandbox.efi import EfiSimConfig, EfiSimulator
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig, MercadoPagoSimulator

#: Where the embedded API mounts the simulators.
MOUNT_PREFIX = "/sandbox"


def build_simulator(
    name: str,
    *,
    public_url: str,
    webhook_url: str | None = None,
    time_scale: float = 1.0,
    **extra: Any,
) -> Simulator[Any]:
    """A simulator that accepts the registry's sandbox credentials."""
    if name == "mercadopago":
        return MercadoPagoSimulator(
            MercadoPagoSimConfig(
                access_token=SANDBOX_MERCADOPAGO_TOKEN,
                public_url=public_url,
                webhook_url=webhook_url,
                time_scale=time_scale,
                **extra,
            )
        )
    if name == "efi":
        return EfiSimulator(
            EfiSimConfig(
                client_id=SANDBOX_EFI_CLIENT_ID,
                client_secret=SANDBOX_EFI_CLIENT_SECRET,
                webhook_url=webhook_url,
                time_scale=time_scale,
                **extra,
            )
        )
    raise ValueError(f"no simulator named {name!r} (mercadopago, efi)")


def internal_base_url(settings: Settings, port: int | None = None) -> str:
    """How this process reaches its own mounted simulators (loopback, never 0.0.0.0)."""
    host = settings.host if settings.host not in {"0.0.0.0", "::", ""} else "127.0.0.1"  # noqa: S104
    return f"http://{host}:{port or settings.port}{MOUNT_PREFIX}"


def mount_simulators(app: FastAPI, settings: Settings) -> dict[GatewayName, Simulator[Any]]:
    """Mount a simulator for every gateway that runs sandboxed; return them by name."""
    mounted: dict[GatewayName, Simulator[Any]] = {}
    loopback = internal_base_url(settings).removesuffix(MOUNT_PREFIX)
    for name in sandboxed(settings):
        # Efí notifies the URL registered for the account key (MP: the one on each charge).
        webhook_url = (
            f"{loopback}/webhooks/efi?hmac={SANDBOX_EFI_WEBHOOK_HMAC}&ignorar="
            if name == "efi"
            else None
        )
        simulator = build_simulator(
            name,
            public_url=f"{settings.app_url.rstrip('/')}{MOUNT_PREFIX}/{name}",
            webhook_url=webhook_url,
            time_scale=settings.sandbox_time_scale,
        )
        app.mount(f"{MOUNT_PREFIX}/{name}", simulator.app())
        mounted[name] = simulator
    return mounted
