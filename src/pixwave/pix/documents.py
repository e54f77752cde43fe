"""CPF and CNPJ: normalisation, check digits, and generators for tests and sandboxes.

Both documents are Pix keys and identify payers and receivers, so they are validated with their
check digits rather than by shape alone. CNPJ follows IN RFB nº 2.229/2024: from July 2026 the
first 12 characters may be letters, each character being worth ``ord(c) - 48``; existing numeric
CNPJs validate unchanged under the same rule.
"""

from __future__ import annotations

import random
import re
import string
from typing import Literal

from pixwave.pix.errors import PixErrorCode, PixFormatError

__all__ = [
    "DocumentKind",
    "generate_cnpj",
    "generate_cpf",
    "is_valid_cnpj",
    "is_valid_cpf",
    "normalize_cnpj",
    "normalize_cpf",
    "validate_cnpj",
    "validate_cpf",
    "validate_document",
]

DocumentKind = Literal["cpf", "cnpj"]

_PUNCTUATION = str.maketrans("", "", ".-/")
_CPF_RE = re.compile(r"[0-9]{11}")
_CNPJ_RE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CNPJ_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_BASE_ALPHABET = string.digits + string.ascii_uppercase


def normalize_cpf(raw: str) -> str:
    """Strip surrounding blanks and the ``.``/``-``/``/`` of printed forms (``123.456.789-09``)."""
    return raw.strip().translate(_PUNCTUATION)


def normalize_cnpj(raw: str) -> str:
    """Strip punctuation and upper-case, since alphanumeric CNPJs are defined in upper case."""
    return raw.strip().translate(_PUNCTUATION).upper()


def _cpf_check_digits(base: str) -> str:
    """Return the two check digits for the 9-digit CPF ``base``."""
    digits = [int(c) for c in base]
    for _ in range(2):
        weight = len(digits) + 1
        total = sum(d * w for d, w in zip(digits, range(weight, 1, -1), strict=True))
        digits.append(total * 10 % 11 % 10)
    return f"{digits[-2]}{digits[-1]}"


def _cnpj_check_digits(base: str) -> str:
    """Return the two check digits for the 12-character CNPJ ``base`` (numeric or not)."""
    values = [ord(c) - 48 for c in base]
    result = ""
    for weights in (_CNPJ_WEIGHTS_1, _CNPJ_WEIGHTS_2):
        remainder = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
        digit = 0 if remainder < 2 else 11 - remainder
        values.append(digit)
        result += str(digit)
    return result


def validate_cpf(raw: str) -> str:
    """Return the 11-digit CPF or raise ``PixFormatError(code="invalid_cpf")`` saying why."""
    cpf = normalize_cpf(raw)
    if len(cpf) != 11:
        raise PixFormatError(
            PixErrorCode.INVALID_CPF,
            f"CPF must have 11 digits, found {len(cpf)} characters",
        )
    if not _CPF_RE.fullmatch(cpf):
        position = next(i for i, c in enumerate(cpf) if c not in string.digits)
        raise PixFormatError(
            PixErrorCode.INVALID_CPF,
            f"CPF must contain only digits, found {cpf[position]!r} at index {position}",
            position=position,
        )
    if len(set(cpf)) == 1:
        raise PixFormatError(
            PixErrorCode.INVALID_CPF,
            f"CPF {cpf} is a repeated-digit sequence, which the Receita never issues",
        )
    expected = _cpf_check_digits(cpf[:9])
    if cpf[9:] != expected:
        raise PixFormatError(
            PixErrorCode.INVALID_CPF,
            f"CPF {cpf} has check digits {cpf[9:]}, expected {expected}",
            position=9,
        )
    return cpf


def validate_cnpj(raw: str) -> str:
    """Return the 14-character CNPJ, upper-case, or raise ``PixFormatError(code="invalid_cnpj")``.

    Letters are accepted in the first 12 positions (alphanumeric CNPJ); the check digits never are.
    """
    cnpj = normalize_cnpj(raw)
    if len(cnpj) != 14:
        raise PixFormatError(
            PixErrorCode.INVALID_CNPJ,
            f"CNPJ must have 14 characters, found {len(cnpj)}",
        )
    if not _CNPJ_RE.fullmatch(cnpj):
        for position, char in enumerate(cnpj):
            allowed = _CNPJ_BASE_ALPHABET if position < 12 else string.digits
            if char not in allowed:
                what = "a digit or letter A-Z" if position < 12 else "a check digit 0-9"
                raise PixFormatError(
                    PixErrorCode.INVALID_CNPJ,
                    f"CNPJ character at index {position} must be {what}, found {char!r}",
                    position=position,
                )
    if len(set(cnpj)) == 1:
        raise PixFormatError(
            PixErrorCode.INVALID_CNPJ,
            f"CNPJ {cnpj} is a repeated-character sequence, which the Receita never issues",
        )
    expected = _cnpj_check_digits(cnpj[:12])
    if cnpj[12:] != expected:
        raise PixFormatError(
            PixErrorCode.INVALID_CNPJ,
            f"CNPJ {cnpj} has check digits {cnpj[12:]}, expected {expected}",
            position=12,
        )
    return cnpj


def is_valid_cpf(raw: str) -> bool:
    """Say whether ``raw`` is a CPF with valid check digits (punctuation allowed)."""
    try:
        validate_cpf(raw)
    except PixFormatError:
        return False
    return True


def is_valid_cnpj(raw: str) -> bool:
    """Say whether ``raw`` is a numeric or alphanumeric CNPJ with valid check digits."""
    try:
        validate_cnpj(raw)
    except PixFormatError:
        return False
    return True


def validate_document(raw: str) -> tuple[DocumentKind, str]:
    """Tell a CPF from a CNPJ by length and validate it; returns ``(kind, normalised)``.

    Payer data (``devedor``) carries either one; the length after removing punctuation is the
    only unambiguous discriminator (11 vs 14).
    """
    normalised = normalize_cnpj(raw)
    if len(normalised) == 11:
        return "cpf", validate_cpf(normalised)
    if len(normalised) == 14:
        return "cnpj", validate_cnpj(normalised)
    raise PixFormatError(
        PixErrorCode.INVALID_DOCUMENT,
        f"a CPF has 11 digits and a CNPJ 14 characters; found {len(normalised)}",
    )


def generate_cpf(rng: random.Random) -> str:
    """Return a random valid CPF (digits only); pass a seeded ``rng`` for reproducible tests."""
    while True:
        base = "".join(rng.choice(string.digits) for _ in range(9))
        if len(set(base)) > 1:
            return base + _cpf_check_digits(base)


def generate_cnpj(rng: random.Random, alphanumeric: bool = False) -> str:
    """Return a random valid CNPJ; ``alphanumeric=True`` draws the 12-character base from 0-9A-Z."""
    alphabet = _CNPJ_BASE_ALPHABET if alphanumeric else string.digits
    while True:
        base = "".join(rng.choice(alphabet) for _ in range(12))
        if len(set(base)) > 1:
            return base + _cnpj_check_digits(base)
