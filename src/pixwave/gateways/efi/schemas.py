"""Efí's wire shapes, keeping Efí's (and the BCB API Pix's) field names.

Only what the connector reads or writes is declared; every model ignores extra fields so a
provider adding one never breaks us. Amounts stay the provider's decimal strings here
(``valor  # amount``) and become int centavos in the connector. Response bodies are decoded
with ``json.loads(..., parse_float=Decimal)`` before validation, so a provider sending a JSON
number where the spec says string still never passes through ``float``.
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


#: A Pix amount as Efí writes it: ``"123.45"`` (regex ``\d{1,10}\.\d{2}``).
AmountText = Annotated[str, BeforeValidator(_amount_text)]


class Wire(BaseModel):
    """Base of every Efí shape: immutable, tolerant of fields we do not read."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# --- OAuth2 ------------------------------------------------------------------------------------


class Token(Wire):
    """``POST /oauth/token`` → 200."""

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
    """A received Pix as embedded in a cob (``pix[]``) or returned by ``GET /v2/pix/{e2eId}``."""

    endToEndId: str
    txid: str | None = None
    valor: AmountText  # amount
    chave: str | None = None
    horario: datetime | None = None
    infoPagador: str | None = None
    devolucoes: list[Devolucao] = Field(default_factory=list)


class Cob(Wire):
    """``PUT|GET|PATCH /v2/cob/{txid}`` response."""

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
    """``PUT /v2/cob/{txid}`` request."""

    calendario: CalendarioCreate
    devedor: Devedor | None = None
    valor: CobValor
    chave: str  # our receiving Pix key
    solicitacaoPagador: str | None = None  # ≤ 140 characters, shown to the payer


class CobCancel(Wire):
    """``PATCH /v2/cob/{txid}`` request that removes the charge."""

    status: str = "REMOVIDA_PELO_USUARIO_RECEBEDOR"


class LocQrCode(Wire):
    """``GET /v2/loc/{id}/qrcode`` (Efí extension)."""

    qrcode: str  # the BR Code, "Pix copia e cola"
    imagemQrcode: str | None = None  # "data:image/png;base64,…"
    linkVisualizacao: str | None = None


# --- Refund (devolução) ------------------------------------------------------------------------


class DevolucaoCreate(Wire):
    """``PUT /v2/pix/{e2eId}/devolucao/{id}`` request."""

    valor: AmountText  # amount


# --- Send Pix (Efí extension) ------------------------------------------------------------------


class Pagador(Wire):
    chave: str  # a key of our Efí account, with a webhook registered
    infoPagador: str | None = None  # ≤ 140 characters


class Favorecido(Wire):
    """Pay-out recipient by key; a cpf/cnpj makes Efí check the key belongs to that document."""

    chave: str
    cpf: str | None = None
    cnpj: str | None = None


class PixEnvioCreate(Wire):
    """``PUT /v3/gn/pix/{idEnvio}`` request."""

    valor: AmountText  # amount
    pagador: Pagador
    favorecido: Favorecido


class EnvioHorario(Wire):
    solicitacao: datetime | None = None
    liquidacao: datetime | None = None


class PixEnvioCreated(Wire):
    """``PUT /v3/gn/pix/{idEnvio}`` → 201."""

    idEnvio: str | None = None
    e2eId: str | None = None
    valor: AmountText | None = None  # amount
    horario: EnvioHorario | None = None
    status: str  # EM_PROCESSAMENTO (REALIZADO | NAO_REALIZADO later)


class EnvioErro(Wire):
    """Why a send was NAO_REALIZADO (webhook ``gnExtras.erro``)."""

    codigo: str | None = None  # ISO 20022 reason, e.g. AC03
    origem: str | None = None
    motivo: str | None = None


class EnvioGnExtras(Wire):
    idEnvio: str | None = None
    erro: EnvioErro | None = None


class PixEnviado(Wire):
    """``GET /v2/gn/pix/enviados/id-envio/{idEnvio}`` → 200."""

    endToEndId: str | None = None
    idEnvio: str | None = None
    valor: AmountText  # amount
    chave: str | None = None
    status: str
    infoPagador: str | None = None
    horario: EnvioHorario | None = None
    # The query's documented body has no failure reason; a ``gnExtras.erro`` like the
    # webhook's is read when present (UNCONFIRMED for this endpoint).
    gnExtras: EnvioGnExtras | None = None


# --- Webhooks ----------------------------------------------------------------------------------


class WebhookConfig(Wire):
    """``GET /v2/webhook/{chave}`` → 200."""

    webhookUrl: str
    chave: str | None = None
    criacao: datetime | None = None


class WebhookCreate(Wire):
    """``PUT /v2/webhook/{chave}`` request."""

    webhookUrl: str


# --- Errors ------------------------------------------------------------------------------------


class ErroItem(Wire):
    chave: str | None = None
    caminho: str | None = None
    mensagem: str | None = None


class EfiError(Wire):
    """Efí's own error body: ``{"nome","mensagem","erros"?}``."""

    nome: str
    mensagem: str | None = None
    erros: list[ErroItem] = Field(default_factory=list)


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
