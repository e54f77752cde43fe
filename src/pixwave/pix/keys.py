"""Pix keys (chaves): detection, validation and the canonical form the DICT stores.

Rules follow the DICT API (v1.8.0) with these decisions:

* **Ambiguity.** Eleven bare digits are a CPF, never a phone: the DICT writes phones with ``+``.
  An 11-digit string with wrong CPF check digits is rejected with a hint to add ``+55``.
* **Phones.** ``+55`` numbers must be Brazilian-shaped: a two-digit area code (DDD) not starting
  with 0 and an 8- or 9-digit subscriber number. Unassigned DDDs such as 10 are accepted, because
  the DICT manual's own example (``+5510998765432``) uses one. Other country codes are accepted
  when they match the DICT pattern
  ``^\\+[1-9][0-9]\\d{1,14}$``, so the wallet never refuses a key the DICT itself may hold; the
  DICT lookup is the final word. Spaces, dashes, dots and parentheses after the ``+`` are
  formatting and are removed.
* **CPF/CNPJ.** Accepted with or without printed punctuation; stored bare, CNPJ letters upper-case.
* **E-mail.** Lower-cased, then matched against the DICT pattern; at most 77 characters.
* **EVP.** Any UUID-shaped value (the DICT's own example is not version 4), stored lower-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pixwave.pix.documents import (
    normalize_cnpj,
    normalize_cpf,
    validate_cnpj,
    validate_cpf,
)
from pixwave.pix.errors import PixErrorCode, PixFormatError

__all__ = ["MAX_KEY_LENGTH", "PixKey", "PixKeyType", "parse_pix_key", "validate_pix_key"]

MAX_KEY_LENGTH = 77
"""Longest key the DICT accepts (also the limit of BR Code field 26-01)."""

_EMAIL_RE = re.compile(
    r"[a-z0-9.!#$&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
_PHONE_DICT_RE = re.compile(r"\+[1-9][0-9]\d{1,14}", re.ASCII)
_PHONE_BR_RE = re.compile(r"\+55[1-9][0-9]\d{8,9}", re.ASCII)
_PHONE_FORMATTING = str.maketrans("", "", " -.()")
_EVP_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DOCUMENT_RE = re.compile(r"[0-9A-Za-z./-]+")


class PixKeyType(StrEnum):
    """Key types as the DICT and the BCB API name them (lower-case values)."""

    CPF = "cpf"
    CNPJ = "cnpj"
    EMAIL = "email"
    PHONE = "phone"
    EVP = "evp"


@dataclass(frozen=True, slots=True)
class PixKey:
    """A validated key in canonical form, safe to compare, store and put in a BR Code."""

    type: PixKeyType
    value: str

    def __str__(self) -> str:
        return self.value


def _invalid(message: str) -> PixFormatError:
    return PixFormatError(PixErrorCode.INVALID_PIX_KEY, message, field="key")


def _check_length(value: str) -> None:
    if len(value) > MAX_KEY_LENGTH:
        raise _invalid(f"Pix key is {len(value)} characters long; the limit is {MAX_KEY_LENGTH}")


def _as_cpf(raw: str) -> PixKey:
    try:
        return PixKey(PixKeyType.CPF, validate_cpf(raw))
    except PixFormatError as exc:
        hint = ""
        if normalize_cpf(raw).isascii() and normalize_cpf(raw).isdigit():
            hint = " (a phone key must be written in E.164 form, e.g. +5511987654321)"
        raise _invalid(f"not a valid CPF key: {exc.message}{hint}") from exc


def _as_cnpj(raw: str) -> PixKey:
    try:
        return PixKey(PixKeyType.CNPJ, validate_cnpj(raw))
    except PixFormatError as exc:
        raise _invalid(f"not a valid CNPJ key: {exc.message}") from exc


def _as_email(raw: str) -> PixKey:
    value = raw.lower()
    _check_length(value)
    if not _EMAIL_RE.fullmatch(value):
        raise _invalid("the key is not an e-mail address the DICT accepts")
    return PixKey(PixKeyType.EMAIL, value)


def _as_phone(raw: str) -> PixKey:
    value = raw.translate(_PHONE_FORMATTING)
    if not _PHONE_DICT_RE.fullmatch(value):
        raise _invalid(
            "the key is not an E.164 phone number: expected '+', a country code and up to "
            "15 digits with no other characters"
        )
    if value.startswith("+55") and not _PHONE_BR_RE.fullmatch(value):
        raise _invalid(
            "the key is not a Brazilian phone number: expected +55, a 2-digit area code "
            "(DDD) not starting with 0 and 8 or 9 digits"
        )
    return PixKey(PixKeyType.PHONE, value)


def _as_evp(raw: str) -> PixKey:
    value = raw.lower()
    if not _EVP_RE.fullmatch(value):
        raise _invalid(
            "the key is not a random key (EVP): expected a UUID such as "
            "123e4567-e89b-12d3-a456-426655440000"
        )
    return PixKey(PixKeyType.EVP, value)


_VALIDATORS = {
    PixKeyType.CPF: _as_cpf,
    PixKeyType.CNPJ: _as_cnpj,
    PixKeyType.EMAIL: _as_email,
    PixKeyType.PHONE: _as_phone,
    PixKeyType.EVP: _as_evp,
}


def parse_pix_key(raw: str) -> PixKey:
    """Detect the type of ``raw``, validate it and return it in canonical form.

    Detection is by shape, in an order that cannot be ambiguous: ``@`` means e-mail (whose
    local part may start with ``+``), a leading ``+`` means phone, a 36-character UUID means
    EVP, and what is left must be a CPF (11 characters without punctuation) or a CNPJ (14).
    """
    value = raw.strip()
    if not value:
        raise _invalid("Pix key is empty")
    if "@" in value:
        return _as_email(value)
    if value.startswith("+"):
        return _as_phone(value)
    if len(value) == 36 and value.count("-") == 4:
        return _as_evp(value)
    if _DOCUMENT_RE.fullmatch(value):
        bare = normalize_cnpj(value)
        if len(bare) == 11:
            return _as_cpf(value)
        if len(bare) == 14:
            return _as_cnpj(value)
    _check_length(value)
    raise _invalid(
        "cannot tell the type of the Pix key: expected a CPF (11 digits), a CNPJ "
        "(14 characters), an e-mail, a phone starting with '+' or a random key (UUID)"
    )


def validate_pix_key(raw: str, key_type: PixKeyType | str) -> PixKey:
    """Validate ``raw`` as the type the caller states (as the BCB API's ``tipoChave`` does).

    Unlike :func:`parse_pix_key` nothing is guessed, so a valid CNPJ sent as ``cpf`` fails.
    """
    try:
        kind = PixKeyType(str(key_type).lower())
    except ValueError:
        allowed = ", ".join(t.value for t in PixKeyType)
        raise _invalid(f"unknown Pix key type {key_type!r}; expected one of {allowed}") from None
    value = raw.strip()
    if not value:
        raise _invalid("Pix key is empty")
    return _VALIDATORS[kind](value)
