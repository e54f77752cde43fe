"""CPF and CNPJ check digits, normalisation and generators."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pixwave.pix import (
    PixFormatError,
    generate_cnpj,
    generate_cpf,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_cnpj,
    normalize_cpf,
    validate_cnpj,
    validate_cpf,
    validate_document,
)

seeded_rngs = st.integers(0, 2**32 - 1).map(random.Random)
"""A seeded Random per example: generators stay reproducible and shrinking stays cheap."""


def replace_at(value: str, index: int, char: str) -> str:
    return value[:index] + char + value[index + 1 :]


class TestCpf:
    @pytest.mark.parametrize("cpf", ["12345678909", "11144477735", "52998224725"])
    def test_published_examples_are_valid(self, cpf: str) -> None:
        """Well-known valid CPFs pass the check-digit test."""
        assert is_valid_cpf(cpf)

    def test_printed_form_is_normalised(self) -> None:
        """The printed form 123.456.789-09 validates and comes back as bare digits."""
        assert validate_cpf(" 123.456.789-09 ") == "12345678909"

    def test_wrong_check_digits_report_expected_and_found(self) -> None:
        """The error names the check digits found and the ones expected."""
        with pytest.raises(PixFormatError) as info:
            validate_cpf("12345678908")
        assert info.value.code == "invalid_cpf"
        assert "08" in info.value.message
        assert "expected 09" in info.value.message

    @pytest.mark.parametrize("digit", list(string.digits))
    def test_repeated_digits_are_rejected(self, digit: str) -> None:
        """Sequences like 111.111.111-11 satisfy the arithmetic but are never issued."""
        assert not is_valid_cpf(digit * 11)

    def test_wrong_length_is_rejected(self) -> None:
        """A CPF must have exactly 11 digits."""
        with pytest.raises(PixFormatError, match="11 digits"):
            validate_cpf("1234567890")

    def test_letters_are_rejected_with_their_position(self) -> None:
        """A non-digit is reported with its index."""
        with pytest.raises(PixFormatError) as info:
            validate_cpf("1234567890A")
        assert info.value.position == 10

    def test_normalize_strips_only_punctuation(self) -> None:
        """normalize_cpf removes dots, dashes and slashes but keeps everything else."""
        assert normalize_cpf("123.456/789-09") == "12345678909"


class TestCnpj:
    @pytest.mark.parametrize("cnpj", ["11222333000181", "12345678000195"])
    def test_numeric_examples_are_valid(self, cnpj: str) -> None:
        """Numeric CNPJs issued before 2026 validate unchanged."""
        assert is_valid_cnpj(cnpj)

    def test_alphanumeric_example_is_valid(self) -> None:
        """The Receita's alphanumeric example 12ABC34501DE35 is valid."""
        assert is_valid_cnpj("12ABC34501DE35")

    def test_alphanumeric_lower_case_and_punctuation_are_normalised(self) -> None:
        """Lower-case letters and printed punctuation are normalised away."""
        assert validate_cnpj("12.abc.345/01de-35") == "12ABC34501DE35"

    def test_letter_in_check_digits_is_rejected(self) -> None:
        """The two check digits are always numeric, even in alphanumeric CNPJs."""
        with pytest.raises(PixFormatError) as info:
            validate_cnpj("12ABC34501DE3A")
        assert info.value.position == 13
        assert "check digit" in info.value.message

    def test_symbol_in_base_is_rejected(self) -> None:
        """Only 0-9 and A-Z are allowed in the first 12 characters."""
        with pytest.raises(PixFormatError) as info:
            validate_cnpj("12ABC3450*DE35")
        assert info.value.position == 9

    def test_wrong_check_digits_report_expected_and_found(self) -> None:
        """The error names the check digits found and the ones expected."""
        with pytest.raises(PixFormatError) as info:
            validate_cnpj("11222333000182")
        assert info.value.code == "invalid_cnpj"
        assert "expected 81" in info.value.message

    def test_repeated_characters_are_rejected(self) -> None:
        """00.000.000/0000-00 has valid arithmetic but is not a CNPJ."""
        assert not is_valid_cnpj("00000000000000")

    def test_normalize_upper_cases(self) -> None:
        """normalize_cnpj upper-cases because alphanumeric CNPJs are defined in upper case."""
        assert normalize_cnpj("12abc34501de35") == "12ABC34501DE35"


class TestValidateDocument:
    def test_eleven_digits_is_a_cpf(self) -> None:
        """An 11-digit document is treated as a CPF."""
        assert validate_document("529.982.247-25") == ("cpf", "52998224725")

    def test_fourteen_characters_is_a_cnpj(self) -> None:
        """A 14-character document is treated as a CNPJ."""
        assert validate_document("12ABC34501DE35") == ("cnpj", "12ABC34501DE35")

    def test_other_length_is_neither(self) -> None:
        """Any other length is rejected with the generic document code."""
        with pytest.raises(PixFormatError) as info:
            validate_document("123456")
        assert info.value.code == "invalid_document"

    def test_invalid_cpf_keeps_cpf_code(self) -> None:
        """A CPF-shaped document with bad digits reports invalid_cpf."""
        with pytest.raises(PixFormatError) as info:
            validate_document("12345678900")
        assert info.value.code == "invalid_cpf"


class TestGenerators:
    @settings(max_examples=200)
    @given(seeded_rngs)
    def test_generated_cpf_is_valid(self, rng: random.Random) -> None:
        """generate_cpf always returns a valid, bare 11-digit CPF."""
        cpf = generate_cpf(rng)
        assert len(cpf) == 11
        assert validate_cpf(cpf) == cpf

    @settings(max_examples=200)
    @given(seeded_rngs, st.booleans())
    def test_generated_cnpj_is_valid(self, rng: random.Random, alphanumeric: bool) -> None:
        """generate_cnpj always returns a valid 14-character CNPJ of the requested kind."""
        cnpj = generate_cnpj(rng, alphanumeric=alphanumeric)
        assert validate_cnpj(cnpj) == cnpj
        if not alphanumeric:
            assert cnpj.isdigit()

    def test_same_seed_gives_same_documents(self) -> None:
        """Generators are reproducible from a seeded Random, for stable fixtures."""
        assert generate_cpf(random.Random(7)) == generate_cpf(random.Random(7))
        assert generate_cnpj(random.Random(7), True) == generate_cnpj(random.Random(7), True)


class TestSingleDigitChange:
    """Mod-11 check digits catch most, not all, substitutions.

    A first check digit of 0 can stand for remainder 0 or 10 (CPF) or 0 or 1 (CNPJ), so a
    substitution that moves between the two goes unseen; likewise an alphanumeric CNPJ cannot
    tell apart characters whose values differ by 11 (O and Z). The properties below state
    exactly what is guaranteed, and the blind spots are pinned as examples.
    """

    @settings(max_examples=200)
    @given(seeded_rngs, st.integers(9, 10), st.sampled_from(string.digits))
    def test_cpf_check_digit_change_is_detected(
        self, rng: random.Random, index: int, digit: str
    ) -> None:
        """Changing either CPF check digit always invalidates it."""
        cpf = generate_cpf(rng)
        assume(cpf[index] != digit)
        assert not is_valid_cpf(replace_at(cpf, index, digit))

    @settings(max_examples=200)
    @given(seeded_rngs, st.integers(0, 8), st.sampled_from(string.digits))
    def test_cpf_base_digit_change_is_detected(
        self, rng: random.Random, index: int, digit: str
    ) -> None:
        """Changing a CPF base digit is detected whenever the first check digit is not 0."""
        cpf = generate_cpf(rng)
        assume(cpf[9] != "0" and cpf[index] != digit)
        assert not is_valid_cpf(replace_at(cpf, index, digit))

    @settings(max_examples=200)
    @given(
        seeded_rngs,
        st.booleans(),
        st.integers(0, 13),
        st.sampled_from(string.digits),
    )
    def test_cnpj_digit_change_is_detected(
        self, rng: random.Random, alphanumeric: bool, index: int, digit: str
    ) -> None:
        """A digit-for-digit substitution is detected whenever the first check digit is not 0."""
        cnpj = generate_cnpj(rng, alphanumeric=alphanumeric)
        assume(cnpj[12] != "0" and cnpj[index].isdigit() and cnpj[index] != digit)
        assert not is_valid_cnpj(replace_at(cnpj, index, digit))

    def test_cpf_blind_spot_example(self) -> None:
        """67552420804 and 77552420804 are both valid: the 10→0 collapse hides the change."""
        assert is_valid_cpf("67552420804")
        assert is_valid_cpf("77552420804")

    def test_alphanumeric_cnpj_blind_spot_example(self) -> None:
        """O (31) and Z (42) differ by 11, so swapping them keeps the check digits."""
        assert is_valid_cnpj("79GEBXECD3JO05")
        assert is_valid_cnpj("79GEBXECD3JZ05")
