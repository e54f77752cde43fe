"""Pix key detection, validation and canonical form."""

from __future__ import annotations

import random
import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixwave.pix import (
    PixFormatError,
    PixKey,
    PixKeyType,
    generate_cnpj,
    generate_cpf,
    parse_pix_key,
    validate_pix_key,
)


def parse_error(raw: str) -> PixFormatError:
    with pytest.raises(PixFormatError) as info:
        parse_pix_key(raw)
    assert info.value.code == "invalid_pix_key"
    return info.value


class TestDocumentKeys:
    def test_cpf_is_detected(self) -> None:
        """Eleven digits with valid check digits are a CPF key."""
        assert parse_pix_key("12345678909") == PixKey(PixKeyType.CPF, "12345678909")

    def test_printed_cpf_is_normalised(self) -> None:
        """A CPF typed with dots and dash is stored bare."""
        assert parse_pix_key("123.456.789-09").value == "12345678909"

    def test_numeric_cnpj_is_detected(self) -> None:
        """Fourteen digits with valid check digits are a CNPJ key."""
        assert parse_pix_key("11.222.333/0001-81") == PixKey(PixKeyType.CNPJ, "11222333000181")

    def test_alphanumeric_cnpj_is_detected_and_upper_cased(self) -> None:
        """An alphanumeric CNPJ in lower case is recognised and stored upper-case."""
        assert parse_pix_key("12abc34501de35") == PixKey(PixKeyType.CNPJ, "12ABC34501DE35")

    def test_invalid_cnpj_says_why(self) -> None:
        """A 14-character value with bad check digits reports the CNPJ problem."""
        assert "CNPJ" in parse_error("11222333000182").message


class TestAmbiguity:
    def test_eleven_digits_never_become_a_phone(self) -> None:
        """A mobile number without '+' is not a phone key; it is read as a CPF and fails."""
        error = parse_error("11987654321")
        assert "CPF" in error.message
        assert "+55" in error.message

    def test_same_number_with_plus_is_a_phone(self) -> None:
        """Writing the same digits in E.164 form makes them a phone key."""
        assert parse_pix_key("+5511987654321").type is PixKeyType.PHONE

    def test_email_may_start_with_plus(self) -> None:
        """'@' wins over a leading '+', which is legal in an e-mail local part."""
        assert parse_pix_key("+tag@example.com").type is PixKeyType.EMAIL


class TestPhoneKeys:
    def test_mobile_with_nine_digits(self) -> None:
        """+55, a DDD and a 9-digit number is a valid Brazilian phone key."""
        assert parse_pix_key("+5561998765432").value == "+5561998765432"

    def test_eight_digit_number(self) -> None:
        """Eight-digit subscriber numbers are allowed."""
        assert parse_pix_key("+551132654321").type is PixKeyType.PHONE

    def test_formatting_is_removed(self) -> None:
        """Spaces, parentheses, dots and dashes are formatting, not part of the key."""
        assert parse_pix_key("+55 (11) 98765-4321").value == "+5511987654321"

    @pytest.mark.parametrize("ddd", ["01", "00"])
    def test_ddd_starting_with_zero_is_rejected(self, ddd: str) -> None:
        """Brazilian area codes never start with 0."""
        assert "Brazilian" in parse_error(f"+55{ddd}987654321").message

    @pytest.mark.parametrize("number", ["9876543", "9876543210"])
    def test_wrong_subscriber_length_is_rejected(self, number: str) -> None:
        """A Brazilian number has 8 or 9 digits after the DDD."""
        parse_error(f"+5511{number}")

    def test_foreign_number_matching_dict_pattern_is_accepted(self) -> None:
        """Non-Brazilian numbers are accepted when they fit the DICT E.164 pattern."""
        assert parse_pix_key("+14155552671") == PixKey(PixKeyType.PHONE, "+14155552671")

    def test_number_longer_than_dict_pattern_is_rejected(self) -> None:
        """More than 16 digits after '+' cannot match the DICT pattern."""
        assert "E.164" in parse_error("+14155552671123456").message

    def test_dict_documentation_example_is_accepted(self) -> None:
        """The DICT manual's +5510998765432 (an unassigned DDD) is a well-formed key."""
        assert parse_pix_key("+5510998765432").type is PixKeyType.PHONE

    def test_country_code_starting_with_zero_is_rejected(self) -> None:
        """E.164 country codes never start with 0."""
        parse_error("+0155552671")


class TestEmailKeys:
    def test_email_is_lower_cased(self) -> None:
        """The DICT stores e-mails lower-case, so input is folded."""
        assert parse_pix_key("Pix@BCB.gov.br") == PixKey(PixKeyType.EMAIL, "pix@bcb.gov.br")

    def test_email_at_limit_is_accepted(self) -> None:
        """An e-mail of exactly 77 characters fits."""
        email = "a" * 65 + "@example.com"
        assert len(email) == 77
        assert parse_pix_key(email).value == email

    def test_email_over_limit_is_rejected(self) -> None:
        """An e-mail of 78 characters is too long for the DICT."""
        assert "77" in parse_error("a" * 66 + "@example.com").message

    @pytest.mark.parametrize("email", ["a@b@c.com", "user@-bad.com", "us er@x.com", "x@"])
    def test_malformed_email_is_rejected(self, email: str) -> None:
        """Values with '@' that do not fit the DICT pattern are rejected."""
        assert "e-mail" in parse_error(email).message


class TestEvpKeys:
    def test_lower_case_uuid(self) -> None:
        """A lower-case UUID is a random key."""
        key = "123e4567-e89b-12d3-a456-426655440000"
        assert parse_pix_key(key) == PixKey(PixKeyType.EVP, key)

    def test_upper_case_uuid_is_lower_cased(self) -> None:
        """Upper-case input is accepted and normalised, as the DICT stores lower case."""
        key = parse_pix_key("123E4567-E89B-12D3-A456-426655440000")
        assert key.value == "123e4567-e89b-12d3-a456-426655440000"

    def test_version_nibble_is_not_enforced(self) -> None:
        """The DICT's own example is version 1, so any version is accepted."""
        assert parse_pix_key("123e4567-e12b-12d1-a456-426655440000").type is PixKeyType.EVP

    def test_non_hex_uuid_is_rejected(self) -> None:
        """A UUID-shaped value with a non-hex character is not a random key."""
        assert "UUID" in parse_error("123e4567-e89b-12d3-a456-42665544000g").message


class TestUnknownKeys:
    def test_empty_key(self) -> None:
        """Blank input is rejected."""
        assert "empty" in parse_error("   ").message

    def test_unrecognised_shape_explains_the_options(self) -> None:
        """A value matching no type lists what a key can be."""
        message = parse_error("hello world").message
        assert "CPF" in message
        assert "phone" in message


class TestValidatePixKey:
    def test_stated_type_is_validated(self) -> None:
        """A value is validated as the type the caller states."""
        assert validate_pix_key("12345678909", "cpf").type is PixKeyType.CPF

    def test_stated_type_accepts_enum_and_upper_case_name(self) -> None:
        """The type may be given as the enum or in any case, as APIs send it."""
        assert validate_pix_key("pix@bcb.gov.br", PixKeyType.EMAIL).type is PixKeyType.EMAIL
        assert validate_pix_key("pix@bcb.gov.br", "EMAIL").type is PixKeyType.EMAIL

    def test_mismatched_type_is_rejected(self) -> None:
        """A valid CNPJ stated as CPF fails rather than being re-detected."""
        with pytest.raises(PixFormatError, match="CPF"):
            validate_pix_key("11222333000181", "cpf")

    def test_phone_type_requires_plus(self) -> None:
        """Stating phone does not make bare digits acceptable."""
        with pytest.raises(PixFormatError, match=r"E\.164"):
            validate_pix_key("11987654321", PixKeyType.PHONE)

    def test_unknown_type_is_rejected(self) -> None:
        """An unknown type name lists the known ones."""
        with pytest.raises(PixFormatError, match="evp"):
            validate_pix_key("x", "iban")


seeded_rngs = st.integers(0, 2**32 - 1).map(random.Random)
emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(string.ascii_lowercase + string.digits + "._+-", min_size=1, max_size=20),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20),
    st.text(string.ascii_lowercase, min_size=2, max_size=6),
)
br_phones = st.builds(
    lambda ddd, number: f"+55{ddd}{number}",
    st.text("123456789", min_size=2, max_size=2),
    st.text(string.digits, min_size=8, max_size=9),
)
keys_by_type = st.one_of(
    seeded_rngs.map(lambda r: (PixKeyType.CPF, generate_cpf(r))),
    st.tuples(seeded_rngs, st.booleans()).map(
        lambda t: (PixKeyType.CNPJ, generate_cnpj(t[0], alphanumeric=t[1]))
    ),
    emails.map(lambda e: (PixKeyType.EMAIL, e)),
    br_phones.map(lambda p: (PixKeyType.PHONE, p)),
    st.uuids().map(lambda u: (PixKeyType.EVP, str(u))),
)


class TestKeyProperties:
    @settings(max_examples=200)
    @given(keys_by_type)
    def test_detection_finds_the_generating_type(self, item: tuple[PixKeyType, str]) -> None:
        """A canonical key of any type is detected as that type and kept unchanged."""
        key_type, value = item
        assert parse_pix_key(value) == PixKey(key_type, value)

    @settings(max_examples=200)
    @given(keys_by_type)
    def test_stated_type_agrees_with_detection(self, item: tuple[PixKeyType, str]) -> None:
        """Validating with the right stated type gives the same key as detection."""
        key_type, value = item
        assert validate_pix_key(value, key_type) == parse_pix_key(value)

    @settings(max_examples=200)
    @given(keys_by_type, st.booleans())
    def test_parsing_is_idempotent(self, item: tuple[PixKeyType, str], upper: bool) -> None:
        """Parsing a key's canonical value again yields the same key, whatever the input case."""
        _, value = item
        raw = value.upper() if upper else value
        key = parse_pix_key(raw)
        assert parse_pix_key(key.value) == key

    @settings(max_examples=100)
    @given(st.uuids())
    def test_any_uuid_version_is_an_evp(self, value: uuid.UUID) -> None:
        """Every UUID, whatever its version bits, is a valid random key."""
        assert parse_pix_key(str(value).upper()).value == str(value)
