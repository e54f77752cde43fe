"""OAuth2 client credentials as Efí runs them: the standard's token store and Basic credentials
(``sandbox/pixapi/auth.py``), with Efí's JSON token request and its full set of scopes.

The bodies of OAuth failures are not documented by Efí (its SDK only looks at the status code):
the simulator answers in RFC 6749's ``{"error", "error_description"}`` shape on the token route
and in Efí's ``{"nome", "mensagem"}`` shape on the API routes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Final

from pixwave.sandbox.pixapi.auth import TokenStore, basic_credentials, credentials_match
from pixwave.sandbox.pixapi.errors import Errors

__all__ = [
    "SCOPES",
    "SCOPE_SET",
    "TokenStore",
    "basic_credentials",
    "check_grant",
    "credentials_match",
]

#: Every scope an Efí Pix application can be granted; the simulator grants them all.
SCOPES: Final = " ".join(
    (
        "cob.write cob.read cobv.write cobv.read lotecobv.write lotecobv.read",
        "pix.write pix.read pix.send webhook.write webhook.read",
        "payloadlocation.write payloadlocation.read",
        "gn.pix.send.read gn.pix.evp.write gn.pix.evp.read gn.balance.read",
        "gn.settings.read gn.settings.write gn.reports.read gn.reports.write",
    )
)
SCOPE_SET: Final = frozenset(SCOPES.split())


def check_grant(raw: bytes, errors: Errors) -> None:
    """The body must be JSON ``{"grant_type": "client_credentials"}`` (what the SDK sends)."""
    try:
        body = json.loads(raw, parse_float=Decimal) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "grant_type" not in body:
        raise errors.oauth(400, "invalid_request", "Informe grant_type no corpo JSON")
    if body["grant_type"] != "client_credentials":
        raise errors.oauth(400, "unsupported_grant_type", "Apenas client_credentials é suportado")
