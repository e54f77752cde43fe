"""Request bodies the Efí simulator accepts: the standard's (``sandbox/pixapi/schemas.py``) and
those of Efí's send extension, with Efí's field names and limits.

Models are strict and forbid unknown fields, like the standard's.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from pixwave.sandbox.pixapi.schemas import (
    AMOUNT_PATTERN,
    ID_PATTERN,
    TXID_PATTERN,
    Amount,
    Body,
    Calendario,
    CobCreate,
    CobRevision,
    CobValor,
    Devedor,
    InfoAdicional,
    LocRef,
    RefundCreate,
    WebhookConfig,
    check_path,
    load_json,
    parse_body,
)

__all__ = [
    "AMOUNT_PATTERN",
    "ID_PATTERN",
    "TXID_PATTERN",
    "Amount",
    "Calendario",
    "CobCreate",
    "CobRevision",
    "CobValor",
    "Devedor",
    "InfoAdicional",
    "LocRef",
    "RefundCreate",
    "SendCreate",
    "SendFavorecido",
    "SendPagador",
    "WebhookConfig",
    "check_path",
    "load_json",
    "parse_body",
]


class SendPagador(Body):
    chave: str = Field(max_length=77)
    infoPagador: str | None = Field(default=None, max_length=140)


class SendFavorecido(Body):
    """A key, optionally with the CPF or CNPJ its owner must have (Efí checks the match)."""

    chave: str = Field(max_length=77)
    cpf: str | None = Field(default=None, pattern=r"^[0-9]{11}$")
    cnpj: str | None = Field(default=None, pattern=r"^[0-9A-Z]{14}$")

    @model_validator(mode="after")
    def _at_most_one_document(self) -> SendFavorecido:
        if self.cpf is not None and self.cnpj is not None:
            raise PydanticCustomError("one_of", "informe favorecido.cpf ou favorecido.cnpj")
        return self


class SendCreate(Body):
    """Body of ``PUT /v3/gn/pix/{idEnvio}`` (bank-account receivers are not simulated)."""

    valor: Amount
    pagador: SendPagador
    favorecido: SendFavorecido
