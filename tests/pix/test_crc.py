"""CRC-16/CCITT-FALSE and its role as the BR Code integrity check."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixwave.pix import PixFormatError, build_static_brcode, crc16, crc16_hex, parse_brcode
from tests.pix.vectors import DYNAMIC_VECTOR, STATIC_VECTOR


def bitwise_crc16(data: bytes) -> int:
    """Reference implementation, one bit at a time, straight from the definition."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


class TestCheckValue:
    def test_standard_check_value(self) -> None:
        """The catalogue check value of CRC-16/CCITT-FALSE over "123456789" is 0x29B1."""
        assert crc16(b"123456789") == 0x29B1

    def test_empty_input_is_the_initial_value(self) -> None:
        """With no data the register keeps its 0xFFFF initial value (no final XOR)."""
        assert crc16(b"") == 0xFFFF

    def test_hex_is_four_upper_case_digits(self) -> None:
        """crc16_hex pads to 4 digits and uses upper case, as field 63 requires."""
        assert crc16_hex("123456789") == "29B1"

    def test_hex_is_computed_over_utf8_bytes(self) -> None:
        """Non-ASCII text is checksummed as UTF-8, not as code points or Latin-1."""
        assert crc16_hex("BRASÍLIA") == f"{crc16('BRASÍLIA'.encode()):04X}"
        assert crc16_hex("BRASÍLIA") != f"{crc16('BRASÍLIA'.encode('latin-1')):04X}"


class TestTableMatchesDefinition:
    @settings(max_examples=200)
    @given(st.binary(max_size=300))
    def test_table_driven_equals_bitwise(self, data: bytes) -> None:
        """The lookup-table CRC gives the same result as the bit-by-bit definition."""
        assert crc16(data) == bitwise_crc16(data)


class TestBRCodeRelation:
    @pytest.mark.parametrize("code", [STATIC_VECTOR, DYNAMIC_VECTOR])
    def test_field_63_is_crc_of_everything_before_it(self, code: str) -> None:
        """Field 63 holds the CRC of the payload up to and including the literal "6304"."""
        assert crc16_hex(code[:-4]) == code[-4:]

    @pytest.mark.parametrize("code", [STATIC_VECTOR, DYNAMIC_VECTOR])
    def test_payload_followed_by_its_crc_leaves_zero_residue(self, code: str) -> None:
        """Appending the CRC big-endian to its data makes the CRC of the whole zero."""
        payload = code[:-4].encode()
        assert crc16(payload + int(code[-4:], 16).to_bytes(2, "big")) == 0

    @settings(max_examples=200)
    @given(st.binary(max_size=200))
    def test_residue_is_zero_for_any_data(self, data: bytes) -> None:
        """The zero-residue property holds for arbitrary data, not just the vectors."""
        assert crc16(data + crc16(data).to_bytes(2, "big")) == 0


@st.composite
def single_character_changes(draw: st.DrawFn) -> tuple[str, str]:
    """A valid code and a copy with exactly one character replaced by another printable one."""
    code = draw(
        st.sampled_from([STATIC_VECTOR, DYNAMIC_VECTOR])
        | st.builds(
            lambda amount, txid: build_static_brcode(
                key="pix@bcb.gov.br",
                merchant_name="Loja Exemplo",
                merchant_city="Recife",
                amount_centavos=amount,
                txid=txid,
            ),
            st.integers(1, 10**9),
            st.text(string.ascii_letters + string.digits, min_size=1, max_size=25),
        )
    )
    index = draw(st.integers(0, len(code) - 1))
    replacement = draw(st.sampled_from(string.printable[:95]).filter(lambda c: c != code[index]))
    return code, code[:index] + replacement + code[index + 1 :]


class TestSingleCharacterChange:
    @settings(max_examples=300)
    @given(single_character_changes())
    def test_any_single_change_is_rejected(self, pair: tuple[str, str]) -> None:
        """Changing any one character of a valid code makes parsing fail."""
        original, changed = pair
        parse_brcode(original)
        with pytest.raises(PixFormatError):
            parse_brcode(changed)

    def test_change_in_a_value_is_reported_as_crc_mismatch(self) -> None:
        """A typo inside a field value keeps the TLV frame intact and is caught by the CRC."""
        changed = STATIC_VECTOR.replace("Fulano", "Fulana")
        with pytest.raises(PixFormatError) as info:
            parse_brcode(changed)
        assert info.value.code == "brcode_crc_mismatch"
