"""HTTP to Efí: the standard API Pix client (``gateways/pixapi/client.py``) with Efí's choices.

Every Efí call — the token call included — presents the account's client certificate. The
bearer token comes from ``POST /oauth/token`` on the API's own host, asked for with the JSON
body Efí's SDK sends (``{"grant_type": "client_credentials"}``, no scope: Efí grants the
application's), cached until a minute before it expires, and refreshed once on a 401.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import httpx

from pixwave.gateways.efi.mapping import GATEWAY, map_error
from pixwave.gateways.http import Timeouts
from pixwave.gateways.pixapi.client import (
    OAUTH_OPERATION,
    TOKEN_REFRESH_MARGIN,
    CertificateRules,
    PixApiClient,
    TokenManager,
    TokenRequestBody,
    parse_json,
    resolve_certificate,
)

__all__ = [
    "CERTIFICATE",
    "OAUTH_OPERATION",
    "TOKEN_PATH",
    "TOKEN_REFRESH_MARGIN",
    "EfiClient",
    "TokenManager",
    "parse_json",
    "resolve_certificate",
]

#: Who the certificate errors name, and the setting they point at.
CERTIFICATE: Final = CertificateRules("Efí", "GERENCIANET_CERTIFICATE_PATH")
#: The token route, on the API's host.
TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 - a URL path, not a password


class EfiClient(PixApiClient):
    """Authenticated calls to one Efí account; raises only GatewayError subclasses."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        certificate_path: str | None,
        timeouts: Timeouts,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            gateway=GATEWAY,
            base_url=base_url,
            token_url=TOKEN_PATH,
            client_id=client_id,
            client_secret=client_secret,
            certificate_path=certificate_path,
            certificate=CERTIFICATE,
            timeouts=timeouts,
            clock=clock,
            map_error=map_error,
            scopes=None,
            token_body=TokenRequestBody.JSON,
            transport=transport,
        )
