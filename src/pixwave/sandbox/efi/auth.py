"""OAuth2 client credentials as Efí runs them: Basic credentials in, a Bearer token out.

Tokens live on the simulator's clock, so advancing the clock past ``token_ttl_seconds`` expires
them exactly as waiting would; ``revoke_all`` drops them at once so a test can watch a client
re-authenticate after a 401. The bodies of OAuth failures are not documented by Efí (its SDK
only looks at the status code): the simulator answers in RFC 6749's ``{"error",
"error_description"}`` shape on the token route and in Efí's ``{"nome", "mensagem"}`` shape on
the API routes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from fastapi import Request

from pixwave.sandbox.efi.errors import EfiError, efi_error

#: Every scope an Efí Pix application can be granted; the simulator grants them all.
SCOPES = " ".join(
    (
        "cob.write cob.read cobv.write cobv.read lotecobv.write lotecobv.read",
        "pix.write pix.read pix.send webhook.write webhook.read",
        "payloadlocation.write payloadlocation.read",
        "gn.pix.send.read gn.pix.evp.write gn.pix.evp.read gn.balance.read",
        "gn.settings.read gn.settings.write gn.reports.read gn.reports.write",
    )
)


def _oauth_error(status: int, error: str, description: str) -> EfiError:
    headers = {"www-authenticate": 'Basic realm="efi"'} if status == 401 else None
    return EfiError(status, {"error": error, "error_description": description}, headers=headers)


def basic_credentials(request: Request) -> tuple[str, str]:
    """``Authorization: Basic base64(id:secret)`` → ``(id, secret)``, or 401."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise _oauth_error(401, "invalid_client", "Credenciais Basic ausentes")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _oauth_error(401, "invalid_client", "Credenciais Basic malformadas") from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise _oauth_error(401, "invalid_client", "Credenciais Basic malformadas")
    return client_id, client_secret


def check_grant(raw: bytes) -> None:
    """The body must be JSON ``{"grant_type": "client_credentials"}`` (what the SDK sends)."""
    try:
        body = json.loads(raw, parse_float=Decimal) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or "grant_type" not in body:
        raise _oauth_error(400, "invalid_request", "Informe grant_type no corpo JSON")
    if body["grant_type"] != "client_credentials":
        raise _oauth_error(400, "unsupported_grant_type", "Apenas client_credentials é suportado")


class TokenStore:
    """Issued Bearer tokens and their expiry on the simulated clock."""

    def __init__(self) -> None:
        self._expiry: dict[str, datetime] = {}

    def issue(self, now: datetime, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + timedelta(seconds=ttl_seconds)
        return token

    def check(self, request: Request, now: datetime) -> None:
        """401 unless the request carries a token this store issued and that is still live."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self._expiry.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= now:
            raise efi_error(
                401,
                "nao_autorizado",
                "Token de acesso ausente, inválido ou expirado",
            )

    def revoke_all(self) -> int:
        revoked = len(self._expiry)
        self._expiry.clear()
        return revoked

    def live(self, now: datetime) -> int:
        return sum(1 for expiry in self._expiry.values() if expiry > now)


def credentials_match(expected: str | None, given: str) -> bool:
    """``None`` accepts anything; otherwise compare in constant time."""
    return expected is None or hmac.compare_digest(expected.encode(), given.encode())
