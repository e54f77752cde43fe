"""QR rendering: the PNG must scan back to the exact BR Code."""

from __future__ import annotations

import base64
import io

import PIL.Image
import pytest
import zxingcpp

from pixwave.pix import build_static_brcode, crc16_hex, qr_png_base64, render_qr_png
from tests.pix.vectors import DYNAMIC_VECTOR, STATIC_VECTOR


def scan(png: bytes) -> list[zxingcpp.Barcode]:
    """Decode every QR symbol in the image, as a payer's camera would."""
    return list(zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png))))


class TestRenderQrPng:
    @pytest.mark.parametrize("code", [STATIC_VECTOR, DYNAMIC_VECTOR])
    def test_scans_back_to_the_code(self, code: str) -> None:
        """Decoding the PNG yields exactly the BR Code text."""
        results = scan(render_qr_png(code))
        assert [r.text for r in results] == [code]

    def test_symbol_is_a_qr_code_at_level_m(self) -> None:
        """The symbol is a QR code with error correction level M."""
        (result,) = scan(render_qr_png(STATIC_VECTOR))
        assert result.format == zxingcpp.BarcodeFormat.QRCode
        assert result.ec_level == "M"

    def test_built_code_with_amount_scans(self) -> None:
        """A freshly built code with amount and txid survives rendering."""
        code = build_static_brcode(
            key="pix@bcb.gov.br",
            merchant_name="Padaria São João",
            merchant_city="São Paulo",
            amount_centavos=1999,
            txid="PEDIDO42",
        )
        assert scan(render_qr_png(code))[0].text == code

    def test_non_ascii_payload_is_stored_as_utf8(self) -> None:
        """The bytes in the symbol are the UTF-8 bytes the CRC was computed over."""
        payload = STATIC_VECTOR[:-4].replace("BRASILIA", "BRASÍLIA")
        code = payload + crc16_hex(payload)
        (result,) = scan(render_qr_png(code))
        assert result.text == code
        assert bytes(result.bytes) == code.encode("utf-8")

    def test_output_is_png(self) -> None:
        """The bytes start with the PNG signature."""
        assert render_qr_png(STATIC_VECTOR).startswith(b"\x89PNG\r\n\x1a\n")

    def test_scale_sets_module_size(self) -> None:
        """Doubling the scale doubles the image side (quiet zone included)."""
        small = PIL.Image.open(io.BytesIO(render_qr_png(STATIC_VECTOR, scale=4)))
        large = PIL.Image.open(io.BytesIO(render_qr_png(STATIC_VECTOR, scale=8)))
        assert large.size == (small.size[0] * 2, small.size[1] * 2)

    def test_every_scale_draws_the_same_modules(self) -> None:
        """Scale 8 writes module bytes straight into the rows; downscaled, it is the image
        the general path draws at scale 1 and 3 (pixel for pixel)."""

        def pixels(scale: int) -> list[int]:
            image = PIL.Image.open(io.BytesIO(render_qr_png(STATIC_VECTOR, scale=scale)))
            side = image.size[0] // scale
            return list(
                image.convert("L").resize((side, side), PIL.Image.Resampling.NEAREST).tobytes()
            )

        assert pixels(8) == pixels(1) == pixels(3)

    def test_quiet_zone_is_four_modules(self) -> None:
        """A border of 4 modules is left white around the symbol."""
        image = PIL.Image.open(io.BytesIO(render_qr_png(STATIC_VECTOR, scale=1))).convert("L")
        width, _ = image.size
        version_side = width - 8
        assert (version_side - 17) % 4 == 0
        assert all(image.getpixel((x, 3)) == 255 for x in range(width))
        assert image.getpixel((4, 4)) == 0

    def test_zero_scale_is_refused(self) -> None:
        """A scale below 1 cannot draw modules."""
        with pytest.raises(ValueError, match="scale"):
            render_qr_png(STATIC_VECTOR, scale=0)


class TestQrPngBase64:
    def test_decodes_to_the_same_png(self) -> None:
        """The base64 text is the PNG, ready for a JSON field."""
        encoded = qr_png_base64(STATIC_VECTOR)
        assert base64.b64decode(encoded) == render_qr_png(STATIC_VECTOR)

    def test_scans_back_to_the_code(self) -> None:
        """The base64 image still scans to the BR Code."""
        assert scan(base64.b64decode(qr_png_base64(DYNAMIC_VECTOR)))[0].text == DYNAMIC_VECTOR
