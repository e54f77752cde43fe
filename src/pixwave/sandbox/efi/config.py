"""Settings of the Efí simulator: the standard account's, and how its homologation behaves."""

from __future__ import annotations

from pydantic import Field

from pixwave.sandbox.pixapi.config import PixAccountConfig

#: The account's random key when none is configured; fixed so restarts keep QR codes payable.
DEFAULT_PIX_KEY = "6c3b7f1e-2a4d-4e8b-9f10-3d5a7c9e1b24"


class EfiSimConfig(PixAccountConfig):
    """One Efí account: the standard account's settings, Efí's key and homologation knobs."""

    pix_key: str = Field(
        default=DEFAULT_PIX_KEY,
        description="The account's key (an EVP by default); cobs and sends use it.",
    )
    magic_amounts: bool = Field(
        default=False, description="Apply Efí homologation's magic values (R$0.01–R$20.00)."
    )
