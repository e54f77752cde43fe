"""Settings of an API Pix simulator: the account it plays and its PSP."""

from __future__ import annotations

from pydantic import Field, field_validator

from pixwave.pix import parse_pix_key, validate_cnpj
from pixwave.sandbox.core import SimulatorConfig

#: The account's random key when none is configured; fixed so restarts keep QR codes payable.
DEFAULT_PIX_KEY = "9e1d3b5f-7a2c-4e6b-8d0f-1a3c5e7b9d2f"
#: The receiving company's CNPJ when none is configured (check digits valid, obviously fake).
DEFAULT_CNPJ = "11222333000181"


class PixAccountConfig(SimulatorConfig):
    """What every API Pix simulator has: the account's credentials, its key, its tokens."""

    client_id: str | None = Field(
        default=None, description="Required Basic user; None accepts any credentials."
    )
    client_secret: str | None = Field(
        default=None, description="Required Basic password; None accepts any credentials."
    )
    pix_key: str = Field(
        default=DEFAULT_PIX_KEY,
        description="The account's key (an EVP by default); cobs use it.",
    )
    token_ttl_seconds: int = Field(default=3600, gt=0, description="OAuth token lifetime.")
    require_https_webhook: bool = Field(
        default=False, description="Refuse http:// webhook URLs, as production PSPs do."
    )

    @field_validator("pix_key")
    @classmethod
    def _canonical_key(cls, value: str) -> str:
        """Stored as the DICT writes it, so a charge's ``chave`` compares equal to it."""
        return parse_pix_key(value).value


class PixApiSimConfig(PixAccountConfig):
    """One bank account behind the standard API Pix."""

    gateway: str = Field(
        default="pixapi", description="The gateway this simulator plays (its instance name)."
    )
    cnpj: str = Field(
        default=DEFAULT_CNPJ, description="The receiving company's CNPJ (shown by GET webhook)."
    )
    ispb: str = Field(
        default="99999999",
        pattern=r"^[0-9A-Z]{8}$",
        description="The PSP's ISPB: it opens the rtrId of refunds.",
    )
    location_host: str = Field(
        default="pix.example.com/qr/v2/",
        max_length=44,
        description="Where charges' payload locations live (no scheme; a 32-hex id follows).",
    )

    @field_validator("cnpj")
    @classmethod
    def _valid_cnpj(cls, value: str) -> str:
        return validate_cnpj(value)
