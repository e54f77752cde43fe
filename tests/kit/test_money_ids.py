"""Pure helpers: centavo conversions and time-ordered ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixwave.kit.ids import new_id, ulid
from pixwave.kit.money import MAX_AMOUNT, format_brl, from_decimal_string, to_decimal_string


class TestMoney:
    @given(st.integers(min_value=0, max_value=MAX_AMOUNT))
    def test_round_trip(self, centavos: int) -> None:
        """Centavos → "units.cents" → centavos is the identity."""
        assert from_decimal_string(to_decimal_string(centavos)) == centavos

    @pytest.mark.parametrize(
        ("text", "centavos"), [("0.01", 1), ("10", 1_000), ("10.5", 1_050), ("123.45", 12_345)]
    )
    def test_parse(self, text: str, centavos: int) -> None:
        """Gateway strings parse exactly, with no float on the way."""
        assert from_decimal_string(text) == centavos

    @pytest.mark.parametrize("text", ["", "1,00", "1.001", "-1.00", "1e3", "abc", ".5"])
    def test_parse_rejects(self, text: str) -> None:
        """Anything but plain decimal is refused."""
        with pytest.raises(ValueError, match="not a decimal amount"):
            from_decimal_string(text)

    def test_format_brl(self) -> None:
        """Humans read R$ with thousands dots and a decimal comma."""
        assert format_brl(1_234_567) == "R$ 12.345,67"
        assert format_brl(-5) == "-R$ 0,05"


class TestIds:
    def test_ids_are_strictly_increasing(self) -> None:
        """Ten thousand ids in a row sort in creation order, even within one millisecond."""
        ids = [ulid() for _ in range(10_000)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    def test_prefix_and_length(self) -> None:
        """Ids carry their type and fit the 32-char columns."""
        value = new_id("txn")
        assert value.startswith("txn_")
        assert len(value) == 30
