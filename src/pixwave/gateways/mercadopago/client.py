"""The HTTP client for Mercado Pago: one host, a static Bearer token, explicit timeouts.

Every request goes through :class:`~pixwave.gateways.http.GatewayHTTP`, which measures, logs and
classifies it; MP's own error bodies are read by :func:`~.mapping.map_error`.
"""

from __future__ import annotations

import httpx

from pixwave.gateways.http import GatewayHTTP, Timeouts
from pixwave.gateways.mercadopago.mapping import GATEWAY, map_error

DEFAULT_BASE_URL = "https://api.mercadopago.com"


def build_http(
    *,
    access_token: str,
    base_url: str = DEFAULT_BASE_URL,
    timeouts: Timeouts | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> GatewayHTTP:
    """A ``GatewayHTTP`` that authenticates every call with ``Authorization: Bearer``.

    MP tokens do not expire on their own (they are revoked), so there is no refresh: a 401 is
    classified as ``authentication_failed`` and the gateway is taken out until an operator acts.
    """
    return GatewayHTTP(
        gateway=GATEWAY,
        base_url=base_url,
        timeouts=timeouts or Timeouts(),
        map_error=map_error,
        transport=transport,
        headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            "User-Agent": "PixWave",
        },
    )
