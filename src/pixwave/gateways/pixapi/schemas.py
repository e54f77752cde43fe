"""The Central Bank's API Pix wire shapes (v2.9.0), keeping the standard's field names.

Only what the connectors read or write is declared; every model ignores extra fields, so a PSP
adding its own (Efí's ``gnExtras``, a bank's ``loc.location``) never breaks us. Amounts stay the
standard's decimal strings here (``valor  # amount``) and become int centavos in the connector.
Response bodies are decoded with ``json.loads(..., parse_float=Decimal)`` before validation, so
a PSP sending a JSON number where the standard says string still never passes through
``float``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _amount_text(value: Any) -> Any:
    """Accept a JSON number decoded as Decimal or int as its decimal text; leave the rest."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    return value


#: A Pix amount as the standard writes it: ``"123.45"`` (regex ``\d{1,10}\.\d{2}``).
AmountText = Annotated[str, BeforeValidator(_amount_text)]


class Wire(BaseModel):
    """Base of every wire shape: immutable, tolerant of fields we do not read."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- OAuth2 ------------------------------------------------------------------------------------


class Token(Wire):
    """The token endpoint's 200 (RFC 6749 §5.1)."""

    access_token: str
    token_type: str | None = None  # "Bearer"
    expires_in: int = 3600  # seconds
    scope: str | None = None


# --- Immediate charge (cob) --------------------------------------------------------------------


class Calendario(Wire):
    criacao: datetime | None = None  # set by the PSP on creation
    expiracao: int = 86400  # seconds from criacao; BCB default one day


class CalendarioCreate(Wire):
    expiracao: int  # seconds


class CobValor(Wire):
    original: AmountText  # amount


class Devedor(Wire):
    """The payer; BCB allows it only with both a document and a name."""

    cpf: str | None = None
    cnpj: str | None = None
    nome: str | None = None


class Loc(Wire):
    id: int
    location: str | None = None
    tipoCob: str | None = None


class DevolucaoHorario(Wire):
    solicitacao: datetime | None = None
    liquidacao: datetime | None = None  # present once DEVOLVIDO


class Devolucao(Wire):
    """A refund (devolução) of a received Pix."""

    id: str  # chosen by us, [a-zA-Z0-9]{1,35}
    rtrId: str | None = None  # the SPI return id, "D…"
    valor: AmountText  # amount
    natureza: str | None = None
    descricao: str | None = None
    horario: DevolucaoHorario | None = None
    status: str  # EM_PROCESSAMENTO | DEVOLVIDO | NAO_REALIZADO
    motivo: str | None = None  # why NAO_REALIZADO


class Pix(Wire):
    """A received Pix as embedded in a cob (``pix[]``) or returned by ``GET /pix/{e2eid}``."""

    endToEndId: str
    txid: str | None = None
    valor: AmountText  # amount
    chave: str | None = None
    horario: datetime | None = None
    infoPagador: str | None = None
    devolucoes: list[Devolucao] = Field(default_factory=list)


class PixConsultados(Wire):
    """``GET /pix?inicio=&fim=&txid=`` → 200 (pagination is not read: one txid, one Pix)."""

    pix: list[Pix] = Field(default_factory=list)


class Cob(Wire):
    """``PUT|GET|PATCH /cob/{txid}`` response (CobGerada / CobCompleta)."""

    calendario: Calendario
    txid: str
    revisao: int = 0
    loc: Loc | None = None
    location: str | None = None
    status: str  # ATIVA | CONCLUIDA | REMOVIDA_PELO_USUARIO_RECEBEDOR | REMOVIDA_PELO_PSP
    devedor: Devedor | None = None
    valor: CobValor
    chave: str | None = None
    solicitacaoPagador: str | None = None
    pixCopiaECola: str | None = None
    pix: list[Pix] = Field(default_factory=list)


class CobCreate(Wire):
    """``PUT /cob/{txid}`` request (CobSolicitada)."""

    calendario: CalendarioCreate
    devedor: Devedor | None = None
    valor: CobValor
    chave: str  # our receiving Pix key
    solicitacaoPagador: str | None = None  # ≤ 140 characters, shown to the payer


class CobCancel(Wire):
    """``PATCH /cob/{txid}`` request that removes the charge."""

    status: str = "REMOVIDA_PELO_USUARIO_RECEBEDOR"


# --- Refund (devolução) ------------------------------------------------------------------------


class DevolucaoCreate(Wire):
    """``PUT /pix/{e2eid}/devolucao/{id}`` request (DevolucaoSolicitada)."""

    valor: AmountText  # amount


# --- Webhooks ----------------------------------------------------------------------------------


class WebhookConfig(Wire):
    """``GET /webhook/{chave}`` → 200 (WebhookCompleto)."""

    webhookUrl: str
    chave: str | None = None
    criacao: datetime | None = None


class WebhookCreate(Wire):
    """``PUT /webhook/{chave}`` request (WebhookSolicitado)."""

    webhookUrl: str


# --- Errors (RFC 7807) -------------------------------------------------------------------------


class Violacao(Wire):
    razao: str | None = None
    propriedade: str | None = None
    valor: Any = None  # the offending value, of any JSON type


class Problema(Wire):
    """The BCB's RFC 7807 body: ``{"type",".../error/<Name>","title","status","detail"…}``."""

    type: str
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    correlationId: str | None = None
    violacoes: list[Violacao] = Field(default_factory=list)
