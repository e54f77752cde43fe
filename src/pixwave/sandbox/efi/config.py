"""Settings of the Efí simulator: the account it plays and how its homologation behaves."""

from __future__ import annotations

from pydantic import Field, field_validator

from pixwave.pix import parse_pix_key
from pixwave.sandbox.core import SimulatorConfig

#: The account's random key when none is configured; fixed so restarts keep QR codes payable.
DEFAULT_PIX_KEY = "6c3b7f1e-2a4d-4e8b-9f10-3d5a7c9e1b24"


class EfiSimConfig(SimulatorConfig):
    """One Efí account: its credentials, its Pix key and the sandbox knobs."""

    client_id: str | None = Field(
        default=None, description="Required Basic user; None accepts any credentials."
    )
    client_secret: str | None = Field(
        default=None, description="Required Basic password; None accepts any credentials."
    )
    pix_key: str = Field(
        default=DEFAULT_PIX_KEY,
        description="The account's key (an EVP by default); cobs and sends use it.",
    )
    token_ttl_seconds: int = Field(default=3600, gt=0, description="OAuth token lifetime.")
    magic_amounts: bool = Field(
        default=False, description="Apply Efí homologation's magic values (R$0.01–R$20.00)."
    )
    require_https_webhook: bool = Field(
        default=False, description="Refuse http:// webhook URLs, as production Efí does."
    )

    @field_validator("pix_key")
    @classmethod
    def _canonical_key(cls, value: str) -> str:
        """Stored as the DICT writes it, so a charge's ``chave`` compares equal to it."""
        return parse_pix_key(value).value
