"""API shapes of the payment transaction record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from pixwave.kit.money import PositiveCentavos
from pixwave.kit.text import PlainText
from pixwave.payments.status import TransactionStatus, TransactionType
from pixwave.pix import PixFormatError, parse_pix_key


def _pix_key(value: str) -> str:
    """Any Pix key (CPF, CNPJ, e-mail, phone, EVP), normalised; a clear code when it is not."""
    try:
        return parse_pix_key(value).value
    except PixFormatError as exc:
        raise PydanticCustomError("invalid_pix_key", str(exc)) from None


PixKeyText = Annotated[str, Field(min_length=1, max_length=77), AfterValidator(_pix_key)]


class AttemptRead(BaseModel):
    """One call to a gateway made for this transaction."""

    gateway: str
    operation: str
    try_number: int
    outcome: str
    latency_ms: int
    error_code: str | None = None
    error_message: str | None = None
    expected_fee: int | None = Field(
        default=None,
        description="Centavos this gateway was expected to charge for the call (its configured "
        "fees); null for reads and where no fee is configured.",
    )
    created_at: datetime


class TransactionRead(BaseModel):
    id: str
    object: str = "transaction"
    type: TransactionType
    status: TransactionStatus
    amount: int = Field(description="Centavos.")
    currency: str
    wallet_id: str
    counterparty_wallet_id: str | None = None
    parent_id: str | None = None
    gateway: str | None = None
    txid: str | None = None
    end_to_end_id: str | None = None
    gateway_payment_id: str | None = None
    pix_key: str | None = None
    description: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    refunded_amount: int = 0
    ledger_transaction_id: str | None = None
    brcode: str | None = Field(default=None, description="Pix copia e cola, for a deposit.")
    qr_png_base64: str | None = Field(default=None, description="The QR code as a PNG.")
    expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptRead] | None = Field(
        default=None, description="Every gateway call (on single-transaction reads)."
    )


class DepositCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveCentavos
    description: PlainText | None = Field(default=None, max_length=140)
    expires_in: int | None = Field(
        default=None, ge=60, le=30 * 86400, description="Seconds the charge stays payable."
    )


class WithdrawalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveCentavos
    pix_key: PixKeyText
    description: PlainText | None = Field(default=None, max_length=140)


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveCentavos | None = Field(
        default=None, description="Centavos; omit to refund everything not yet refunded."
    )
    description: PlainText | None = Field(default=None, max_length=140)
