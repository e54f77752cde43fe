"""Personal data and secrets never reach a log line.

Logs are copied to Logstash, Elasticsearch and whoever reads Kibana, for months: a CPF, a Pix
key, a payer's name or an API token written there is a leak (LGPD) that no retention policy
undoes. So every line goes through :func:`mask_event` before it is rendered — our own
(structlog) lines and every library's (stdlib) lines alike — and masking works two ways:

* **by key**: a value under a key that names a secret (``password``, ``client_secret``,
  ``authorization``, ``hmac``, ``certificate`` …) or a person (``name``, ``nome``,
  ``payer_name`` …) is replaced whole, whatever it looks like;
* **by value**: any string, under any key and inside free text (an exception message, an
  httpx error quoting a URL), has CPFs, CNPJs, e-mails, phones, EVP keys, API tokens, bearer
  tokens, ``whsec_`` secrets and PEM blocks replaced.

Masks say what was there (``[cpf]``, ``[email]`` …) so a line stays readable. Identifiers of our
own (``txn_…``, ``usr_…``: a prefix and a ULID), amounts and other numbers are left alone: only
strings are scanned, and a digit run glued to a letter or ``_`` is never a document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

from pixwave.pix.documents import is_valid_cnpj

__all__ = ["API_TOKEN_PREFIX", "mask_event", "mask_text", "mask_value"]

#: Our API tokens (`accounts.service.TOKEN_PREFIX`, checked equal by the tests): kept here so
#: that configuring logs does not import the accounts package and its models.
API_TOKEN_PREFIX = "pxw_"  # noqa: S105 - a label, not a secret

REDACTED = "[redacted]"
NAME = "[name]"

#: Keys whose value is a secret, matched on the lower-cased key with ``-`` read as ``_``.
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "senha",
        "secret",
        "client_secret",
        "webhook_secret",
        "signing_secret",
        "hmac",
        "signature",
        "x_signature",
        "token",
        "api_token",
        "access_token",
        "refresh_token",
        "id_token",
        "bearer",
        "api_key",
        "apikey",
        "private_key",
        "certificate",
        "cert",
        "client_cert",
        "pem",
    }
)
#: Key endings that name a secret (``mercadopago_access_token``, ``efi_webhook_hmac`` …).
_SECRET_SUFFIXES = (
    "_password",
    "_secret",
    "_token",
    "_hmac",
    "_api_key",
    "_private_key",
    "_certificate",
)
#: Keys whose value is a document or a Pix key, whatever its shape.
_PERSONAL_KEYS = frozenset(
    {
        "cpf",
        "cnpj",
        "document",
        "documento",
        "tax_id",
        "pix_key",
        "chave",
        "chave_pix",
        "email",
        "phone",
        "telefone",
    }
)
#: Keys whose value names a person.
_NAME_KEYS = frozenset(
    {
        "name",
        "nome",
        "full_name",
        "first_name",
        "last_name",
        "payer_name",
        "holder_name",
        "receiver_name",
        "sender_name",
        "owner_name",
        "customer_name",
        "beneficiary_name",
        "nome_favorecido",
        "favorecido",
        "pagador",
        "devedor",
        "recebedor",
    }
)
#: Keys whose value is an identifier of ours or of a request: never read as an EVP Pix key
#: (a client's ``X-Request-ID`` is often a UUID), though still scanned for the rest.
_ID_SUFFIX = "_id"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.DOTALL)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_TOKENS = re.compile(
    rf"(?<![A-Za-z0-9]){re.escape(API_TOKEN_PREFIX)}[A-Za-z0-9_-]+"
    r"|(?<![A-Za-z0-9])whsec_[A-Za-z0-9+/=_-]+"
    r"|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"  # JWTs (OAuth access tokens)
    r"|\b(?:APP_USR|TEST)-[0-9]{6,}-[A-Za-z0-9-]+"  # Mercado Pago access tokens
)
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:hmac|token|access_token|secret|client_secret|password|signature)=)[^&\s\"']+"
)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&*+/=?^_{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_EVP = re.compile(r"(?<![0-9A-Fa-f-])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b")
#: A phone written as a Pix key (``+5511998765432``) or printed (``+55 (11) 99876-5432``).
_PHONE = re.compile(r"\+[1-9][0-9]?[0-9]?[ .-]?(?:\(?[0-9]{2}\)?[ .-]?)?[0-9]{4,5}[ .-]?[0-9]{4}\b")
_CNPJ_PRINTED = re.compile(
    r"(?<![A-Za-z0-9_])[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-[0-9]{2}(?![A-Za-z0-9_])"
)
_CPF_PRINTED = re.compile(r"(?<![A-Za-z0-9_.])[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}(?![0-9])")
_BARE_DIGITS = re.compile(r"(?<![A-Za-z0-9_.+-])([0-9]{14}|[0-9]{11})(?![A-Za-z0-9_])")
#: A bare alphanumeric CNPJ (from July 2026) is masked only when its check digits hold, so that
#: other 14-character codes survive.
_CNPJ_ALNUM = re.compile(r"(?<![A-Za-z0-9_])[0-9A-Z]{12}[0-9]{2}(?![A-Za-z0-9_])")


def _bare_document(match: re.Match[str]) -> str:
    return "[cpf]" if len(match.group(1)) == 11 else "[cnpj]"


def _alnum_cnpj(match: re.Match[str]) -> str:
    text = match.group(0)
    return "[cnpj]" if not text.isdigit() and is_valid_cnpj(text) else text


def mask_text(text: str, *, identifier: bool = False) -> str:
    """Replace every secret and personal datum found in ``text``; ``identifier``: the text is
    an id (request, task), where a UUID is not a Pix key."""
    if len(text) < 6:
        return text  # too short to hold any of them
    text = _PEM.sub("[pem]", text)
    text = _BEARER.sub(r"\1 [token]", text)
    text = _TOKENS.sub("[token]", text)
    text = _SECRET_QUERY.sub(r"\1[redacted]", text)
    text = _EMAIL.sub("[email]", text)
    if not identifier:
        text = _EVP.sub("[evp]", text)
    text = _CNPJ_PRINTED.sub("[cnpj]", text)
    text = _CPF_PRINTED.sub("[cpf]", text)
    text = _PHONE.sub("[phone]", text)
    text = _BARE_DIGITS.sub(_bare_document, text)
    return _CNPJ_ALNUM.sub(_alnum_cnpj, text)


def _normal(key: str) -> str:
    return key.lower().replace("-", "_")


def _is_secret_key(key: str) -> bool:
    return key in _SECRET_KEYS or key.endswith(_SECRET_SUFFIXES)


def mask_value(value: Any, key: str = "") -> Any:
    """``value`` with everything sensitive masked, recursing into mappings and sequences.

    Returns new containers rather than editing them: one event dict is rendered by several
    handlers (stdout, Logstash), and a caller's own dict must not change because it was logged.
    """
    if value is None or isinstance(value, bool | int | float):
        return value  # amounts, counts, flags
    name = _normal(key)
    if name and (_is_secret_key(name) or name in _PERSONAL_KEYS):
        return REDACTED
    if name in _NAME_KEYS:
        return NAME if isinstance(value, str) else mask_value(value)
    if isinstance(value, str):
        return mask_text(value, identifier=name.endswith(_ID_SUFFIX) or name == "id")
    if isinstance(value, Mapping):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(item, key) for item in value]
    if isinstance(value, bytes | bytearray):
        return mask_text(value.decode("utf-8", "replace"))
    if isinstance(value, BaseException):
        return mask_text(repr(value))
    return value


#: Keys of the event dict that hold machinery, not data (an exception is masked when it is
#: rendered: see `logging.py`).
_UNMASKED = frozenset({"exc_info", "stack_info", "_record", "_from_structlog", "level", "logger"})


def mask_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask every value of the event dict, at any depth."""
    return {
        key: value if key in _UNMASKED else mask_value(value, key)
        for key, value in event_dict.items()
    }
