"""Banks that speak the Central Bank's standard "API Pix": charges, received Pix, refunds."""

from pixwave.gateways.pixapi.connector import DEFAULT_SCOPES, PixApiConnector, SendNotSupported
from pixwave.gateways.pixapi.webhooks import WebhookAuth

__all__ = ["DEFAULT_SCOPES", "PixApiConnector", "SendNotSupported", "WebhookAuth"]
