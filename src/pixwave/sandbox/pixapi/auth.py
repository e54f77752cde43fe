"""OAuth2 client credentials as the API Pix runs them: Basic credentials in, a Bearer token out.

The token request is RFC 6749 §4.4's: ``application/x-www-form-urlencoded`` with
``grant_type=client_credentials`` and, optionally, the ``scope`` asked for; the token carries
the scopes granted (those asked for, or all the account has), and each route requires the
scope the specification names for it (``cob.write`` …), answering 403 ``AcessoNegado``
without it. Tokens live on the simulator's clock, so advancing the clock past
``token_ttl_seconds`` expires them exactly as waiting would; ``revoke_all`` drops them at once
so a test can watch a client re-authenticate after a 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import parse_qs

from fastapi import Request

from pixwave.sandbox.pixapi.errors import Errors

#: The API Pix scopes of immediate charges, locations, received Pix and webhooks.
STANDARD_SCOPES: Final = frozenset(
    {
        "cob.write",
        "cob.read",
        "pix.write",
        "pix.read",
        "webhook.write",
        "webhook.read",
        "payloadlocation.write",
        "payloadlocation.read",
    }
)


def basic_credentials(request: Request, errors: Errors) -> tuple[str, str]:
    """``Authorization: Basic base64(id:secret)`` → ``(id, secret)``, or 401."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise errors.oauth(401, "invalid_client", "Credenciais Basic ausentes")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.oauth(401, "invalid_client", "Credenciais Basic malformadas") from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise errors.oauth(401, "invalid_client", "Credenciais Basic malformadas")
    return client_id, client_secret


def form_grant(raw: bytes, content_type: str, errors: Errors) -> frozenset[str] | None:
    """RFC 6749's form body: the scopes asked for (None: none named), or 400."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise errors.oauth(
            400, "invalid_request", "Envie application/x-www-form-urlencoded (RFC 6749)"
        )
    try:
        form = parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise errors.oauth(400, "invalid_request", "Corpo do pedido de token malformado") from None
    grant = form.get("grant_type", [])
    if not grant:
        raise errors.oauth(400, "invalid_request", "Informe grant_type")
    if grant != ["client_credentials"]:
        raise errors.oauth(400, "unsupported_grant_type", "Apenas client_credentials é suportado")
    scope = form.get("scope")
    if not scope:
        return None
    return frozenset(scope[0].split())


@dataclass(frozen=True, slots=True)
class Grant:
    expiry: datetime
    scopes: frozenset[str]


class TokenStore:
    """Issued Bearer tokens, their scopes and their expiry on the simulated clock."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}

    def issue(self, now: datetime, ttl_seconds: int, scopes: frozenset[str] = frozenset()) -> str:
        token = secrets.token_urlsafe(32)
        self._grants[token] = Grant(now + timedelta(seconds=ttl_seconds), scopes)
        return token

    def granted(self, request: Request, now: datetime) -> frozenset[str] | None:
        """The scopes of the request's live Bearer token; None when it has none."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        grant = self._grants.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or grant.expiry <= now:
            return None
        return grant.scopes

    def revoke_all(self) -> int:
        revoked = len(self._grants)
        self._grants.clear()
        return revoked

    def live(self, now: datetime) -> int:
        return sum(1 for grant in self._grants.values() if grant.expiry > now)


def credentials_match(expected: str | None, given: str) -> bool:
    """``None`` accepts anything; otherwise compare in constant time."""
    return expected is None or hmac.compare_digest(expected.encode(), given.encode())
