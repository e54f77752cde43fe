"""Mercado Pago's wire shapes, with MP's own field names, and their exact JSON encoding.

Requests are ``TypedDict``s built by the connector; responses are pydantic models validated from
JSON parsed with ``parse_float=Decimal``. MP writes amounts as JSON *numbers*
(``"transaction_amount": 10.1``), so neither direction may pass through ``float``:
:func:`encode_json` writes a ``Decimal`` as its exact text and :func:`to_centavos` turns a parsed
number into centavos with integer arithmetic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pixwave.kit.money import to_decimal_string

# --------------------------------------------------------------------------------------------
# Amounts


def amount_number(centavos: int) -> Decimal:
    """1010 → Decimal("10.10"): the JSON number MP expects, written by :func:`encode_json`
    exactly as ``to_decimal_string`` renders it."""
    return Decimal(to_decimal_string(centavos))


def to_centavos(value: Decimal | int) -> int:
    """A JSON number as MP sends it → centavos, exactly; more than 2 decimals is an error.

    Trailing zeros are fine (``10.100`` is 1010); ``10.001`` is not an amount of money.
    """
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value * 100
    if not value.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    coefficient = int("".join(str(d) for d in digits) or "0")
    shift = exponent + 2
    if shift >= 0:
        cents = coefficient * int(10**shift)
    else:
        cents, remainder = divmod(coefficient, int(10**-shift))
        if remainder:
            raise ValueError(f"amount {value} has more than 2 decimals")
    return -cents if sign else cents


# --------------------------------------------------------------------------------------------
# Exact JSON encoding


def encode_json(value: Any) -> bytes:
    """Serialise a request body; a ``Decimal`` becomes a JSON number with its exact digits.

    ``json.dumps`` cannot emit a raw number and going through ``float`` would turn 10.10 into
    10.1 (harmless) and 1234567.89 into whatever the float prints (not harmless), so containers
    are walked here and every leaf but ``Decimal`` is left to ``json.dumps``.
    """
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value!r} as a JSON number")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are never amounts: use Decimal")
    if isinstance(value, Mapping):
        items = (
            f"{json.dumps(str(key), ensure_ascii=False)}:{_encode(item)}"
            for key, item in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def decode_json(body: bytes) -> Any:
    """Parse a response body; JSON numbers with a fraction become ``Decimal``, never ``float``."""
    return json.loads(body, parse_float=Decimal)


# --------------------------------------------------------------------------------------------
# Requests


class Identification(TypedDict):
    type: Literal["CPF", "CNPJ"]
    number: str  # digits only (CNPJ may be alphanumeric)


class PayerCreate(TypedDict):
    email: str  # required by MP even for Pix
    first_name: NotRequired[str]
    identification: NotRequired[Identification]


class PaymentCreate(TypedDict):
    """``POST /v1/payments`` for a Pix charge (reference §1.2)."""

    transaction_amount: Decimal  # JSON number, reais
    description: NotRequired[str]
    payment_method_id: Literal["pix"]
    external_reference: str  # our transaction reference
    date_of_expiration: str  # yyyy-MM-ddTHH:mm:ss.000-03:00
    notification_url: NotRequired[str]
    payer: PayerCreate


class PaymentCancel(TypedDict):
    """``PUT /v1/payments/{id}``: the only update PixWave makes."""

    status: Literal["cancelled"]


class RefundCreate(TypedDict):
    """``POST /v1/payments/{id}/refunds``; always explicit, so a full refund is never implied."""

    amount: Decimal


class PixKeyRef(TypedDict):
    type: Literal["CPF", "CNPJ", "EMAIL", "PHONE", "EVP"]
    value: str


class AccountOwner(TypedDict):
    identification: Identification
    name: NotRequired[str]


class SourceAccount(TypedDict):
    amount: Decimal


class DestinationAccount(TypedDict):
    type: Literal["current"]
    amount: Decimal
    chave: PixKeyRef  # the recipient's Pix key
    owner: NotRequired[AccountOwner]


class PointOfInteractionCreate(TypedDict):
    type: Literal["PSP_TRANSFER"]


class NotificationInfo(TypedDict):
    notification_url: str


class SellerConfiguration(TypedDict):
    notification_info: NotificationInfo


class TransactionFrom(TypedDict):
    accounts: list[SourceAccount]


class TransactionTo(TypedDict):
    accounts: list[DestinationAccount]


# "from" is a Python keyword, hence the functional syntax.
TransactionCreate = TypedDict(
    "TransactionCreate",
    {"from": TransactionFrom, "to": TransactionTo, "total_amount": Decimal},
)


class TransactionIntentCreate(TypedDict):
    """``POST /v1/transaction-intents/process``, a Pix pay-out (reference §1.8, partly
    UNCONFIRMED: field names follow MP's docs excerpt and community implementations)."""

    external_reference: str
    point_of_interaction: PointOfInteractionCreate
    seller_configuration: NotRequired[SellerConfiguration]
    transaction: TransactionCreate


# --------------------------------------------------------------------------------------------
# Responses


class _Wire(BaseModel):
    """MP adds fields freely; unknown ones are ignored, the ones read here are checked."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _utc(value: datetime) -> datetime:
    """MP writes local offsets (-03:00, -04:00); PixWave keeps UTC. A naive time is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class TransactionData(_Wire):
    qr_code: str | None = None  # the BR Code ("Pix copia e cola")
    qr_code_base64: str | None = None  # PNG, base64
    ticket_url: str | None = None


class PointOfInteraction(_Wire):
    type: str | None = None  # "PIX"
    transaction_data: TransactionData | None = None


class Payment(_Wire):
    """A payment resource (``GET /v1/payments/{id}``), reduced to what PixWave reads."""

    id: int | str
    status: str
    status_detail: str | None = None
    external_reference: str | None = None
    transaction_amount: Decimal | int
    transaction_amount_refunded: Decimal | int = 0
    date_created: UtcDatetime | None = None
    date_approved: UtcDatetime | None = None
    date_of_expiration: UtcDatetime | None = None
    point_of_interaction: PointOfInteraction | None = None


class RefundResource(_Wire):
    """A refund (``/v1/payments/{id}/refunds[/{refund_id}]``)."""

    id: int | str
    payment_id: int | str | None = None
    amount: Decimal | int
    status: str
    date_created: UtcDatetime | None = None


class IntentAccount(_Wire):
    amount: Decimal | int | None = None


class IntentSide(_Wire):
    accounts: list[IntentAccount] = Field(default_factory=list)


class IntentTransaction(_Wire):
    to: IntentSide | None = None
    total_amount: Decimal | int | None = None


class TransactionIntent(_Wire):
    """A pay-out. The response shape is UNCONFIRMED in MP's public material; PixWave and its
    simulator assume ``{"id", "external_reference", "status", "status_detail", "end_to_end_id",
    "transaction"}`` with status ``pending`` | ``approved`` | ``rejected``."""

    id: int | str
    external_reference: str | None = None
    status: str
    status_detail: str | None = None
    end_to_end_id: str | None = None
    transaction: IntentTransaction | None = None


class Paging(_Wire):
    total: int | None = None
    limit: int | None = None
    offset: int | None = None


class TransactionIntentSearch(_Wire):
    """``GET /v1/transaction-intents/search?external_reference=…``."""

    paging: Paging | None = None
    results: list[TransactionIntent] = Field(default_factory=list)


class ErrorCause(_Wire):
    code: int | str | None = None
    description: str | None = None
    data: str | None = None


class ErrorBody(_Wire):
    """``{"message", "error", "status", "cause": [{"code", "description", "data"}]}``."""

    message: str | None = None
    error: str | None = None
    status: int | str | None = None
    status_detail: str | None = None  # present when a rejected resource is returned as error
    cause: list[ErrorCause] = Field(default_factory=list)


class WebhookData(_Wire):
    id: int | str


class WebhookNotification(_Wire):
    """``{"id", "live_mode", "type", "date_created", "user_id", "api_version", "action",
    "data": {"id"}}``; it names a resource and carries no status."""

    id: int | str
    type: str
    action: str | None = None
    data: WebhookData
