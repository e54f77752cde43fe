"""The single error type of the Pix rules, with codes that callers can branch on.

The package raises one exception class so that API handlers can catch it in one place and turn
``code`` into a stable machine-readable error while showing ``message`` to a human. Messages name
the field, the position (0-based character index) and what was expected versus what was found,
because a merchant pasting a broken "copia e cola" needs to know *where* it broke.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PixErrorCode", "PixFormatError"]


class PixErrorCode(StrEnum):
    """Stable error codes; the values are part of the public API and never change meaning."""

    BRCODE_CRC_MISMATCH = "brcode_crc_mismatch"
    """The CRC in field 63 does not match the payload."""
    BRCODE_LENGTH = "brcode_length"
    """A declared length runs past the end of the payload (or of its template)."""
    BRCODE_MALFORMED = "brcode_malformed"
    """The text is not TLV: a non-numeric ID or length, a repeated ID, a bad CRC field."""
    BRCODE_FIELD_ORDER = "brcode_field_order"
    """ID 00 is not first or ID 63 is not last."""
    BRCODE_MISSING_FIELD = "brcode_missing_field"
    """A mandatory field is absent."""
    BRCODE_NOT_PIX = "brcode_not_pix"
    """No merchant account template (26–51) carries the Pix GUI."""
    BRCODE_INVALID_FIELD = "brcode_invalid_field"
    """A field is present but its value breaks the EMV/BCB rules."""
    BRCODE_FIELD_TOO_LONG = "brcode_field_too_long"
    """A builder input does not fit its field."""
    BRCODE_INVALID_RECURRENCE = "brcode_invalid_recurrence"
    """Template 80 (Pix Automático) lacks the Pix GUI or a usable recurrence location (80-25)."""
    INVALID_AMOUNT = "invalid_amount"
    """An amount is not a valid non-negative centavo value for its context."""
    INVALID_PIX_KEY = "invalid_pix_key"
    INVALID_CPF = "invalid_cpf"
    INVALID_CNPJ = "invalid_cnpj"
    INVALID_DOCUMENT = "invalid_document"
    """Neither a CPF nor a CNPJ (wrong length once punctuation is removed)."""
    INVALID_TXID = "invalid_txid"
    INVALID_END_TO_END_ID = "invalid_end_to_end_id"


class PixFormatError(ValueError):
    """A Pix value (BR Code, key, document, identifier) is malformed.

    It subclasses :class:`ValueError` so generic validation layers (pydantic validators, typer
    callbacks) treat it as bad input without knowing this package.
    """

    code: PixErrorCode
    message: str
    field: str | None
    position: int | None

    def __init__(
        self,
        code: PixErrorCode,
        message: str,
        *,
        field: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.position = position

    def __repr__(self) -> str:
        return f"PixFormatError(code={self.code.value!r}, message={self.message!r})"
