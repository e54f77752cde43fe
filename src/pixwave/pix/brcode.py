"""BR Code ("Pix copia e cola"): the EMV Merchant-Presented QR payload that Pix uses.

A BR Code is a flat list of TLV objects (2-digit ID, 2-digit length, value) in which some values
are themselves TLV lists (templates). Lengths count characters; the CRC in field 63 is computed
over the UTF-8 bytes of everything before its value, ``"6304"`` included.

Parsing is liberal in what it keeps and strict in what it trusts: every field is preserved
(unknown ones included, in :attr:`BRCode.raw`), names and cities may be longer than the EMV
limits or non-ASCII, the Pix GUI may be upper-case; but a bad CRC, a length that overruns, a
missing mandatory field, a misplaced 00/63, a lower-case CRC or a non-BRL currency are rejected,
because a wallet must never pay a code it cannot read with certainty.

Amounts (field 54) follow EMV: digits with an optional ``.`` and at most two decimals, so
``"10"``, ``"10."``, ``"10.5"``, ``".50"`` and ``"10.00"`` are all accepted; they are converted
to int centavos with integer arithmetic only. At most 13 characters, hence at most
``9999999999.99`` (999 999 999 999 centavos).

Pix Automático (recurring payments) adds template 80: the Pix GUI (80-00) and the recurrence
location (80-25, a URL without scheme, like 26-25) where the payer's PSP fetches the signed
recurrence. A code is then one of four kinds (:class:`BRCodeKind`): *static* (26 has a key),
*dynamic* (26 has a charge location), *recurrence* (26 has only the GUI and 80 carries the
recurrence: nothing to pay now, the payer only authorises, the BCB's Jornada 2) or *composite*
(a charge in 26 plus the recurrence in 80: Jornada 3 when the charge is an immediate ``cob``,
whose payment also authorises the recurrence; Jornada 4 when it is a due-date ``cobv`` or a
static code, paid first with the recurrence offered alongside). Jornada 1 is a push to the
payer's app and has no code. The BR Code alone cannot tell Jornada 3 from 4 for a dynamic
composite: the signed payload behind 26-25 says whether the charge is a ``cob`` or a ``cobv``.

Builders produce the canonical form: ASCII-only name and city (accents stripped, then truncated
to 25 and 15 characters because PSPs display only that much), lower-case GUI, upper-case CRC.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from pixwave.kit.money import MAX_AMOUNT, to_decimal_string
from pixwave.pix.crc import crc16_hex
from pixwave.pix.errors import PixErrorCode, PixFormatError
from pixwave.pix.keys import MAX_KEY_LENGTH, parse_pix_key

__all__ = [
    "MAX_AMOUNT_CENTAVOS",
    "PIX_GUI",
    "AdditionalData",
    "BRCode",
    "BRCodeKind",
    "PixMerchantAccount",
    "PixRecurrence",
    "TLVField",
    "Template",
    "brcode_to_dict",
    "build_dynamic_brcode",
    "build_recurrence_brcode",
    "build_static_brcode",
    "format_brcode_amount",
    "parse_brcode",
    "parse_brcode_amount",
    "sanitize_brcode_text",
]

PIX_GUI = "br.gov.bcb.pix"
MAX_AMOUNT_CENTAVOS = MAX_AMOUNT
"""Largest amount field 54 can carry: 13 characters, ``9999999999.99`` (PixWave's own limit)."""
MERCHANT_NAME_MAX = 25
MERCHANT_CITY_MAX = 15
LOCATION_URL_MAX = 77
REFERENCE_LABEL_MAX = 25
NO_TXID = "***"
RECURRENCE_TEMPLATE_ID = "80"
"""Pix Automático's template; the BCB's composite QR examples (API Pix 2.9.0) all use 80."""

_FIELD_NAMES = {
    "00": "payload format indicator",
    "01": "point of initiation method",
    "52": "merchant category code",
    "53": "transaction currency",
    "54": "transaction amount",
    "58": "country code",
    "59": "merchant name",
    "60": "merchant city",
    "61": "postal code",
    "62": "additional data field template",
    "63": "CRC",
    "80": "Pix Automático recurrence",
}
_MANDATORY = ("52", "53", "58", "59", "60")
_AMOUNT_RE = re.compile(r"([0-9]*)(?:\.([0-9]{0,2}))?")
_CRC_RE = re.compile(r"[0-9A-F]{4}")
_TXID_RE = re.compile(r"[A-Za-z0-9]{1,25}")
_MCC_RE = re.compile(r"[0-9]{4}")
_URL_RE = re.compile(r"[!-~]+")  # printable ASCII without spaces
_PIX_GUI_PREFIX = f"00{len(PIX_GUI):02d}{PIX_GUI}"


def _describe(field_id: str) -> str:
    name = _FIELD_NAMES.get(field_id)
    return f"field {field_id} ({name})" if name else f"field {field_id}"


# --------------------------------------------------------------------------------------------
# Parsed representation


class BRCodeKind(StrEnum):
    """What a code asks of the payer, from its merchant account (26–51) and template 80.

    The values are part of the public API (they appear in :func:`brcode_to_dict`).
    """

    STATIC = "static"
    """26 carries a key: the payer's app pays it (amount from 54 or typed by the payer)."""
    DYNAMIC = "dynamic"
    """26 carries a charge location: the payer's PSP fetches the signed charge and pays it."""
    RECURRENCE = "recurrence"
    """Pix Automático Jornada 2: 26 has only the GUI and 80 the recurrence. Nothing to pay now;
    the payer's PSP fetches the recurrence from 80-25 and the payer authorises it or not."""
    COMPOSITE = "composite"
    """Pix Automático Jornadas 3 and 4: a static or dynamic charge in 26 plus the recurrence in
    80. Paying an immediate charge (``cob``, Jornada 3) also authorises the recurrence; with a
    due-date charge (``cobv``) or a static code (Jornada 4) the payer pays and may adhere."""


@dataclass(frozen=True, slots=True)
class TLVField:
    """One top-level object exactly as it appeared; ``position`` is the index of its ID."""

    id: str
    value: str
    position: int


@dataclass(frozen=True, slots=True)
class Template:
    """A template we do not interpret (another arrangement's account, IDs 80–99).

    ``sub_fields`` is ``None`` when the value does not parse as TLV, so nothing is lost either way.
    """

    id: str
    value: str
    sub_fields: Mapping[str, str] | None

    @property
    def gui(self) -> str | None:
        """The globally unique identifier (sub-field 00) naming the template's owner."""
        return self.sub_fields.get("00") if self.sub_fields is not None else None

    @property
    def url(self) -> str | None:
        """Sub-field 25, a location URL (used by Pix Automático's template 80)."""
        return self.sub_fields.get("25") if self.sub_fields is not None else None


@dataclass(frozen=True, slots=True)
class PixMerchantAccount:
    """The merchant account template (26–51) whose GUI is ``br.gov.bcb.pix``.

    A static code carries the receiver's ``key`` (01); a dynamic one a location ``url`` (25) that
    the payer's PSP fetches over HTTPS to get the signed charge.
    """

    id: str
    gui: str
    key: str | None
    description: str | None
    """Sub-field 02: free text shown to the payer."""
    fss: str | None
    """Sub-field 03: ISPB of the withdrawal facilitator (Pix Saque/Troco)."""
    url: str | None
    fields: Mapping[str, str]
    """All sub-fields in order of appearance, including the ones above and any unknown ones."""


@dataclass(frozen=True, slots=True)
class PixRecurrence:
    """Pix Automático's template 80: GUI ``br.gov.bcb.pix`` and the recurrence location.

    ``url`` is a ``/locrec`` location without scheme (at most 77 characters in the API Pix), the
    address where the payer's PSP fetches the signed recurrence (``GET /rec/{token}``).
    """

    id: str
    gui: str
    url: str
    fields: Mapping[str, str]
    """All sub-fields in order of appearance, including 00, 25 and any unknown ones."""


@dataclass(frozen=True, slots=True)
class AdditionalData:
    """Template 62; sub-field 05 (reference label) is the txid, ``***`` when there is none."""

    reference_label: str | None
    fields: Mapping[str, str]

    @property
    def txid(self) -> str | None:
        """The reference label, or ``None`` when absent or ``***``."""
        if self.reference_label in (None, NO_TXID):
            return None
        return self.reference_label


@dataclass(frozen=True, slots=True)
class BRCode:
    """A parsed BR Code. Every field of the input is in :attr:`raw`, in order."""

    payload_format_indicator: str
    point_of_initiation: Literal["static", "dynamic"]
    merchant_account: PixMerchantAccount
    other_templates: Mapping[str, Template]
    """Merchant account templates 26–51 that are not the Pix one (other arrangements)."""
    merchant_category_code: str
    currency: str
    amount_centavos: int | None
    country: str
    merchant_name: str
    merchant_city: str
    postal_code: str | None
    additional_data: AdditionalData | None
    unreserved_templates: Mapping[str, Template]
    """Templates 80–99 as written, 80 included (its checked reading is :attr:`recurrence`)."""
    recurrence: PixRecurrence | None
    """Pix Automático's template 80, checked: the Pix GUI and a recurrence location."""
    other_fields: Mapping[str, str]
    """Top-level fields with no attribute above (e.g. card schemes' 02–25, 55–57, 64)."""
    crc: str
    raw: tuple[TLVField, ...]

    @property
    def key(self) -> str | None:
        """The receiver's Pix key as written in the code (static codes)."""
        return self.merchant_account.key

    @property
    def location_url(self) -> str | None:
        """The charge location without scheme (dynamic codes)."""
        return self.merchant_account.url

    @property
    def txid(self) -> str | None:
        """The txid from 62-05, or ``None`` when absent or ``***``."""
        return self.additional_data.txid if self.additional_data is not None else None

    @property
    def recurrence_url(self) -> str | None:
        """The Pix Automático recurrence location (80-25) without scheme, if the code has one."""
        return self.recurrence.url if self.recurrence is not None else None

    @property
    def kind(self) -> BRCodeKind:
        """Static, dynamic, recurrence-only (nothing to pay now) or composite; see BRCodeKind.

        A 26 with both a key and a location (no BCB layout has both, but the parser keeps both)
        counts as dynamic, because the location is where the signed charge is.
        """
        account = self.merchant_account
        if self.recurrence is not None and account.key is None and account.url is None:
            return BRCodeKind.RECURRENCE
        if self.recurrence is not None:
            return BRCodeKind.COMPOSITE
        return BRCodeKind.DYNAMIC if account.url is not None else BRCodeKind.STATIC


# --------------------------------------------------------------------------------------------
# Parsing


def _tokenize(text: str, *, base: int, scope: str | None, top_level: bool) -> list[TLVField]:
    """Split ``text`` into TLV objects; ``base`` makes positions absolute in the whole payload.

    At top level, field 63 must end the payload; anything after it is reported as misplaced
    rather than as a confusing length error.
    """
    fields: list[TLVField] = []
    where = f"template {scope}: " if scope else ""
    prefix = f"{scope}." if scope else ""
    i = 0
    n = len(text)
    while i < n:
        at = base + i
        if n - i < 4:
            raise PixFormatError(
                PixErrorCode.BRCODE_LENGTH,
                f"{where or 'payload '}truncated at index {at}: {n - i} character(s) left, "
                "too few for a "
                f"2-digit ID and a 2-digit length ({text[i:]!r})",
                field=scope,
                position=at,
            )
        field_id = text[i : i + 2]
        length_text = text[i + 2 : i + 4]
        if not (field_id.isascii() and field_id.isdigit()):
            raise PixFormatError(
                PixErrorCode.BRCODE_MALFORMED,
                f"{where}expected a 2-digit field ID at index {at}, found {field_id!r}",
                field=scope,
                position=at,
            )
        full_id = prefix + field_id
        label = f"field {full_id}" if scope else _describe(field_id)
        if not (length_text.isascii() and length_text.isdigit()):
            raise PixFormatError(
                PixErrorCode.BRCODE_MALFORMED,
                f"{label} at index {at}: expected a 2-digit length at index {at + 2}, "
                f"found {length_text!r}",
                field=full_id,
                position=at + 2,
            )
        length = int(length_text)
        start = i + 4
        end = start + length
        if end > n:
            container = f"template {scope}" if scope else "the payload"
            raise PixFormatError(
                PixErrorCode.BRCODE_LENGTH,
                f"{label} at index {at} declares length {length_text} but only "
                f"{n - start} character(s) remain in {container}",
                field=full_id,
                position=at,
            )
        fields.append(TLVField(id=field_id, value=text[start:end], position=at))
        i = end
        if top_level and field_id == "63" and i < n:
            raise PixFormatError(
                PixErrorCode.BRCODE_FIELD_ORDER,
                f"field 63 (CRC) at index {at} must be the last field, but "
                f"{n - i} character(s) follow it at index {i}",
                field="63",
                position=i,
            )
    return fields


def _sub_field_items(field: TLVField) -> dict[str, TLVField]:
    """Parse a template strictly: errors name the template and the absolute position."""
    items = _tokenize(field.value, base=field.position + 4, scope=field.id, top_level=False)
    result: dict[str, TLVField] = {}
    for item in items:
        if item.id in result:
            raise PixFormatError(
                PixErrorCode.BRCODE_MALFORMED,
                f"field {field.id}.{item.id} at index {item.position} repeats a sub-field",
                field=f"{field.id}.{item.id}",
                position=item.position,
            )
        result[item.id] = item
    return result


def _sub_fields(field: TLVField) -> dict[str, str]:
    return {sub_id: item.value for sub_id, item in _sub_field_items(field).items()}


def _is_pix_template(template: Template) -> bool:
    """A template is Pix's when its GUI is ``br.gov.bcb.pix`` in any case.

    A value that starts with the Pix GUI but does not parse is still claimed as Pix, so that the
    strict re-parse reports where it breaks instead of a vague "not a Pix code".
    """
    if template.value[: len(_PIX_GUI_PREFIX)].lower() == _PIX_GUI_PREFIX:
        return True
    return template.gui is not None and template.gui.lower() == PIX_GUI


def _lenient_template(field: TLVField) -> Template:
    try:
        sub_fields: Mapping[str, str] | None = MappingProxyType(_sub_fields(field))
    except PixFormatError:
        sub_fields = None
    return Template(id=field.id, value=field.value, sub_fields=sub_fields)


def parse_brcode_amount(value: str) -> int:
    """Convert an EMV amount string to int centavos without ever going through float."""
    match = _AMOUNT_RE.fullmatch(value) if len(value) <= 13 else None
    if match is None or not any(c.isdigit() for c in value):
        raise PixFormatError(
            PixErrorCode.INVALID_AMOUNT,
            f"field 54 (transaction amount) must be up to 13 characters of digits with an "
            f"optional '.' and at most 2 decimals, found {value!r}",
            field="54",
        )
    whole, cents = match.group(1), match.group(2) or ""
    return int(whole or "0") * 100 + int(cents.ljust(2, "0"))


def format_brcode_amount(amount_centavos: int) -> str:
    """Format int centavos as field 54 wants (``12345`` → ``"123.45"``), integers only."""
    if isinstance(amount_centavos, bool) or not isinstance(amount_centavos, int):
        raise PixFormatError(
            PixErrorCode.INVALID_AMOUNT,
            f"amount must be an int number of centavos, got {type(amount_centavos).__name__}",
            field="54",
        )
    if not 1 <= amount_centavos <= MAX_AMOUNT_CENTAVOS:
        raise PixFormatError(
            PixErrorCode.INVALID_AMOUNT,
            f"amount must be 1..{MAX_AMOUNT_CENTAVOS} centavos, got {amount_centavos}",
            field="54",
        )
    return to_decimal_string(amount_centavos)


def _invalid_field(field: TLVField, message: str) -> PixFormatError:
    return PixFormatError(
        PixErrorCode.BRCODE_INVALID_FIELD,
        f"{_describe(field.id)} at index {field.position}: {message}",
        field=field.id,
        position=field.position,
    )


def _missing(field_id: str, message: str | None = None) -> PixFormatError:
    return PixFormatError(
        PixErrorCode.BRCODE_MISSING_FIELD,
        message or f"mandatory {_describe(field_id)} is missing",
        field=field_id,
    )


def _check_frame(payload: str, fields: list[TLVField]) -> TLVField:
    """Check 00 first, 63 last and the CRC; return the CRC field."""
    ids = [f.id for f in fields]
    if fields[0].id != "00":
        if "00" not in ids:
            raise _missing("00")
        raise PixFormatError(
            PixErrorCode.BRCODE_FIELD_ORDER,
            f"field 00 (payload format indicator) must come first, found field {fields[0].id} "
            "at index 0",
            field="00",
            position=0,
        )
    crc_field = fields[-1]
    if crc_field.id != "63":
        raise _missing("63")
    seen: set[str] = set()
    for field in fields:
        if field.id in seen:
            raise PixFormatError(
                PixErrorCode.BRCODE_MALFORMED,
                f"{_describe(field.id)} at index {field.position} appears more than once",
                field=field.id,
                position=field.position,
            )
        seen.add(field.id)
    if not _CRC_RE.fullmatch(crc_field.value):
        raise PixFormatError(
            PixErrorCode.BRCODE_MALFORMED,
            f"field 63 (CRC) at index {crc_field.position} must be 4 upper-case hex digits "
            f"(length 04), found {crc_field.value!r}",
            field="63",
            position=crc_field.position,
        )
    expected = crc16_hex(payload[: crc_field.position + 4])
    if crc_field.value != expected:
        raise PixFormatError(
            PixErrorCode.BRCODE_CRC_MISMATCH,
            f"CRC mismatch in field 63 at index {crc_field.position}: expected {expected}, "
            f"found {crc_field.value}",
            field="63",
            position=crc_field.position,
        )
    return crc_field


def _invalid_recurrence(field_id: str, position: int, message: str) -> PixFormatError:
    return PixFormatError(
        PixErrorCode.BRCODE_INVALID_RECURRENCE,
        f"field {field_id} (Pix Automático recurrence) at index {position}: {message}",
        field=field_id,
        position=position,
    )


def _recurrence(field: TLVField) -> PixRecurrence:
    """Read template 80 strictly: the Pix GUI and a recurrence location, or an error.

    A wrong 80 is refused rather than ignored: reading it as "no recurrence" would show a
    composite code as a plain charge, hiding that paying it may authorise future debits. The GUI
    may be upper-case (as in 26); the URL must be printable ASCII without spaces. Its length is
    not checked here (the API Pix allows 77), as 26-25's is not: the payer's PSP fetches it.
    Unknown sub-fields are kept, as in 26.
    """
    items = _sub_field_items(field)
    where = field.id
    gui = items.get("00")
    if gui is None:
        raise _invalid_recurrence(
            f"{where}.00", field.position, f"the GUI {PIX_GUI!r} (sub-field 00) is missing"
        )
    if gui.value.lower() != PIX_GUI:
        raise _invalid_recurrence(
            f"{where}.00", gui.position, f"expected the GUI {PIX_GUI!r}, found {gui.value!r}"
        )
    url = items.get("25")
    if url is None:
        raise _invalid_recurrence(
            f"{where}.25", field.position, "the recurrence location (sub-field 25) is missing"
        )
    if not _URL_RE.fullmatch(url.value):
        raise _invalid_recurrence(
            f"{where}.25",
            url.position,
            "the recurrence location must be a non-empty URL of printable ASCII without spaces, "
            f"found {url.value!r}",
        )
    return PixRecurrence(
        id=field.id,
        gui=gui.value,
        url=url.value,
        fields=MappingProxyType({sub_id: item.value for sub_id, item in items.items()}),
    )


def _pix_account(
    field: TLVField, sub_fields: Mapping[str, str], *, has_recurrence: bool
) -> PixMerchantAccount:
    """Read the Pix merchant account; without a recurrence it must name a key or a location.

    With a valid template 80 the account may hold only the GUI: that is the BCB's
    recurrence-only code (Jornada 2), in which nothing is paid.
    """
    key = sub_fields.get("01")
    url = sub_fields.get("25")
    if key is None and url is None and not has_recurrence:
        raise _missing(
            f"{field.id}.01",
            f"Pix merchant account (field {field.id} at index {field.position}) has neither a "
            "key (sub-field 01) nor a location URL (sub-field 25), and the code has no Pix "
            "Automático recurrence (field 80)",
        )
    return PixMerchantAccount(
        id=field.id,
        gui=sub_fields["00"],
        key=key,
        description=sub_fields.get("02"),
        fss=sub_fields.get("03"),
        url=url,
        fields=MappingProxyType(dict(sub_fields)),
    )


@dataclass(slots=True)
class _Sorted:
    """A BR Code's top-level fields, sorted by what they are."""

    account_field: TLVField | None = None
    account_sub_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    recurrence: PixRecurrence | None = None
    other_templates: dict[str, Template] = dataclasses.field(default_factory=dict)
    unreserved: dict[str, Template] = dataclasses.field(default_factory=dict)
    other_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    additional: AdditionalData | None = None


def _sort_fields(fields: Sequence[TLVField]) -> _Sorted:
    found = _Sorted()
    for tlv in fields:
        number = int(tlv.id)
        if 26 <= number <= 51:
            template = _lenient_template(tlv)
            if found.account_field is None and _is_pix_template(template):
                found.account_field, found.account_sub_fields = tlv, _sub_fields(tlv)
            else:
                found.other_templates[tlv.id] = template
        elif 80 <= number <= 99:
            # 81-99 stay uninterpreted even with the Pix GUI: only 80 is assigned to Pix.
            found.unreserved[tlv.id] = _lenient_template(tlv)
            if tlv.id == RECURRENCE_TEMPLATE_ID:
                found.recurrence = _recurrence(tlv)
        elif tlv.id == "62":
            sub = _sub_fields(tlv)
            found.additional = AdditionalData(
                reference_label=sub.get("05"), fields=MappingProxyType(sub)
            )
        elif tlv.id not in ("00", "01", "52", "53", "54", "58", "59", "60", "61", "63"):
            found.other_fields[tlv.id] = tlv.value
    return found


def _point_of_initiation(by_id: Mapping[str, TLVField]) -> Literal["static", "dynamic"]:
    poi = by_id.get("01")
    if poi is None:
        return "static"
    if poi.value not in ("11", "12"):
        raise _invalid_field(poi, f"expected '11' (static) or '12' (dynamic), found {poi.value!r}")
    return "dynamic" if poi.value == "12" else "static"


def _account(found: _Sorted) -> PixMerchantAccount:
    if found.account_field is None:
        if found.other_templates:
            raise PixFormatError(
                PixErrorCode.BRCODE_NOT_PIX,
                f"no merchant account template (IDs 26-51) carries the Pix GUI {PIX_GUI!r}; "
                f"found templates {', '.join(sorted(found.other_templates))}",
                field="26",
            )
        # Even a recurrence-only code carries 26 with the GUI (the BCB's Jornada 2 example).
        raise _missing("26", "mandatory Pix merchant account template (ID 26-51) is missing")
    return _pix_account(
        found.account_field, found.account_sub_fields, has_recurrence=found.recurrence is not None
    )


def _amount(by_id: Mapping[str, TLVField]) -> int | None:
    amount_field = by_id.get("54")
    if amount_field is None:
        return None
    try:
        return parse_brcode_amount(amount_field.value)
    except PixFormatError as exc:
        raise PixFormatError(
            exc.code,
            f"{exc.message} (at index {amount_field.position})",
            field="54",
            position=amount_field.position,
        ) from None


def parse_brcode(text: str) -> BRCode:
    """Parse and verify a BR Code; raise :class:`PixFormatError` saying what and where.

    Surrounding whitespace (a pasted trailing newline) is ignored; positions in messages are
    0-based character indexes into the stripped text.

    A recurrence-only code (:attr:`BRCodeKind.RECURRENCE`) goes through the same checks. The
    BCB's example has no field 54; one that has it keeps it in ``amount_centavos``, but there is
    still nothing to pay: the kind, not the amount, says whether a code is payable.
    """
    payload = text.strip()
    if not payload:
        raise PixFormatError(PixErrorCode.BRCODE_MALFORMED, "BR Code is empty")
    fields = _tokenize(payload, base=0, scope=None, top_level=True)
    crc_field = _check_frame(payload, fields)
    by_id = {f.id: f for f in fields}

    pfi = by_id["00"]
    if pfi.value != "01":
        raise _invalid_field(pfi, f"expected '01', found {pfi.value!r}")
    point_of_initiation = _point_of_initiation(by_id)
    found = _sort_fields(fields)
    account = _account(found)
    for field_id in _MANDATORY:
        if field_id not in by_id:
            raise _missing(field_id)

    mcc = by_id["52"]
    if not _MCC_RE.fullmatch(mcc.value):
        raise _invalid_field(mcc, f"expected 4 digits, found {mcc.value!r}")
    currency = by_id["53"]
    if currency.value != "986":
        raise _invalid_field(currency, f"Pix is in BRL, expected '986', found {currency.value!r}")
    postal = by_id.get("61")

    return BRCode(
        payload_format_indicator=pfi.value,
        point_of_initiation=point_of_initiation,
        merchant_account=account,
        other_templates=MappingProxyType(found.other_templates),
        merchant_category_code=mcc.value,
        currency=currency.value,
        amount_centavos=_amount(by_id),
        country=by_id["58"].value,
        merchant_name=by_id["59"].value,
        merchant_city=by_id["60"].value,
        postal_code=postal.value if postal is not None else None,
        additional_data=found.additional,
        unreserved_templates=MappingProxyType(found.unreserved),
        recurrence=found.recurrence,
        other_fields=MappingProxyType(found.other_fields),
        crc=crc_field.value,
        raw=tuple(fields),
    )


# --------------------------------------------------------------------------------------------
# Building


def sanitize_brcode_text(text: str, max_length: int) -> str:
    """Reduce ``text`` to printable ASCII (accents stripped) and cut it to ``max_length``.

    Payer apps differ on non-ASCII (length in characters or bytes?), so generated codes avoid
    it altogether; ``São Paulo`` becomes ``Sao Paulo``. Characters with no ASCII base are
    dropped and runs of whitespace collapse to one space.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if " " <= c <= "~" or c.isspace())
    collapsed = " ".join(ascii_only.split())
    return collapsed[:max_length].rstrip()


def _tlv(field_id: str, value: str) -> str:
    if len(value) > 99:
        raise PixFormatError(
            PixErrorCode.BRCODE_FIELD_TOO_LONG,
            f"{_describe(field_id)} would be {len(value)} characters long; the limit is 99",
            field=field_id,
        )
    return f"{field_id}{len(value):02d}{value}"


def _required_text(value: str, max_length: int, field_id: str) -> str:
    cleaned = sanitize_brcode_text(value, max_length)
    if not cleaned:
        raise PixFormatError(
            PixErrorCode.BRCODE_INVALID_FIELD,
            f"{_describe(field_id)} has no printable characters once reduced to ASCII: {value!r}",
            field=field_id,
        )
    return cleaned


def _postal_code(value: str) -> str:
    cep = value.strip().replace("-", "").replace(".", "").replace(" ", "")
    if not (len(cep) == 8 and cep.isascii() and cep.isdigit()):
        raise PixFormatError(
            PixErrorCode.BRCODE_INVALID_FIELD,
            f"field 61 (postal code) must be an 8-digit CEP, found {value!r}",
            field="61",
        )
    return cep


def _reference_label(txid: str) -> str:
    if txid != NO_TXID and not _TXID_RE.fullmatch(txid):
        raise PixFormatError(
            PixErrorCode.INVALID_TXID,
            f"a BR Code txid (field 62-05) must be 1..{REFERENCE_LABEL_MAX} letters or digits, "
            f"or {NO_TXID!r}; found {txid!r}",
            field="62.05",
        )
    return txid


def _mcc(value: str) -> str:
    if not _MCC_RE.fullmatch(value):
        raise PixFormatError(
            PixErrorCode.BRCODE_INVALID_FIELD,
            f"field 52 (merchant category code) must be 4 digits, found {value!r}",
            field="52",
        )
    return value


def _assemble(
    *,
    point_of_initiation: str | None,
    account: str,
    merchant_category_code: str,
    amount_centavos: int | None,
    merchant_name: str,
    merchant_city: str,
    postal_code: str | None,
    txid: str,
    recurrence_url: str | None = None,
) -> str:
    parts = [_tlv("00", "01")]
    if point_of_initiation is not None:
        parts.append(_tlv("01", point_of_initiation))
    parts.append(_tlv("26", account))
    parts.append(_tlv("52", _mcc(merchant_category_code)))
    parts.append(_tlv("53", "986"))
    if amount_centavos is not None:
        parts.append(_tlv("54", format_brcode_amount(amount_centavos)))
    parts.append(_tlv("58", "BR"))
    parts.append(_tlv("59", _required_text(merchant_name, MERCHANT_NAME_MAX, "59")))
    parts.append(_tlv("60", _required_text(merchant_city, MERCHANT_CITY_MAX, "60")))
    if postal_code is not None:
        parts.append(_tlv("61", _postal_code(postal_code)))
    parts.append(_tlv("62", _tlv("05", _reference_label(txid))))
    if recurrence_url is not None:
        # After 62, where the BCB's composite examples put it; any place before 63 parses.
        url = _location_url(recurrence_url, field="80.25", label="recurrence location URL")
        parts.append(_tlv(RECURRENCE_TEMPLATE_ID, _tlv("00", PIX_GUI) + _tlv("25", url)))
    payload = "".join(parts) + "6304"
    return payload + crc16_hex(payload)


def build_static_brcode(
    *,
    key: str,
    merchant_name: str,
    merchant_city: str,
    amount_centavos: int | None = None,
    txid: str = NO_TXID,
    description: str | None = None,
    postal_code: str | None = None,
    merchant_category_code: str = "0000",
    recurrence_url: str | None = None,
) -> str:
    """Build a reusable code that pays ``key``; without an amount the payer types it.

    The key is validated and normalised (:func:`parse_pix_key`) so a printed CPF or an
    upper-case EVP still yields the canonical code. Field 01 is omitted, which means static.
    With ``recurrence_url`` (a ``/locrec`` location) the code is composite: Pix Automático's
    Jornada 4 for a static code tied to a contract, the recurrence offered beside the payment.
    """
    pix_key = parse_pix_key(key).value
    if len(pix_key) > MAX_KEY_LENGTH:  # pragma: no cover - parse_pix_key enforces it
        raise PixFormatError(PixErrorCode.INVALID_PIX_KEY, "Pix key is too long", field="26.01")
    account = _tlv("00", PIX_GUI) + _tlv("01", pix_key)
    if description is not None and (info := sanitize_brcode_text(description, 99)):
        room = 99 - len(account) - 4
        if len(info) > room:
            raise PixFormatError(
                PixErrorCode.BRCODE_FIELD_TOO_LONG,
                f"field 26.02 (description) is {len(info)} characters; with this key the "
                f"merchant account template 26 leaves room for {max(room, 0)} (limit 99)",
                field="26.02",
            )
        account += _tlv("02", info)
    return _assemble(
        point_of_initiation=None,
        account=account,
        merchant_category_code=merchant_category_code,
        amount_centavos=amount_centavos,
        merchant_name=merchant_name,
        merchant_city=merchant_city,
        postal_code=postal_code,
        txid=txid,
        recurrence_url=recurrence_url,
    )


def _location_url(value: str, *, field: str = "26.25", label: str = "location URL") -> str:
    """A ``/loc`` or ``/locrec`` location without scheme; both are at most 77 characters."""
    url = value.strip()
    if url[:8].lower() == "https://":
        url = url[8:]
    if "://" in url:
        raise PixFormatError(
            PixErrorCode.BRCODE_INVALID_FIELD,
            f"field {field} ({label}) must not carry a scheme other than https, found {value!r}",
            field=field,
        )
    if not _URL_RE.fullmatch(url):
        raise PixFormatError(
            PixErrorCode.BRCODE_INVALID_FIELD,
            f"field {field} ({label}) must be printable ASCII without spaces, found {value!r}",
            field=field,
        )
    if len(url) > LOCATION_URL_MAX:
        raise PixFormatError(
            PixErrorCode.BRCODE_FIELD_TOO_LONG,
            f"field {field} ({label}) is {len(url)} characters; the limit is {LOCATION_URL_MAX}",
            field=field,
        )
    return url


def build_dynamic_brcode(
    *,
    location_url: str,
    merchant_name: str,
    merchant_city: str,
    amount_centavos: int | None = None,
    postal_code: str | None = None,
    merchant_category_code: str = "0000",
    recurrence_url: str | None = None,
) -> str:
    """Build a single-use code (``010212``) pointing at a charge location.

    ``location_url`` is the PSP's ``location`` without scheme (a leading ``https://`` is
    removed); the amount and txid travel in the signed payload behind it, so 62-05 is ``***``.
    With ``recurrence_url`` (a ``/locrec`` location, same rules) the code is Pix Automático's
    composite QR: Jornada 3 when the location is an immediate charge (``cob``), Jornada 4 when
    it is a due-date charge (``cobv``).
    """
    account = _tlv("00", PIX_GUI) + _tlv("25", _location_url(location_url))
    return _assemble(
        point_of_initiation="12",
        account=account,
        merchant_category_code=merchant_category_code,
        amount_centavos=amount_centavos,
        merchant_name=merchant_name,
        merchant_city=merchant_city,
        postal_code=postal_code,
        txid=NO_TXID,
        recurrence_url=recurrence_url,
    )


def build_recurrence_brcode(
    *,
    recurrence_url: str,
    merchant_name: str,
    merchant_city: str,
    postal_code: str | None = None,
    merchant_category_code: str = "0000",
) -> str:
    """Build a Pix Automático recurrence-only code (Jornada 2): nothing to pay, only to authorise.

    The layout is the BCB's example (API Pix 2.9.0, ``dadosQR`` of a ``JORNADA_2`` recurrence):
    26 holds only the GUI, no 01 and no 54, 62-05 is ``***`` and 80 carries the GUI and the
    recurrence location (a ``/locrec`` location without scheme; a leading ``https://`` is
    removed). The recurrence's amount and schedule travel in the signed payload behind it.
    """
    return _assemble(
        point_of_initiation=None,
        account=_tlv("00", PIX_GUI),
        merchant_category_code=merchant_category_code,
        amount_centavos=None,
        merchant_name=merchant_name,
        merchant_city=merchant_city,
        postal_code=postal_code,
        txid=NO_TXID,
        recurrence_url=recurrence_url,
    )


# --------------------------------------------------------------------------------------------
# JSON view


def _template_dict(template: Template) -> dict[str, Any]:
    sub = dict(template.sub_fields) if template.sub_fields is not None else None
    return {"value": template.value, "sub_fields": sub}


def brcode_to_dict(code: BRCode | str) -> dict[str, Any]:
    """Return a JSON-ready view of a code (parsing it first if given text), for CLIs and logs."""
    if isinstance(code, str):
        code = parse_brcode(code)
    account = code.merchant_account
    key_type: str | None = None
    if account.key is not None:
        try:
            key_type = parse_pix_key(account.key).type.value
        except PixFormatError:
            key_type = None
    additional = code.additional_data
    recurrence = code.recurrence
    return {
        "payload_format_indicator": code.payload_format_indicator,
        "point_of_initiation": code.point_of_initiation,
        "kind": code.kind.value,
        "merchant_account": {
            "id": account.id,
            "gui": account.gui,
            "key": account.key,
            "key_type": key_type,
            "description": account.description,
            "fss": account.fss,
            "url": account.url,
            "fields": dict(account.fields),
        },
        "other_templates": {k: _template_dict(v) for k, v in code.other_templates.items()},
        "merchant_category_code": code.merchant_category_code,
        "currency": code.currency,
        "amount_centavos": code.amount_centavos,
        "amount": (
            None
            if code.amount_centavos is None
            else f"{code.amount_centavos // 100}.{code.amount_centavos % 100:02d}"
        ),
        "country": code.country,
        "merchant_name": code.merchant_name,
        "merchant_city": code.merchant_city,
        "postal_code": code.postal_code,
        "additional_data": (
            None
            if additional is None
            else {
                "reference_label": additional.reference_label,
                "txid": additional.txid,
                "fields": dict(additional.fields),
            }
        ),
        "unreserved_templates": {
            k: _template_dict(v) for k, v in code.unreserved_templates.items()
        },
        "recurrence": (
            None
            if recurrence is None
            else {
                "id": recurrence.id,
                "gui": recurrence.gui,
                "url": recurrence.url,
                "fields": dict(recurrence.fields),
            }
        ),
        "recurrence_url": code.recurrence_url,
        "other_fields": dict(code.other_fields),
        "crc": code.crc,
        "fields": [{"id": f.id, "value": f.value, "position": f.position} for f in code.raw],
    }
