"""CRC-16/CCITT-FALSE, the checksum that closes every BR Code (field 63).

Parameters: polynomial 0x1021, initial value 0xFFFF, no input or output reflection, no final
XOR; the check value of ``b"123456789"`` is ``0x29B1``. A 256-entry table turns the bitwise
algorithm into one lookup per byte, which matters when a service validates every pasted code.
"""

from __future__ import annotations

__all__ = ["crc16", "crc16_hex"]

_POLY = 0x1021
_INIT = 0xFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc16(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` as an int in 0..0xFFFF."""
    crc = _INIT
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def crc16_hex(payload: str) -> str:
    """Return the CRC of ``payload`` as the 4 upper-case hex digits field 63 carries.

    The payload is encoded as UTF-8 because BR Code lengths count characters but the checksum is
    computed over bytes; callers pass everything up to and including the literal ``"6304"``.
    """
    return f"{crc16(payload.encode('utf-8')):04X}"
