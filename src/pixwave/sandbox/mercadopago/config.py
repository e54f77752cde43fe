"""Settings of the Mercado Pago simulator; ``PATCH /_sandbox/config`` changes them at run time."""

from __future__ import annotations

from pydantic import Field, field_validator

from pixwave.pix import parse_pix_key
from pixwave.sandbox.core import SimulatorConfig

#: A fixed random key (EVP), so codes printed by one run still read the same in the next.
DEFAULT_COLLECTOR_PIX_KEY = "4a4b1c2e-8f3d-4c6b-9e1a-2d7f5b8c3a10"


class MercadoPagoSimConfig(SimulatorConfig):
    """What a Mercado Pago application and its collector account look like to the simulator."""

    access_token: str | None = Field(
        default=None,
        description="The only Bearer token accepted; None accepts any non-empty token.",
    )
    webhook_secret: str = Field(
        default="sandbox-mercadopago-webhook-secret",
        min_length=1,
        description="The application's webhook secret: the HMAC key of x-signature.",
    )
    collector_id: int = Field(default=1234567, gt=0, description="The seller's MP user id.")
    collector_pix_key: str = Field(
        default=DEFAULT_COLLECTOR_PIX_KEY,
        description="The seller's Pix key, written into every QR code.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000/sandbox/mercadopago",
        description="Where this simulator is reachable from outside; only used for ticket_url.",
    )
    payouts_enabled: bool = Field(
        default=True, description="Money Out is a product MP enables per account; off = 403."
    )

    @field_validator("collector_pix_key")
    @classmethod
    def _canonical_key(cls, value: str) -> str:
        return parse_pix_key(value).value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
