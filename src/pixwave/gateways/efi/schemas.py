"""Efí's wire shapes: the Central Bank's API Pix (``gateways/pixapi/schemas.py``) plus Efí's
extensions (``/v2/loc/{id}/qrcode``, sends under ``/gn``, its ``{"nome","mensagem"}`` errors).

Only what the connector reads or writes is declared; every model ignores extra fields so a
provider adding one never breaks us. Amounts stay the provider's decimal strings here
(``valor  # amount``) and become int centavos in the connector.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from pixwave.gateways.pixapi.schemas import (
    AmountText,
    Calendario,
    CalendarioCreate,
    Cob,
    CobCancel,
    CobCreate,
    CobValor,
    Devedor,
    Devolucao,
    DevolucaoCreate,
    DevolucaoHorario,
    Loc,
    Pix,
    Problema,
    Token,
    Violacao,
    WebhookConfig,
    WebhookCreate,
    Wire,
)

__all__ = [
    "AmountText",
    "Calendario",
    "CalendarioCreate",
    "Cob",
    "CobCancel",
    "CobCreate",
    "CobValor",
    "Devedor",
    "Devolucao",
    "DevolucaoCreate",
    "DevolucaoHorario",
    "EfiError",
    "EnvioErro",
    "EnvioGnExtras",
    "EnvioHorario",
    "ErroItem",
    "Favorecido",
    "Loc",
    "LocQrCode",
    "Pagador",
    "Pix",
    "PixEnviado",
    "PixEnvioCreate",
    "PixEnvioCreated",
    "Problema",
    "Token",
    "Violacao",
    "WebhookConfig",
    "WebhookCreate",
    "Wire",
]


class LocQrCode(Wire):
    """``GET /v2/loc/{id}/qrcode`` (Efí extension)."""

    qrcode: str  # the BR Code, "Pix copia e cola"
    imagemQrcode: str | None = None  # "data:image/png;base64,…"
    linkVisualizacao: str | None = None


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
