"""Request bodies an API Pix simulator accepts, with the standard's field names and limits.

Models are strict (no ``"3600"`` for an int, no ``12.5`` for a money string) and forbid unknown
fields: a typo such as ``valor.orignal`` comes back naming the path, the way a strict schema
validator answers. Money patterns are anchored, unlike the BCB's (JSON-schema ``pattern``
searches), because ``"x1.00y"`` is no amount.

Body parsing goes through ``json.loads(..., parse_float=Decimal)``: a JSON number never becomes a
float, and since every amount is a string, a number where one is expected is a type error.
Problems are raised as :class:`~pixwave.sandbox.pixapi.errors.InvalidInput`, which the routes
turn into the provider's answer.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pixwave.sandbox.pixapi.errors import InvalidInput, Violation, violations_of

#: ``\d{1,10}\.\d{2}`` of the BCB spec, anchored and ASCII-only.
AMOUNT_PATTERN = r"^[0-9]{1,10}\.[0-9]{2}$"
Amount = Annotated[str, StringConstraints(pattern=AMOUNT_PATTERN)]
TXID_PATTERN = r"[a-zA-Z0-9]{26,35}"
ID_PATTERN = r"[a-zA-Z0-9]{1,35}"


class Body(BaseModel):
    """Field names are the wire's camelCase (``solicitacaoPagador``), on purpose."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Calendario(Body):
    expiracao: int = Field(default=86400, gt=0, le=2_147_483_647)


class Devedor(Body):
    """``PessoaFisica`` or ``PessoaJuridica``: a name and exactly one of CPF and CNPJ."""

    cpf: str | None = Field(default=None, pattern=r"^[0-9]{11}$")
    cnpj: str | None = Field(default=None, pattern=r"^[0-9A-Z]{14}$")
    nome: str = Field(max_length=200)

    @model_validator(mode="after")
    def _one_document(self) -> Devedor:
        if (self.cpf is None) == (self.cnpj is None):
            raise PydanticCustomError("one_of", "informe devedor.cpf ou devedor.cnpj")
        return self


class CobValor(Body):
    original: Amount
    modalidadeAlteracao: int | None = Field(default=None, ge=0, le=1)


class InfoAdicional(Body):
    nome: str = Field(max_length=50)
    valor: str = Field(max_length=200)


class CobCreate(Body):
    """``CobSolicitada``: body of ``PUT /cob/{txid}`` and ``POST /cob``."""

    calendario: Calendario = Field(default_factory=Calendario)
    devedor: Devedor | None = None
    valor: CobValor
    chave: str = Field(max_length=77)
    solicitacaoPagador: str | None = Field(default=None, max_length=140)
    infoAdicionais: list[InfoAdicional] | None = Field(default=None, max_length=50)


class LocRef(Body):
    id: int


class CobRevision(Body):
    """``CobRevisada``: every field optional; ``status`` may only remove the charge."""

    calendario: Calendario | None = None
    devedor: Devedor | None = None
    valor: CobValor | None = None
    chave: str | None = Field(default=None, max_length=77)
    solicitacaoPagador: str | None = Field(default=None, max_length=140)
    infoAdicionais: list[InfoAdicional] | None = Field(default=None, max_length=50)
    loc: LocRef | None = None
    status: Literal["REMOVIDA_PELO_USUARIO_RECEBEDOR"] | None = None


class RefundCreate(Body):
    """``DevolucaoSolicitada``."""

    valor: Amount
    natureza: Literal["ORIGINAL", "RETIRADA"] = "ORIGINAL"
    descricao: str | None = Field(default=None, max_length=140)


class WebhookConfig(Body):
    """``WebhookSolicitado``."""

    webhookUrl: str = Field(max_length=2048)


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_json(raw: bytes) -> Any:
    """Parse a body without floats; malformed JSON is an input violation, never a 500."""
    if not raw.strip():
        raise InvalidInput([Violation("type", ".body", "Corpo da requisição ausente")])
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InvalidInput(
            [Violation("type", ".body", "O corpo da requisição não é um JSON válido")]
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(model: type[ModelT], raw: bytes) -> ModelT:
    """Load and validate a JSON object body, raising InvalidInput on any problem."""
    data = load_json(raw)
    if not isinstance(data, dict):
        raise InvalidInput([Violation("type", ".body", "O corpo deve ser um objeto JSON")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(violations_of(exc)) from None


def check_path(value: str, pattern: str, name: str) -> None:
    """Validate a path parameter (txid, devolução id) the way the body is validated."""
    if re.fullmatch(pattern, value) is None:
        raise InvalidInput(
            [Violation("pattern", f".params.{name}", f"{name} deve respeitar {pattern}")]
        )
