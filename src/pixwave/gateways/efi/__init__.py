"""Efí Bank (ex-Gerencianet): the BCB API Pix plus Efí's ``/v2/gn`` extensions (sends)."""

from pixwave.gateways.efi.connector import HOMOLOGATION_URL, PRODUCTION_URL, EfiConnector
from pixwave.gateways.efi.webhooks import EfiWebhookAuth

__all__ = ["HOMOLOGATION_URL", "PRODUCTION_URL", "EfiConnector", "EfiWebhookAuth"]
