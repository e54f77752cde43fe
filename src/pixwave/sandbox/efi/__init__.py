"""Efí (ex-Gerencianet) Pix API simulator: BCB API Pix + Efí's ``/v2/gn`` extensions."""

from pixwave.sandbox.efi.config import EfiSimConfig
from pixwave.sandbox.efi.simulator import EFI_ROUTES, EfiSimulator

__all__ = ["EFI_ROUTES", "EfiSimConfig", "EfiSimulator"]
