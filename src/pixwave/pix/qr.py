"""QR rendering of BR Codes, in memory only: the API returns the image, it never writes files."""

from __future__ import annotations

import base64
import io

import segno

__all__ = ["qr_png_base64", "render_qr_png"]

_BORDER = 4
"""Quiet zone in modules; 4 is the QR standard's minimum, below it some phone cameras fail."""


def render_qr_png(text: str, *, scale: int = 8) -> bytes:
    """Render ``text`` as a PNG QR code with error correction level M.

    Level M is what PSPs use for Pix: it survives some smudging while keeping a dense
    ~150-character payload readable on low-end cameras. ``boost_error`` is off so the level is
    predictable rather than varying with the payload length. Text is stored as UTF-8 so that
    the bytes in the symbol are exactly the bytes the BR Code CRC was computed over, even for a
    parsed code with a non-ASCII name.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    qr = segno.make_qr(text, error="m", boost_error=False, encoding="utf-8")
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=_BORDER)
    return buffer.getvalue()


def qr_png_base64(text: str, *, scale: int = 8) -> str:
    """Return the PNG as base64 text, the form the BCB API's ``imagemQrcode`` and our JSON use."""
    return base64.b64encode(render_qr_png(text, scale=scale)).decode("ascii")
