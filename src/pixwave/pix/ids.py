"""Pix identifiers: ``txid`` (the receiver's charge id) and ``endToEndId`` (the SPI's Pix id).

Decisions:

* ``txid`` is ``[a-zA-Z0-9]{26,35}`` for charges we create (``PUT /cob``, ``PUT /cobv``) and the
  relaxed ``[a-zA-Z0-9]{1,35}`` where the BCB API accepts any txid (``Pix`` objects, queries).
  Static BR Codes carry at most 25 characters in field 62-05; that rule lives in ``brcode``.
* An ``endToEndId`` always starts with ``E``. The refund id ``rtrId`` has the same layout but
  starts with ``D``; it is a different identifier, so the ``*_end_to_end_id`` functions accept
  it only when asked to (``allow_return_id=True``) and :func:`validate_return_id` accepts only it.
  Validation checks the full layout, including that the timestamp is a real UTC minute.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pixwave.pix.errors import PixErrorCode, PixFormatError

__all__ = [
    "ALPHANUMERIC",
    "COB_TXID_MAX_LENGTH",
    "COB_TXID_MIN_LENGTH",
    "END_TO_END_ID_LENGTH",
    "TXID_MAX_LENGTH",
    "EndToEndId",
    "generate_end_to_end_id",
    "generate_return_id",
    "generate_txid",
    "is_valid_end_to_end_id",
    "is_valid_txid",
    "parse_end_to_end_id",
    "validate_end_to_end_id",
    "validate_return_id",
    "validate_txid",
]

ALPHANUMERIC = string.ascii_letters + string.digits
COB_TXID_MIN_LENGTH = 26
COB_TXID_MAX_LENGTH = 35
TXID_MAX_LENGTH = 35
END_TO_END_ID_LENGTH = 32

_ALNUM_RE = re.compile(r"[a-zA-Z0-9]+")
_ISPB_RE = re.compile(r"[0-9A-Z]{8}")
_TIMESTAMP_FORMAT = "%Y%m%d%H%M"


def _first_bad_char(value: str) -> int:
    return next(i for i, c in enumerate(value) if c not in ALPHANUMERIC)


def generate_txid(length: int = 32) -> str:
    """Return a random txid for a charge we create; ``secrets`` makes it unguessable."""
    if not COB_TXID_MIN_LENGTH <= length <= COB_TXID_MAX_LENGTH:
        raise ValueError(
            f"txid length must be {COB_TXID_MIN_LENGTH}..{COB_TXID_MAX_LENGTH}, got {length}"
        )
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def validate_txid(value: str, *, for_cob: bool = True) -> str:
    """Return ``value`` if it is a valid txid, else raise ``PixFormatError(code="invalid_txid")``.

    ``for_cob=True`` applies the 26–35 rule of charges we create; ``False`` the relaxed 1–35.
    """
    low = COB_TXID_MIN_LENGTH if for_cob else 1
    if not low <= len(value) <= TXID_MAX_LENGTH:
        raise PixFormatError(
            PixErrorCode.INVALID_TXID,
            f"txid must have {low}..{TXID_MAX_LENGTH} characters, found {len(value)}",
            field="txid",
        )
    if not _ALNUM_RE.fullmatch(value):
        position = _first_bad_char(value)
        raise PixFormatError(
            PixErrorCode.INVALID_TXID,
            f"txid may contain only letters and digits, found {value[position]!r} "
            f"at index {position}",
            field="txid",
            position=position,
        )
    return value


def is_valid_txid(value: str, *, for_cob: bool = True) -> bool:
    """Say whether ``value`` is a valid txid (see :func:`validate_txid`)."""
    try:
        validate_txid(value, for_cob=for_cob)
    except PixFormatError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class EndToEndId:
    """The parts of an ``endToEndId`` (prefix ``E``) or ``rtrId`` (prefix ``D``)."""

    value: str
    prefix: Literal["E", "D"]
    ispb: str
    """ISPB of the PSP that created the id: the payer's for a Pix, the refunder's for a refund."""
    timestamp: datetime
    """The UTC minute written in the id; the SPI tolerates ±12 h from processing time."""
    sequence: str
    """The 11 alphanumerics that make the id unique within that PSP and minute."""

    @property
    def is_return_id(self) -> bool:
        """True for an ``rtrId`` (a refund), False for a Pix ``endToEndId``."""
        return self.prefix == "D"


def _generate(prefix: str, ispb: str, at: datetime | None) -> str:
    ispb_norm = ispb.upper()
    if not _ISPB_RE.fullmatch(ispb_norm):
        raise ValueError(f"ISPB must be 8 digits or upper-case letters, got {ispb!r}")
    if at is None:
        at = datetime.now(UTC)
    elif at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the timestamp must be timezone-aware; the id carries UTC time")
    stamp = at.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)
    sequence = "".join(secrets.choice(ALPHANUMERIC) for _ in range(11))
    return f"{prefix}{ispb_norm}{stamp}{sequence}"


def generate_end_to_end_id(ispb: str, at: datetime | None = None) -> str:
    """Return a new ``endToEndId``: ``E`` + ISPB + ``yyyyMMddHHmm`` (UTC) + 11 alphanumerics."""
    return _generate("E", ispb, at)


def generate_return_id(ispb: str, at: datetime | None = None) -> str:
    """Return a new refund ``rtrId``: same layout as an ``endToEndId`` with prefix ``D``."""
    return _generate("D", ispb, at)


def parse_end_to_end_id(value: str, *, allow_return_id: bool = False) -> EndToEndId:
    """Split an ``endToEndId`` into ISPB, UTC timestamp and sequence, validating each part."""

    def fail(message: str, position: int | None = None) -> PixFormatError:
        return PixFormatError(
            PixErrorCode.INVALID_END_TO_END_ID,
            message,
            field="endToEndId",
            position=position,
        )

    if len(value) != END_TO_END_ID_LENGTH:
        raise fail(f"endToEndId must have {END_TO_END_ID_LENGTH} characters, found {len(value)}")
    if not _ALNUM_RE.fullmatch(value):
        position = _first_bad_char(value)
        raise fail(
            f"endToEndId may contain only letters and digits, found {value[position]!r} "
            f"at index {position}",
            position,
        )
    prefixes = "ED" if allow_return_id else "E"
    prefix = value[0]
    if prefix not in prefixes:
        expected = "'E' or 'D'" if allow_return_id else "'E'"
        raise fail(f"endToEndId must start with {expected}, found {prefix!r}", 0)
    stamp = value[9:21]
    try:
        if not stamp.isdigit():
            raise ValueError(stamp)
        timestamp = datetime.strptime(stamp, _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise fail(
            f"endToEndId characters 9..20 must be a UTC time yyyyMMddHHmm, found {stamp!r}", 9
        ) from None
    return EndToEndId(
        value=value,
        prefix="D" if prefix == "D" else "E",
        ispb=value[1:9],
        timestamp=timestamp,
        sequence=value[21:],
    )


def validate_end_to_end_id(value: str, *, allow_return_id: bool = False) -> str:
    """Return ``value`` if it is a well-formed ``endToEndId``, else raise ``PixFormatError``."""
    parse_end_to_end_id(value, allow_return_id=allow_return_id)
    return value


def is_valid_end_to_end_id(value: str, *, allow_return_id: bool = False) -> bool:
    """Say whether ``value`` is a well-formed ``endToEndId``."""
    try:
        parse_end_to_end_id(value, allow_return_id=allow_return_id)
    except PixFormatError:
        return False
    return True


def validate_return_id(value: str) -> str:
    """Return ``value`` if it is a well-formed refund ``rtrId`` (prefix ``D``)."""
    parsed = parse_end_to_end_id(value, allow_return_id=True)
    if not parsed.is_return_id:
        raise PixFormatError(
            PixErrorCode.INVALID_END_TO_END_ID,
            f"rtrId must start with 'D', found {value[0]!r}",
            field="rtrId",
            position=0,
        )
    return value
