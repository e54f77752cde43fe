"""txid and endToEndId: generation, validation and parsing."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixwave.pix import (
    EndToEndId,
    PixFormatError,
    generate_end_to_end_id,
    generate_return_id,
    generate_txid,
    is_valid_end_to_end_id,
    is_valid_txid,
    parse_end_to_end_id,
    validate_end_to_end_id,
    validate_return_id,
    validate_txid,
)

ALPHANUMERIC = set(string.ascii_letters + string.digits)
E2E_EXAMPLE = "E12345678202009091221abcdef12345"
RTR_EXAMPLE = "D12345678202009091000abcde123456"


class TestGenerateTxid:
    def test_default_is_32_alphanumerics(self) -> None:
        """The default txid has 32 characters from [a-zA-Z0-9]."""
        txid = generate_txid()
        assert len(txid) == 32
        assert set(txid) <= ALPHANUMERIC

    @pytest.mark.parametrize("length", [26, 35])
    def test_bounds_are_allowed(self, length: int) -> None:
        """26 and 35, the limits of PUT /cob, are valid lengths."""
        assert len(generate_txid(length)) == length

    @pytest.mark.parametrize("length", [25, 36])
    def test_out_of_range_length_is_a_programming_error(self, length: int) -> None:
        """Asking for a txid the API would refuse raises at once."""
        with pytest.raises(ValueError, match=r"26\.\.35"):
            generate_txid(length)

    def test_txids_are_unpredictable(self) -> None:
        """Two generated txids differ (secrets-backed, ~190 bits)."""
        assert generate_txid() != generate_txid()

    @settings(max_examples=50)
    @given(st.integers(26, 35))
    def test_generated_txid_validates(self, length: int) -> None:
        """Every generated txid passes the charge validation."""
        assert is_valid_txid(generate_txid(length))


class TestValidateTxid:
    def test_charge_txid_needs_26_characters(self) -> None:
        """A 25-character txid is too short for PUT /cob."""
        with pytest.raises(PixFormatError) as info:
            validate_txid("a" * 25)
        assert info.value.code == "invalid_txid"
        assert "26..35" in info.value.message

    def test_relaxed_mode_accepts_short_txid(self) -> None:
        """Pix objects and queries accept 1..35 characters."""
        assert validate_txid("a", for_cob=False) == "a"

    def test_relaxed_mode_still_caps_at_35(self) -> None:
        """Even relaxed, 36 characters is too long."""
        assert not is_valid_txid("a" * 36, for_cob=False)

    def test_empty_txid_is_rejected(self) -> None:
        """An empty txid is invalid in both modes."""
        assert not is_valid_txid("", for_cob=False)

    def test_bad_character_is_reported_with_position(self) -> None:
        """A dash is named along with its index."""
        with pytest.raises(PixFormatError) as info:
            validate_txid("abc-" + "a" * 30)
        assert info.value.position == 3
        assert "'-'" in info.value.message

    def test_non_ascii_letter_is_rejected(self) -> None:
        """Accented letters are not in [a-zA-Z0-9]."""
        assert not is_valid_txid("ç" * 30)


class TestGenerateEndToEndId:
    def test_layout(self) -> None:
        """E + ISPB + yyyyMMddHHmm + 11 alphanumerics = 32 characters."""
        value = generate_end_to_end_id("12345678", datetime(2020, 9, 9, 12, 21, 59, tzinfo=UTC))
        assert len(value) == 32
        assert value.startswith("E12345678202009091221")
        assert set(value) <= ALPHANUMERIC

    def test_timestamp_is_converted_to_utc(self) -> None:
        """A São Paulo time (UTC-3) is written as the UTC minute."""
        at = datetime(2020, 9, 9, 9, 21, tzinfo=timezone(timedelta(hours=-3)))
        assert generate_end_to_end_id("12345678", at)[9:21] == "202009091221"

    def test_naive_datetime_is_rejected(self) -> None:
        """A naive datetime is ambiguous, so it is refused rather than guessed."""
        with pytest.raises(ValueError, match="timezone-aware"):
            generate_end_to_end_id("12345678", datetime(2020, 9, 9, 12, 21))

    def test_default_time_is_now(self) -> None:
        """Without a time the id carries the current UTC minute."""
        before = datetime.now(UTC).replace(second=0, microsecond=0)
        parsed = parse_end_to_end_id(generate_end_to_end_id("12345678"))
        assert before <= parsed.timestamp <= datetime.now(UTC)

    @pytest.mark.parametrize("ispb", ["1234567", "123456789", "1234567-"])
    def test_bad_ispb_is_rejected(self, ispb: str) -> None:
        """The ISPB must be exactly 8 alphanumerics."""
        with pytest.raises(ValueError, match="ISPB"):
            generate_end_to_end_id(ispb)

    def test_alphanumeric_ispb_is_upper_cased(self) -> None:
        """Alphanumeric ISPBs (API Pix 2.9.0) are accepted and written upper-case."""
        assert generate_end_to_end_id("ab345678")[1:9] == "AB345678"

    def test_return_id_starts_with_d(self) -> None:
        """generate_return_id produces an rtrId with the same layout and prefix D."""
        value = generate_return_id("12345678", datetime(2020, 9, 9, 10, 0, tzinfo=UTC))
        assert value.startswith("D12345678202009091000")
        assert validate_return_id(value) == value


class TestParseEndToEndId:
    def test_example_is_split_into_parts(self) -> None:
        """The BCB example yields its ISPB, UTC minute and sequence."""
        assert parse_end_to_end_id(E2E_EXAMPLE) == EndToEndId(
            value=E2E_EXAMPLE,
            prefix="E",
            ispb="12345678",
            timestamp=datetime(2020, 9, 9, 12, 21, tzinfo=UTC),
            sequence="abcdef12345",
        )

    def test_return_id_is_refused_by_default(self) -> None:
        """An rtrId is a different identifier and is not an endToEndId."""
        with pytest.raises(PixFormatError) as info:
            validate_end_to_end_id(RTR_EXAMPLE)
        assert info.value.code == "invalid_end_to_end_id"
        assert "'E'" in info.value.message

    def test_return_id_is_accepted_when_allowed(self) -> None:
        """With allow_return_id the D prefix parses and is flagged."""
        assert parse_end_to_end_id(RTR_EXAMPLE, allow_return_id=True).is_return_id

    def test_validate_return_id_refuses_e_prefix(self) -> None:
        """validate_return_id accepts only the D prefix."""
        with pytest.raises(PixFormatError, match="'D'"):
            validate_return_id(E2E_EXAMPLE)

    def test_wrong_length_is_rejected(self) -> None:
        """An endToEndId has exactly 32 characters."""
        with pytest.raises(PixFormatError, match="32 characters, found 31"):
            validate_end_to_end_id(E2E_EXAMPLE[:-1])

    def test_bad_character_is_reported_with_position(self) -> None:
        """A non-alphanumeric character is named with its index."""
        with pytest.raises(PixFormatError) as info:
            validate_end_to_end_id(E2E_EXAMPLE[:25] + "_" + E2E_EXAMPLE[26:])
        assert info.value.position == 25

    def test_impossible_timestamp_is_rejected(self) -> None:
        """Month 13 is not a time, so the id is malformed."""
        bad = E2E_EXAMPLE[:13] + "13" + E2E_EXAMPLE[15:]
        with pytest.raises(PixFormatError, match="yyyyMMddHHmm"):
            validate_end_to_end_id(bad)

    def test_letters_in_timestamp_are_rejected(self) -> None:
        """The timestamp part is digits only."""
        assert not is_valid_end_to_end_id(E2E_EXAMPLE[:9] + "2020O9091221" + E2E_EXAMPLE[21:])


class TestEndToEndIdProperties:
    @settings(max_examples=200)
    @given(
        st.text(string.digits + string.ascii_uppercase, min_size=8, max_size=8),
        st.datetimes(
            min_value=datetime(2020, 11, 16),  # hypothesis wants naive bounds
            max_value=datetime(2099, 12, 31),
            timezones=st.just(UTC),
        ),
    )
    def test_generate_then_parse_round_trips(self, ispb: str, at: datetime) -> None:
        """Parsing a generated id gives back the ISPB and the UTC minute."""
        parsed = parse_end_to_end_id(generate_end_to_end_id(ispb, at))
        assert parsed.ispb == ispb
        assert parsed.timestamp == at.replace(second=0, microsecond=0)
        assert len(parsed.sequence) == 11
