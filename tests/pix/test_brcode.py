"""BR Code parsing, building and the JSON view."""

from __future__ import annotations

import json
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixwave.pix import (
    MAX_AMOUNT_CENTAVOS,
    BRCode,
    BRCodeKind,
    PixFormatError,
    brcode_to_dict,
    build_dynamic_brcode,
    build_recurrence_brcode,
    build_static_brcode,
    crc16_hex,
    format_brcode_amount,
    generate_cnpj,
    generate_cpf,
    parse_brcode,
    parse_brcode_amount,
    parse_pix_key,
    sanitize_brcode_text,
)
from tests.pix.vectors import (
    COMPOSITE_COB_VECTOR,
    COMPOSITE_COBV_VECTOR,
    DYNAMIC_VECTOR,
    RECURRENCE_VECTOR,
    STATIC_VECTOR,
)

EVP = "123e4567-e12b-12d1-a456-426655440000"
LOCATION = "pix.example.com/8b3da2f39a4140d1a91abd93113bd441"


def tlv(field_id: str, value: str) -> str:
    """Encode one EMV object; the length counts characters."""
    return f"{field_id}{len(value):02d}{value}"


def with_crc(body: str) -> str:
    """Close a payload with field 63 and its correct CRC."""
    payload = body + "6304"
    return payload + crc16_hex(payload)


PIX_ACCOUNT = tlv("00", "br.gov.bcb.pix") + tlv("01", EVP)
PIX_TEMPLATE = tlv("26", PIX_ACCOUNT)
MANDATORY_TAIL = {
    "52": tlv("52", "0000"),
    "53": tlv("53", "986"),
    "58": tlv("58", "BR"),
    "59": tlv("59", "Fulano de Tal"),
    "60": tlv("60", "BRASILIA"),
}


def minimal_code(*, without: str | None = None, account: str = PIX_TEMPLATE) -> str:
    """The static vector's fields, optionally dropping one mandatory field."""
    tail = "".join(v for k, v in MANDATORY_TAIL.items() if k != without)
    return with_crc(tlv("00", "01") + account + tail + tlv("62", tlv("05", "***")))


def parse_error(text: str) -> PixFormatError:
    with pytest.raises(PixFormatError) as info:
        parse_brcode(text)
    return info.value


# A code that uses every part of the format: another arrangement's template before the Pix one,
# non-ASCII name and city, an amount without cents, a postal code, extra 62 sub-fields (a 50
# template and a 99), Pix Automático's 80, a 64 language template and an unknown 99 template.
RICH_FIELDS = [
    tlv("01", "11"),
    tlv("27", tlv("00", "br.com.outroarranjo") + tlv("01", "merchant-123")),
    tlv(
        "26",
        tlv("00", "BR.GOV.BCB.PIX")
        + tlv("01", "pix@bcb.gov.br")
        + tlv("02", "Pedido 42")
        + tlv("03", "12345678")
        + tlv("77", "future"),
    ),
    tlv("52", "5812"),
    tlv("53", "986"),
    tlv("54", "10.5"),
    tlv("58", "BR"),
    tlv("59", "Padaria São João"),
    tlv("60", "São Paulo"),
    tlv("61", "01310100"),
    tlv(
        "62",
        tlv("05", "PEDIDO42")
        + tlv("50", tlv("00", "br.gov.bcb.brcode") + tlv("01", "1.0.0"))
        + tlv("99", "extra"),
    ),
    tlv("64", tlv("00", "PT") + tlv("01", "Padaria")),
    tlv("80", tlv("00", "br.gov.bcb.pix") + tlv("25", "pix.example.com/rec/abc123")),
    tlv("99", "not-a-template"),
]
RICH_CODE = with_crc(tlv("00", "01") + "".join(RICH_FIELDS))


class TestVerifiedVectors:
    def test_static_vector_parses(self) -> None:
        """The BCB manual's static example yields its key, name, city and no txid."""
        code = parse_brcode(STATIC_VECTOR)
        assert code.payload_format_indicator == "01"
        assert code.point_of_initiation == "static"
        assert code.merchant_account.gui == "br.gov.bcb.pix"
        assert code.key == EVP
        assert code.location_url is None
        assert code.merchant_category_code == "0000"
        assert code.currency == "986"
        assert code.amount_centavos is None
        assert code.country == "BR"
        assert code.merchant_name == "Fulano de Tal"
        assert code.merchant_city == "BRASILIA"
        assert code.additional_data is not None
        assert code.additional_data.reference_label == "***"
        assert code.txid is None
        assert code.crc == "1D3D"

    def test_dynamic_vector_parses(self) -> None:
        """The BCB manual's dynamic example is single-use and carries a location URL."""
        code = parse_brcode(DYNAMIC_VECTOR)
        assert code.point_of_initiation == "dynamic"
        assert code.location_url == LOCATION
        assert code.key is None
        assert code.crc == "64E4"

    def test_static_builder_reproduces_vector(self) -> None:
        """build_static_brcode produces the manual's example byte for byte."""
        built = build_static_brcode(
            key=EVP, merchant_name="Fulano de Tal", merchant_city="BRASILIA"
        )
        assert built == STATIC_VECTOR

    def test_dynamic_builder_reproduces_vector(self) -> None:
        """build_dynamic_brcode produces the manual's example byte for byte."""
        built = build_dynamic_brcode(
            location_url=LOCATION, merchant_name="Fulano de Tal", merchant_city="BRASILIA"
        )
        assert built == DYNAMIC_VECTOR

    def test_raw_fields_rebuild_the_input(self) -> None:
        """The raw field list loses nothing: re-encoding it gives the original text."""
        code = parse_brcode(STATIC_VECTOR)
        assert "".join(tlv(f.id, f.value) for f in code.raw) == STATIC_VECTOR
        assert [f.position for f in code.raw][:3] == [0, 6, 68]


class TestAcceptedVariants:
    def test_upper_case_gui(self) -> None:
        """A Pix GUI in upper case is recognised and kept as written."""
        account = tlv("26", tlv("00", "BR.GOV.BCB.PIX") + tlv("01", EVP))
        code = parse_brcode(minimal_code(account=account))
        assert code.merchant_account.gui == "BR.GOV.BCB.PIX"
        assert code.key == EVP

    def test_non_ascii_city_counts_characters_and_checksums_bytes(self) -> None:
        """BRASÍLIA has length 08 and the CRC is over UTF-8 (B4F6, as ex-pix-brcode computes)."""
        text = STATIC_VECTOR[:-4].replace("BRASILIA", "BRASÍLIA") + "B4F6"
        assert parse_brcode(text).merchant_city == "BRASÍLIA"

    def test_surrounding_whitespace_is_ignored(self) -> None:
        """A pasted code with a trailing newline still parses."""
        assert parse_brcode(f"  {STATIC_VECTOR}\n").crc == "1D3D"

    def test_pix_template_need_not_be_26(self) -> None:
        """Any of 26-51 may carry the Pix GUI."""
        code = parse_brcode(minimal_code(account=tlv("30", PIX_ACCOUNT)))
        assert code.merchant_account.id == "30"

    def test_explicit_static_point_of_initiation(self) -> None:
        """01 = 11 means reusable (static)."""
        text = with_crc(tlv("00", "01") + tlv("01", "11") + STATIC_VECTOR[6:-8])
        assert parse_brcode(text).point_of_initiation == "static"

    def test_long_merchant_name_is_kept(self) -> None:
        """Names past the 25-character EMV limit are accepted as published by some PSPs."""
        text = STATIC_VECTOR[:-8].replace("5913Fulano de Tal", tlv("59", "N" * 40))
        assert parse_brcode(with_crc(text)).merchant_name == "N" * 40

    @settings(max_examples=100)
    @given(st.permutations(RICH_FIELDS))
    def test_fields_in_any_order(self, fields: list[str]) -> None:
        """Between 00 and 63 the order of fields does not change the result."""
        shuffled = parse_brcode(with_crc(tlv("00", "01") + "".join(fields)))
        reference = parse_brcode(RICH_CODE)
        assert shuffled.merchant_account == reference.merchant_account
        assert shuffled.other_templates == reference.other_templates
        assert shuffled.additional_data == reference.additional_data
        assert shuffled.unreserved_templates == reference.unreserved_templates
        assert shuffled.amount_centavos == reference.amount_centavos


class TestRichCode:
    @pytest.fixture
    def code(self) -> BRCode:
        return parse_brcode(RICH_CODE)

    def test_pix_account_sub_fields(self, code: BRCode) -> None:
        """Key, description, fss and unknown sub-fields of the Pix account are all read."""
        account = code.merchant_account
        assert account.id == "26"
        assert account.key == "pix@bcb.gov.br"
        assert account.description == "Pedido 42"
        assert account.fss == "12345678"
        assert account.url is None
        assert dict(account.fields)["77"] == "future"

    def test_other_arrangement_template_is_preserved(self, code: BRCode) -> None:
        """Template 27 with another GUI is kept with its sub-fields, not mistaken for Pix."""
        other = code.other_templates["27"]
        assert other.gui == "br.com.outroarranjo"
        assert dict(other.sub_fields or {}) == {"00": "br.com.outroarranjo", "01": "merchant-123"}

    def test_header_fields(self, code: BRCode) -> None:
        """Point of initiation, MCC, currency, country are read."""
        assert code.point_of_initiation == "static"
        assert code.merchant_category_code == "5812"
        assert code.currency == "986"
        assert code.country == "BR"

    def test_amount_without_cents(self, code: BRCode) -> None:
        """10.5 is 1050 centavos."""
        assert code.amount_centavos == 1050

    def test_non_ascii_name_and_city(self, code: BRCode) -> None:
        """Accented names and cities come back exactly."""
        assert code.merchant_name == "Padaria São João"
        assert code.merchant_city == "São Paulo"

    def test_postal_code(self, code: BRCode) -> None:
        """Field 61 is read."""
        assert code.postal_code == "01310100"

    def test_additional_data_keeps_every_sub_field(self, code: BRCode) -> None:
        """62-05 is the txid and 62-50/62-99 are preserved."""
        assert code.additional_data is not None
        assert code.txid == "PEDIDO42"
        fields = dict(code.additional_data.fields)
        assert fields["50"] == tlv("00", "br.gov.bcb.brcode") + tlv("01", "1.0.0")
        assert fields["99"] == "extra"

    def test_pix_automatico_template(self, code: BRCode) -> None:
        """Template 80 exposes its GUI and recurrence URL."""
        template = code.unreserved_templates["80"]
        assert template.gui == "br.gov.bcb.pix"
        assert code.recurrence_url == "pix.example.com/rec/abc123"

    def test_unparseable_unreserved_template_keeps_raw_value(self, code: BRCode) -> None:
        """A 99 value that is not TLV is kept raw with no sub-fields."""
        template = code.unreserved_templates["99"]
        assert template.value == "not-a-template"
        assert template.sub_fields is None

    def test_language_template_lands_in_other_fields(self, code: BRCode) -> None:
        """Field 64, which has no attribute of its own, is kept in other_fields."""
        assert code.other_fields["64"] == tlv("00", "PT") + tlv("01", "Padaria")

    def test_raw_has_every_field_in_order(self, code: BRCode) -> None:
        """raw lists all 16 top-level fields, from 00 to 63."""
        ids = [f.id for f in code.raw]
        assert ids[0] == "00"
        assert ids[-1] == "63"
        assert len(ids) == 16


class TestRejectedCodes:
    def test_bad_crc_names_expected_and_found(self) -> None:
        """A wrong CRC reports both the computed and the written value."""
        error = parse_error(STATIC_VECTOR[:-4] + "1D3E")
        assert error.code == "brcode_crc_mismatch"
        assert "expected 1D3D" in error.message
        assert "found 1D3E" in error.message
        assert error.position == len(STATIC_VECTOR) - 8

    def test_truncated_code_names_the_overrunning_field(self) -> None:
        """Cutting the end makes field 62 overrun; the error names it and its position."""
        error = parse_error(STATIC_VECTOR[:-10])
        assert error.code == "brcode_length"
        assert error.field == "62"
        assert "field 62" in error.message
        assert "index 118" in error.message

    def test_overrun_inside_template_names_the_sub_field(self) -> None:
        """A key longer than its template reports 26.01 with an absolute position."""
        account = tlv("26", tlv("00", "br.gov.bcb.pix") + "0150" + EVP)
        error = parse_error(minimal_code(account=account))
        assert error.code == "brcode_length"
        assert error.field == "26.01"
        assert error.position == 6 + 4 + 18

    def test_too_few_characters_for_a_header(self) -> None:
        """Three stray characters cannot hold an ID and a length."""
        error = parse_error("000201520")
        assert error.code == "brcode_length"
        assert error.position == 6

    def test_non_numeric_id(self) -> None:
        """An ID must be two digits."""
        error = parse_error("000201AB04" + STATIC_VECTOR[10:])
        assert error.code == "brcode_malformed"
        assert "'AB'" in error.message

    def test_non_numeric_length(self) -> None:
        """A length must be two digits."""
        error = parse_error(STATIC_VECTOR.replace("5204", "52X4"))
        assert error.code == "brcode_malformed"
        assert error.field == "52"

    @pytest.mark.parametrize("field_id", ["52", "53", "58", "59", "60"])
    def test_missing_mandatory_field(self, field_id: str) -> None:
        """Each mandatory field is required, even when the CRC is right."""
        error = parse_error(minimal_code(without=field_id))
        assert error.code == "brcode_missing_field"
        assert error.field == field_id

    def test_missing_payload_format_indicator(self) -> None:
        """A code without 00 is missing it."""
        error = parse_error(with_crc(STATIC_VECTOR[6:-8]))
        assert error.code == "brcode_missing_field"
        assert error.field == "00"

    def test_missing_crc(self) -> None:
        """A code without 63 is missing its CRC."""
        error = parse_error(STATIC_VECTOR[:-8])
        assert error.code == "brcode_missing_field"
        assert error.field == "63"

    def test_missing_merchant_account(self) -> None:
        """A code with no 26-51 template is missing the Pix account."""
        error = parse_error(minimal_code(account=""))
        assert error.code == "brcode_missing_field"

    def test_only_another_arrangement(self) -> None:
        """Templates exist but none has the Pix GUI."""
        other = tlv("27", tlv("00", "br.com.outroarranjo") + tlv("01", "x"))
        error = parse_error(minimal_code(account=other))
        assert error.code == "brcode_not_pix"
        assert "27" in error.message

    def test_pix_account_without_key_or_url(self) -> None:
        """The Pix template must carry a key (01) or a URL (25)."""
        error = parse_error(minimal_code(account=tlv("26", tlv("00", "br.gov.bcb.pix"))))
        assert error.code == "brcode_missing_field"
        assert "26" in error.message

    def test_00_not_first(self) -> None:
        """00 after another field is out of order."""
        body = STATIC_VECTOR[6:-8]
        error = parse_error(with_crc(body[:62] + "000201" + body[62:]))
        assert error.code == "brcode_field_order"
        assert error.field == "00"

    def test_63_not_last(self) -> None:
        """Anything after the CRC field is out of order."""
        error = parse_error(STATIC_VECTOR + "5802BR")
        assert error.code == "brcode_field_order"
        assert error.field == "63"

    def test_repeated_field(self) -> None:
        """A field that appears twice is ambiguous."""
        error = parse_error(with_crc(STATIC_VECTOR[:-8] + tlv("58", "BR")))
        assert error.code == "brcode_malformed"
        assert "58" in error.message

    def test_lower_case_crc(self) -> None:
        """The CRC must be upper-case hex, as EMV and the BCB specify."""
        error = parse_error(STATIC_VECTOR[:-4] + "1d3d")
        assert error.code == "brcode_malformed"
        assert "upper-case" in error.message

    def test_wrong_payload_format_indicator(self) -> None:
        """00 must be 01."""
        error = parse_error(with_crc("000202" + STATIC_VECTOR[6:-8]))
        assert error.code == "brcode_invalid_field"
        assert error.field == "00"

    def test_unknown_point_of_initiation(self) -> None:
        """01 may only be 11 or 12."""
        error = parse_error(with_crc("000201010213" + STATIC_VECTOR[6:-8]))
        assert error.code == "brcode_invalid_field"
        assert error.field == "01"

    def test_currency_other_than_brl(self) -> None:
        """Pix amounts are BRL, so any other currency is refused."""
        error = parse_error(with_crc(STATIC_VECTOR[:-8].replace("5303986", "5303840")))
        assert error.code == "brcode_invalid_field"
        assert "986" in error.message

    def test_comma_decimal_amount(self) -> None:
        """10,00 is not an EMV amount."""
        text = with_crc(STATIC_VECTOR[:-8].replace("5802BR", tlv("54", "10,00") + "5802BR"))
        error = parse_error(text)
        assert error.code == "invalid_amount"
        assert error.field == "54"

    def test_empty_text(self) -> None:
        """Blank input is malformed."""
        assert parse_error("  ").code == "brcode_malformed"


# Pix Automático. The three BCB examples are in vectors.py; the codes below are shaped like them
# (same fields, same order: 26, the mandatory tail, 62, then 80) with one thing changed each.
REC_LOCATION = "pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002"
COB_LOCATION = "pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd441"
COBV_LOCATION = "pix.example.com/qr/v2/cobv/1e6c54d3ec9449b7a7fc53b6b0f998e7"
GUI_ONLY_TEMPLATE = tlv("26", tlv("00", "br.gov.bcb.pix"))
REC_TEMPLATE = tlv("80", tlv("00", "br.gov.bcb.pix") + tlv("25", REC_LOCATION))


def automatico_code(
    *, account: str = GUI_ONLY_TEMPLATE, recurrence: str = REC_TEMPLATE, extra: str = ""
) -> str:
    """A code laid out like the BCB's Jornada 2 example, with the given 26 and 80."""
    tail = "".join(MANDATORY_TAIL.values())
    return with_crc(
        tlv("00", "01") + account + tail + extra + tlv("62", tlv("05", "***")) + recurrence
    )


class TestPixAutomaticoVectors:
    def test_recurrence_only_vector_parses(self) -> None:
        """The BCB's Jornada 2 example is recurrence-only: no key, no charge, its 80 location."""
        code = parse_brcode(RECURRENCE_VECTOR)
        assert code.kind is BRCodeKind.RECURRENCE
        assert code.recurrence_url == REC_LOCATION
        assert code.recurrence is not None
        assert code.recurrence.gui == "br.gov.bcb.pix"
        assert dict(code.merchant_account.fields) == {"00": "br.gov.bcb.pix"}
        assert code.key is None
        assert code.location_url is None
        assert code.amount_centavos is None
        assert code.txid is None
        assert code.crc == "62C9"

    def test_composite_cob_vector_parses(self) -> None:
        """The BCB's Jornada 3 example is composite: an immediate charge and a recurrence."""
        code = parse_brcode(COMPOSITE_COB_VECTOR)
        assert code.kind is BRCodeKind.COMPOSITE
        assert code.point_of_initiation == "dynamic"
        assert code.location_url == COB_LOCATION
        assert code.recurrence_url == "pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa353194890"

    def test_composite_cobv_vector_parses(self) -> None:
        """The BCB's Jornada 4 example is composite: a due-date charge and a recurrence."""
        code = parse_brcode(COMPOSITE_COBV_VECTOR)
        assert code.kind is BRCodeKind.COMPOSITE
        assert code.location_url == COBV_LOCATION
        assert code.recurrence_url == "pix.example.com/qr/v2/rec/3ffa640fa4f14080adccb949fa2dc0d0"

    def test_recurrence_builder_reproduces_vector(self) -> None:
        """build_recurrence_brcode produces the Jornada 2 example byte for byte."""
        built = build_recurrence_brcode(
            recurrence_url=REC_LOCATION, merchant_name="Fulano de Tal", merchant_city="BRASILIA"
        )
        assert built == RECURRENCE_VECTOR

    @pytest.mark.parametrize(
        ("vector", "location", "recurrence"),
        [
            (COMPOSITE_COB_VECTOR, COB_LOCATION, "94ed2badcbc04c15b0bb7fa353194890"),
            (COMPOSITE_COBV_VECTOR, COBV_LOCATION, "3ffa640fa4f14080adccb949fa2dc0d0"),
        ],
    )
    def test_composite_builder_reproduces_vectors(
        self, vector: str, location: str, recurrence: str
    ) -> None:
        """build_dynamic_brcode with a recurrence produces the Jornada 3 and 4 examples."""
        built = build_dynamic_brcode(
            location_url=location,
            merchant_name="Fulano de Tal",
            merchant_city="BRASILIA",
            recurrence_url=f"pix.example.com/qr/v2/rec/{recurrence}",
        )
        assert built == vector


class TestCodeKinds:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [(STATIC_VECTOR, BRCodeKind.STATIC), (DYNAMIC_VECTOR, BRCodeKind.DYNAMIC)],
    )
    def test_codes_without_recurrence(self, text: str, kind: BRCodeKind) -> None:
        """A key makes a static code and a location a dynamic one; neither has a recurrence."""
        code = parse_brcode(text)
        assert code.kind is kind
        assert code.recurrence is None
        assert code.recurrence_url is None

    def test_static_composite(self) -> None:
        """A key plus template 80 is composite (Jornada 4 on a static code, per the BCB's API)."""
        code = parse_brcode(automatico_code(account=PIX_TEMPLATE))
        assert code.kind is BRCodeKind.COMPOSITE
        assert code.key == EVP
        assert code.recurrence_url == REC_LOCATION

    def test_rich_code_is_composite(self) -> None:
        """The rich code's key and Pix Automático 80 make it composite."""
        assert parse_brcode(RICH_CODE).kind is BRCodeKind.COMPOSITE

    def test_key_and_location_is_dynamic(self) -> None:
        """A 26 with both a key and a location counts as dynamic: the location is the charge."""
        pix = tlv("00", "br.gov.bcb.pix") + tlv("01", "pix@bcb.gov.br") + tlv("25", LOCATION)
        account = tlv("26", pix)
        assert parse_brcode(minimal_code(account=account)).kind is BRCodeKind.DYNAMIC

    def test_pix_gui_in_81_is_not_a_recurrence(self) -> None:
        """Only 80 is Pix Automático's: a Pix GUI in 81 stays an uninterpreted template."""
        template = tlv("81", tlv("00", "br.gov.bcb.pix") + tlv("25", REC_LOCATION))
        code = parse_brcode(automatico_code(account=PIX_TEMPLATE, recurrence=template))
        assert code.kind is BRCodeKind.STATIC
        assert code.recurrence_url is None
        assert code.unreserved_templates["81"].url == REC_LOCATION


class TestAcceptedRecurrence:
    def test_upper_case_gui_in_80(self) -> None:
        """An upper-case Pix GUI in 80 is recognised and kept as written, as in 26."""
        template = tlv("80", tlv("00", "BR.GOV.BCB.PIX") + tlv("25", REC_LOCATION))
        code = parse_brcode(automatico_code(recurrence=template))
        assert code.kind is BRCodeKind.RECURRENCE
        assert code.recurrence is not None
        assert code.recurrence.gui == "BR.GOV.BCB.PIX"

    def test_unknown_sub_fields_are_kept(self) -> None:
        """Sub-fields of 80 other than 00 and 25 are preserved in order."""
        template = tlv("80", tlv("00", "br.gov.bcb.pix") + tlv("25", REC_LOCATION) + "9901x")
        code = parse_brcode(automatico_code(recurrence=template))
        assert code.recurrence is not None
        assert list(code.recurrence.fields.items())[-1] == ("99", "x")

    def test_amount_in_recurrence_only_code_is_kept_but_not_payable(self) -> None:
        """An amount beside a GUI-only 26 is kept as written; the code is still recurrence-only."""
        code = parse_brcode(automatico_code(extra=tlv("54", "35.00")))
        assert code.amount_centavos == 3500
        assert code.kind is BRCodeKind.RECURRENCE

    @settings(max_examples=50)
    @given(st.permutations(["010212", GUI_ONLY_TEMPLATE, *MANDATORY_TAIL.values(), REC_TEMPLATE]))
    def test_fields_in_any_order(self, fields: list[str]) -> None:
        """Between 00 and 63 the order of fields, 80 included, does not change the reading."""
        code = parse_brcode(with_crc(tlv("00", "01") + "".join(fields)))
        assert code.kind is BRCodeKind.RECURRENCE
        assert code.recurrence_url == REC_LOCATION


class TestRejectedRecurrence:
    def test_other_gui_in_80(self) -> None:
        """A template 80 with another arrangement's GUI is refused, naming 80.00 and where."""
        template = tlv("80", tlv("00", "br.com.outroarranjo") + tlv("25", REC_LOCATION))
        text = automatico_code(recurrence=template)
        error = parse_error(text)
        assert error.code == "brcode_invalid_recurrence"
        assert error.field == "80.00"
        assert error.position == text.index(template) + 4
        assert "br.com.outroarranjo" in error.message

    def test_80_without_gui(self) -> None:
        """A template 80 with a location but no GUI is refused."""
        error = parse_error(automatico_code(recurrence=tlv("80", tlv("25", REC_LOCATION))))
        assert error.code == "brcode_invalid_recurrence"
        assert error.field == "80.00"

    def test_80_without_location(self) -> None:
        """A template 80 with the GUI but no sub-field 25 is refused."""
        error = parse_error(automatico_code(recurrence=tlv("80", tlv("00", "br.gov.bcb.pix"))))
        assert error.code == "brcode_invalid_recurrence"
        assert error.field == "80.25"
        assert "missing" in error.message

    @pytest.mark.parametrize("location", ["", "pix.example.com/rec/a b", "pix.example.com/ré"])
    def test_80_with_unusable_location(self, location: str) -> None:
        """An empty 80-25, or one with spaces or non-ASCII, is not a location."""
        template = tlv("80", tlv("00", "br.gov.bcb.pix") + tlv("25", location))
        error = parse_error(automatico_code(recurrence=template))
        assert error.code == "brcode_invalid_recurrence"
        assert error.field == "80.25"

    def test_80_that_is_not_tlv(self) -> None:
        """A template 80 that does not parse is refused where it breaks, like 26 or 62."""
        error = parse_error(automatico_code(recurrence=tlv("80", "not-a-template")))
        assert error.code == "brcode_malformed"
        assert error.field == "80"

    def test_bad_80_beside_a_key_is_refused(self) -> None:
        """A payable code with a broken 80 is refused, not read as a plain static code."""
        template = tlv("80", tlv("00", "br.gov.bcb.pix"))
        error = parse_error(automatico_code(account=PIX_TEMPLATE, recurrence=template))
        assert error.code == "brcode_invalid_recurrence"

    def test_gui_only_26_without_80_is_missing_its_key(self) -> None:
        """Without a recurrence, a 26 with neither key nor URL is still brcode_missing_field."""
        error = parse_error(automatico_code(recurrence=""))
        assert error.code == "brcode_missing_field"
        assert error.field == "26.01"
        assert "field 80" in error.message

    def test_gui_only_26_with_pix_gui_in_81_is_missing_its_key(self) -> None:
        """A recurrence-like template at 81 does not excuse a 26 without key or URL."""
        template = tlv("81", tlv("00", "br.gov.bcb.pix") + tlv("25", REC_LOCATION))
        error = parse_error(automatico_code(recurrence=template))
        assert error.code == "brcode_missing_field"

    def test_recurrence_without_pix_account(self) -> None:
        """A recurrence still needs the Pix template 26 (with at least the GUI)."""
        error = parse_error(automatico_code(account=""))
        assert error.code == "brcode_missing_field"
        assert error.field == "26"


class TestAmountParsing:
    @pytest.mark.parametrize(
        ("text", "centavos"),
        [
            ("10.00", 1000),
            ("10", 1000),
            ("10.5", 1050),
            ("10.", 1000),
            (".5", 50),
            ("0.01", 1),
            ("0", 0),
            ("9999999999.99", MAX_AMOUNT_CENTAVOS),
            ("0000000000123", 12300),
        ],
    )
    def test_emv_forms(self, text: str, centavos: int) -> None:
        """Every EMV amount form converts exactly to centavos."""
        assert parse_brcode_amount(text) == centavos

    @pytest.mark.parametrize(
        "text", ["", ".", "10,00", "1e3", "-1", "10.123", "+10", " 10", "١٠", "10000000000.00"]
    )
    def test_invalid_forms(self, text: str) -> None:
        """Signs, exponents, commas, 3 decimals, non-ASCII digits and >13 chars are refused."""
        with pytest.raises(PixFormatError) as info:
            parse_brcode_amount(text)
        assert info.value.code == "invalid_amount"


class TestAmountFormatting:
    @pytest.mark.parametrize(
        ("centavos", "text"),
        [(1, "0.01"), (100, "1.00"), (12345, "123.45"), (MAX_AMOUNT_CENTAVOS, "9999999999.99")],
    )
    def test_formats_with_two_decimals(self, centavos: int, text: str) -> None:
        """Centavos become reais with exactly two decimals."""
        assert format_brcode_amount(centavos) == text

    @pytest.mark.parametrize("centavos", [0, -1, MAX_AMOUNT_CENTAVOS + 1])
    def test_out_of_range(self, centavos: int) -> None:
        """Zero, negatives and amounts over 13 characters are refused."""
        with pytest.raises(PixFormatError):
            format_brcode_amount(centavos)

    @pytest.mark.parametrize("value", [10.5, True, "1000"])
    def test_non_int_is_refused(self, value: object) -> None:
        """Floats (and bools, strings) never reach the amount field."""
        with pytest.raises(PixFormatError, match="int"):
            format_brcode_amount(value)  # type: ignore[arg-type]


class TestStaticBuilder:
    def test_amount_and_txid(self) -> None:
        """Amount goes to 54 and the txid to 62-05."""
        text = build_static_brcode(
            key=EVP, merchant_name="Loja", merchant_city="Recife", amount_centavos=12345, txid="A1"
        )
        assert tlv("54", "123.45") in text
        assert tlv("62", tlv("05", "A1")) in text
        assert parse_brcode(text).txid == "A1"

    def test_accents_are_stripped(self) -> None:
        """Names and cities are reduced to ASCII."""
        code = parse_brcode(
            build_static_brcode(key=EVP, merchant_name="João Ação", merchant_city="São Paulo")
        )
        assert code.merchant_name == "Joao Acao"
        assert code.merchant_city == "Sao Paulo"

    def test_long_name_and_city_are_truncated(self) -> None:
        """Names are cut to 25 characters and cities to 15, with no trailing space."""
        code = parse_brcode(
            build_static_brcode(
                key=EVP,
                merchant_name="Maria Aparecida dos Santos Oliveira",
                merchant_city="Sao Jose dos Campos",
            )
        )
        assert code.merchant_name == "Maria Aparecida dos Santo"
        assert code.merchant_city == "Sao Jose dos Ca"

    def test_name_without_ascii_is_refused(self) -> None:
        """A name that sanitises to nothing cannot be displayed."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(key=EVP, merchant_name="日本", merchant_city="X")
        assert info.value.field == "59"

    def test_key_is_normalised(self) -> None:
        """A printed CPF is written bare in 26-01."""
        code = parse_brcode(
            build_static_brcode(key="123.456.789-09", merchant_name="A", merchant_city="B")
        )
        assert code.key == "12345678909"

    def test_invalid_key_is_refused(self) -> None:
        """A key that is not a Pix key fails with invalid_pix_key."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(key="11987654321", merchant_name="A", merchant_city="B")
        assert info.value.code == "invalid_pix_key"

    @pytest.mark.parametrize("txid", ["a" * 26, "abc-1", ""])
    def test_invalid_txid_is_refused(self, txid: str) -> None:
        """62-05 holds 1..25 letters or digits, or ***."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(key=EVP, merchant_name="A", merchant_city="B", txid=txid)
        assert info.value.code == "invalid_txid"

    def test_description_is_written(self) -> None:
        """The payer message goes to 26-02, reduced to ASCII."""
        code = parse_brcode(
            build_static_brcode(
                key=EVP, merchant_name="A", merchant_city="B", description="Café da manhã"
            )
        )
        assert code.merchant_account.description == "Cafe da manha"

    def test_description_over_template_budget_is_refused(self) -> None:
        """26 may not exceed 99 characters; the error says how much room is left."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(key=EVP, merchant_name="A", merchant_city="B", description="x" * 40)
        assert info.value.code == "brcode_field_too_long"
        assert "room for 37" in info.value.message

    def test_postal_code_is_normalised(self) -> None:
        """A CEP with a dash is written as 8 digits in 61."""
        code = parse_brcode(
            build_static_brcode(
                key=EVP, merchant_name="A", merchant_city="B", postal_code="01310-100"
            )
        )
        assert code.postal_code == "01310100"

    def test_bad_postal_code_is_refused(self) -> None:
        """A postal code must be an 8-digit CEP."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(key=EVP, merchant_name="A", merchant_city="B", postal_code="123")
        assert info.value.field == "61"

    def test_amount_over_13_characters_is_refused(self) -> None:
        """10^12 centavos would need 14 characters in field 54."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(
                key=EVP, merchant_name="A", merchant_city="B", amount_centavos=10**12
            )
        assert info.value.code == "invalid_amount"

    def test_bad_merchant_category_code_is_refused(self) -> None:
        """52 is four digits."""
        with pytest.raises(PixFormatError) as info:
            build_static_brcode(
                key=EVP, merchant_name="A", merchant_city="B", merchant_category_code="58"
            )
        assert info.value.field == "52"


class TestDynamicBuilder:
    def test_https_scheme_is_removed(self) -> None:
        """A location given with https:// is written without it."""
        built = build_dynamic_brcode(
            location_url=f"https://{LOCATION}",
            merchant_name="Fulano de Tal",
            merchant_city="BRASILIA",
        )
        assert built == DYNAMIC_VECTOR

    def test_other_scheme_is_refused(self) -> None:
        """The payer's PSP always fetches over HTTPS, so http:// is a mistake."""
        with pytest.raises(PixFormatError, match="scheme"):
            build_dynamic_brcode(
                location_url=f"http://{LOCATION}", merchant_name="A", merchant_city="B"
            )

    def test_url_over_77_characters_is_refused(self) -> None:
        """The BCB limits locations to 77 characters."""
        with pytest.raises(PixFormatError) as info:
            build_dynamic_brcode(
                location_url="pix.example.com/" + "a" * 62, merchant_name="A", merchant_city="B"
            )
        assert info.value.code == "brcode_field_too_long"

    def test_url_with_space_is_refused(self) -> None:
        """Spaces cannot appear in a URL."""
        with pytest.raises(PixFormatError, match="spaces"):
            build_dynamic_brcode(
                location_url="pix.example.com/a b", merchant_name="A", merchant_city="B"
            )

    def test_amount_is_optional_but_written(self) -> None:
        """An amount, when given, goes to 54 of the dynamic code too."""
        code = parse_brcode(
            build_dynamic_brcode(
                location_url=LOCATION, merchant_name="A", merchant_city="B", amount_centavos=500
            )
        )
        assert code.amount_centavos == 500
        assert code.point_of_initiation == "dynamic"
        assert code.txid is None


class TestRecurrenceBuilders:
    def test_recurrence_only_code_has_nothing_to_pay(self) -> None:
        """The recurrence-only code has a GUI-only 26, no 01, no 54 and no txid."""
        code = parse_brcode(
            build_recurrence_brcode(
                recurrence_url=REC_LOCATION, merchant_name="A", merchant_city="B"
            )
        )
        assert code.kind is BRCodeKind.RECURRENCE
        assert dict(code.merchant_account.fields) == {"00": "br.gov.bcb.pix"}
        assert "01" not in {f.id for f in code.raw}
        assert code.amount_centavos is None
        assert code.txid is None

    def test_https_scheme_is_removed(self) -> None:
        """A recurrence location given with https:// is written without it."""
        built = build_recurrence_brcode(
            recurrence_url=f"https://{REC_LOCATION}",
            merchant_name="Fulano de Tal",
            merchant_city="BRASILIA",
        )
        assert built == RECURRENCE_VECTOR

    def test_other_scheme_is_refused(self) -> None:
        """http:// in a recurrence location is a mistake, reported on 80.25."""
        with pytest.raises(PixFormatError) as info:
            build_recurrence_brcode(
                recurrence_url=f"http://{REC_LOCATION}", merchant_name="A", merchant_city="B"
            )
        assert info.value.field == "80.25"
        assert "scheme" in info.value.message

    def test_77_characters_fill_template_80_exactly(self) -> None:
        """A 77-character location (the API Pix limit) makes 80 exactly 99 characters long."""
        url = "pix.example.com/" + "a" * 61
        text = build_recurrence_brcode(recurrence_url=url, merchant_name="A", merchant_city="B")
        assert parse_brcode(text).recurrence_url == url
        assert tlv("80", tlv("00", "br.gov.bcb.pix") + tlv("25", url))[2:4] == "99"

    def test_url_over_77_characters_is_refused(self) -> None:
        """A 78-character recurrence location does not fit."""
        with pytest.raises(PixFormatError) as info:
            build_recurrence_brcode(
                recurrence_url="pix.example.com/" + "a" * 62, merchant_name="A", merchant_city="B"
            )
        assert info.value.code == "brcode_field_too_long"
        assert info.value.field == "80.25"

    def test_static_composite(self) -> None:
        """build_static_brcode with a recurrence gives a composite code that pays the key."""
        code = parse_brcode(
            build_static_brcode(
                key=EVP,
                merchant_name="A",
                merchant_city="B",
                amount_centavos=3500,
                recurrence_url=REC_LOCATION,
            )
        )
        assert code.kind is BRCodeKind.COMPOSITE
        assert code.key == EVP
        assert code.amount_centavos == 3500
        assert code.recurrence_url == REC_LOCATION


class TestBrcodeToDict:
    def test_is_json_serialisable(self) -> None:
        """The view contains only JSON types."""
        assert json.loads(json.dumps(brcode_to_dict(RICH_CODE)))["amount"] == "10.50"

    def test_accepts_text_or_parsed_code(self) -> None:
        """Text is parsed first, so a CLI can pass the pasted string."""
        assert brcode_to_dict(STATIC_VECTOR) == brcode_to_dict(parse_brcode(STATIC_VECTOR))

    def test_reports_key_type(self) -> None:
        """The key's detected type is included for display."""
        view = brcode_to_dict(STATIC_VECTOR)
        assert view["merchant_account"]["key_type"] == "evp"
        assert view["additional_data"]["txid"] is None

    def test_lists_raw_fields(self) -> None:
        """Every top-level field appears with its position."""
        view = brcode_to_dict(DYNAMIC_VECTOR)
        assert view["fields"][1] == {"id": "01", "value": "12", "position": 6}

    def test_shows_kind_and_recurrence(self) -> None:
        """A recurrence-only code says so and gives its recurrence location, as JSON."""
        view = json.loads(json.dumps(brcode_to_dict(RECURRENCE_VECTOR)))
        assert view["kind"] == "recurrence"
        assert view["recurrence_url"] == REC_LOCATION
        assert view["recurrence"] == {
            "id": "80",
            "gui": "br.gov.bcb.pix",
            "url": REC_LOCATION,
            "fields": {"00": "br.gov.bcb.pix", "25": REC_LOCATION},
        }

    def test_code_without_recurrence(self) -> None:
        """A plain static code has kind static and no recurrence."""
        view = brcode_to_dict(STATIC_VECTOR)
        assert view["kind"] == "static"
        assert view["recurrence"] is None
        assert view["recurrence_url"] is None


class TestSanitizeText:
    def test_strips_accents_and_collapses_spaces(self) -> None:
        """Diacritics go, whitespace runs become one space."""
        assert sanitize_brcode_text("  Ñandú   Açaí\t", 25) == "Nandu Acai"

    def test_truncation_does_not_leave_trailing_space(self) -> None:
        """A cut that lands after a space drops the space."""
        assert sanitize_brcode_text("abcd efgh", 5) == "abcd"


seeded_rngs = st.integers(0, 2**32 - 1).map(random.Random)
any_key = st.one_of(
    seeded_rngs.map(generate_cpf),
    st.tuples(seeded_rngs, st.booleans()).map(lambda t: generate_cnpj(t[0], alphanumeric=t[1])),
    st.builds(
        lambda local, domain: f"{local}@{domain}.com.br",
        st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=20),
        st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=15),
    ),
    st.builds(
        lambda ddd, number: f"+55{ddd}{number}",
        st.text("123456789", min_size=2, max_size=2),
        st.text(string.digits, min_size=8, max_size=9),
    ),
    st.uuids().map(str),
)
display_text = st.text(
    string.ascii_letters + "  ÁÉÍÓÚÂÊÔÃÕÇáéíóúâêôãõçàü'&.-", min_size=1, max_size=40
).filter(lambda s: any(c.isalpha() for c in s))
amounts = st.none() | st.integers(1, MAX_AMOUNT_CENTAVOS)
locations = st.builds(  # at most 27 + 1 + 49 = 77 characters, the API Pix limit
    lambda host, path: f"{host}/{path}",
    st.from_regex(r"[a-z0-9]{1,20}\.[a-z]{2,6}", fullmatch=True),
    st.text(string.ascii_letters + string.digits + "/-_", min_size=1, max_size=49),
)
txids = st.just("***") | st.text(string.ascii_letters + string.digits, min_size=1, max_size=25)


class TestRoundTrip:
    @settings(max_examples=200)
    @given(
        key=any_key,
        name=display_text,
        city=display_text,
        amount=amounts,
        txid=txids,
        description=st.none() | st.text(string.ascii_letters + " ", max_size=20),
        postal=st.none() | st.text(string.digits, min_size=8, max_size=8),
    )
    def test_static_build_then_parse(
        self,
        key: str,
        name: str,
        city: str,
        amount: int | None,
        txid: str,
        description: str | None,
        postal: str | None,
    ) -> None:
        """Whatever goes into the static builder comes back out of the parser."""
        text = build_static_brcode(
            key=key,
            merchant_name=name,
            merchant_city=city,
            amount_centavos=amount,
            txid=txid,
            description=description,
            postal_code=postal,
        )
        assert text.isascii()
        code = parse_brcode(text)
        assert code.key == parse_pix_key(key).value
        assert code.merchant_name == sanitize_brcode_text(name, 25)
        assert code.merchant_city == sanitize_brcode_text(city, 15)
        assert code.amount_centavos == amount
        assert code.txid == (None if txid == "***" else txid)
        expected_description = sanitize_brcode_text(description or "", 99) or None
        assert code.merchant_account.description == expected_description
        assert code.postal_code == postal
        assert code.point_of_initiation == "static"
        rebuilt = build_static_brcode(
            key=code.key or "",
            merchant_name=code.merchant_name,
            merchant_city=code.merchant_city,
            amount_centavos=code.amount_centavos,
            txid=txid,
            description=code.merchant_account.description,
            postal_code=code.postal_code,
        )
        assert rebuilt == text

    @settings(max_examples=200)
    @given(
        host=st.from_regex(r"[a-z0-9]{1,20}\.[a-z]{2,6}", fullmatch=True),
        path=st.text(string.ascii_letters + string.digits + "/-_", min_size=1, max_size=50),
        name=display_text,
        amount=amounts,
    )
    def test_dynamic_build_then_parse(
        self, host: str, path: str, name: str, amount: int | None
    ) -> None:
        """The location URL, name and amount survive a dynamic build and parse."""
        url = f"{host}/{path}"
        code = parse_brcode(
            build_dynamic_brcode(
                location_url=url, merchant_name=name, merchant_city="Recife", amount_centavos=amount
            )
        )
        assert code.location_url == url
        assert code.point_of_initiation == "dynamic"
        assert code.merchant_name == sanitize_brcode_text(name, 25)
        assert code.amount_centavos == amount
        assert code.txid is None

    @settings(max_examples=200)
    @given(
        recurrence=locations,
        name=display_text,
        city=display_text,
        postal=st.none() | st.text(string.digits, min_size=8, max_size=8),
    )
    def test_recurrence_build_then_parse(
        self, recurrence: str, name: str, city: str, postal: str | None
    ) -> None:
        """A recurrence-only code built from any inputs parses back to them, with nothing to pay."""
        text = build_recurrence_brcode(
            recurrence_url=recurrence, merchant_name=name, merchant_city=city, postal_code=postal
        )
        code = parse_brcode(text)
        assert code.kind is BRCodeKind.RECURRENCE
        assert code.recurrence_url == recurrence
        assert code.key is None
        assert code.location_url is None
        assert code.amount_centavos is None
        assert code.merchant_name == sanitize_brcode_text(name, 25)
        assert code.merchant_city == sanitize_brcode_text(city, 15)
        assert code.postal_code == postal
        rebuilt = build_recurrence_brcode(
            recurrence_url=code.recurrence_url or "",
            merchant_name=code.merchant_name,
            merchant_city=code.merchant_city,
            postal_code=code.postal_code,
        )
        assert rebuilt == text

    @settings(max_examples=200)
    @given(
        charge=st.one_of(any_key.map(lambda k: ("key", k)), locations.map(lambda u: ("url", u))),
        recurrence=locations,
        amount=amounts,
    )
    def test_composite_build_then_parse(
        self, charge: tuple[str, str], recurrence: str, amount: int | None
    ) -> None:
        """A static or dynamic charge with a recurrence parses back as composite, both intact."""
        kind, value = charge
        if kind == "key":
            text = build_static_brcode(
                key=value,
                merchant_name="Loja",
                merchant_city="Recife",
                amount_centavos=amount,
                recurrence_url=recurrence,
            )
        else:
            text = build_dynamic_brcode(
                location_url=value,
                merchant_name="Loja",
                merchant_city="Recife",
                amount_centavos=amount,
                recurrence_url=recurrence,
            )
        code = parse_brcode(text)
        assert code.kind is BRCodeKind.COMPOSITE
        assert code.recurrence_url == recurrence
        assert code.amount_centavos == amount
        if kind == "key":
            assert code.key == parse_pix_key(value).value
        else:
            assert code.location_url == value
