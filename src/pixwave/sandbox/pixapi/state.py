"""What an API Pix simulator remembers, and how each record looks on the wire.

Amounts are int centavos inside; the standard's ``"123.45"`` strings exist only in the ``wire``
methods. Timestamps are UTC datetimes rendered as RFC 3339 with milliseconds and ``Z``, the form
the specification's examples use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pixwave.kit.money import to_decimal_string

CobStatus = Literal["ATIVA", "CONCLUIDA", "REMOVIDA_PELO_USUARIO_RECEBEDOR", "REMOVIDA_PELO_PSP"]
RefundStatus = Literal["EM_PROCESSAMENTO", "DEVOLVIDO", "NAO_REALIZADO"]


def rfc3339(moment: datetime) -> str:
    """``2020-09-09T20:15:00.358Z``: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Payer:
    """Who paid a received Pix (the standard does not show it; Efí's ``gnExtras.pagador`` does)."""

    name: str
    document_kind: Literal["cpf", "cnpj"] | None
    document: str | None
    ispb: str

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"nome": self.name}
        if self.document_kind is not None and self.document is not None:
            body[self.document_kind] = self.document
        body["codigoBanco"] = self.ispb
        return body


@dataclass(slots=True)
class Cob:
    """An immediate charge (``cob``) with its location."""

    txid: str
    created_at: datetime
    expires_in: int
    amount: int
    chave: str
    loc_id: int
    location: str
    loc_created_at: datetime
    pix_copia_e_cola: str
    devedor: dict[str, str] | None = None
    solicitacao_pagador: str | None = None
    info_adicionais: list[dict[str, str]] | None = None
    modalidade_alteracao: int | None = None
    revisao: int = 0
    status: CobStatus = "ATIVA"
    pix: list[str] = field(default_factory=list)
    """endToEndIds of the Pix that paid it (at most one: a cob takes one payment)."""

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=self.expires_in)

    def expired(self, now: datetime) -> bool:
        """Past ``criacao + expiracao``: the status stays ATIVA (BCB), it just can't be paid."""
        return now >= self.expires_at

    def loc_wire(self, *, with_txid: bool = True) -> dict[str, Any]:
        # The BCB schema (CobGerada.loc) requires txid inside loc; some PSPs' samples omit it,
        # and including it costs a client nothing.
        body: dict[str, Any] = {
            "id": self.loc_id,
            "location": self.location,
            "tipoCob": "cob",
            "criacao": rfc3339(self.loc_created_at),
        }
        if with_txid:
            body["txid"] = self.txid
        return body

    def wire(self, pix: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        valor: dict[str, Any] = {"original": to_decimal_string(self.amount)}
        if self.modalidade_alteracao is not None:
            valor["modalidadeAlteracao"] = self.modalidade_alteracao
        body: dict[str, Any] = {
            "calendario": {"criacao": rfc3339(self.created_at), "expiracao": self.expires_in},
            "txid": self.txid,
            "revisao": self.revisao,
            "loc": self.loc_wire(),
            "location": self.location,
            "status": self.status,
        }
        if self.devedor is not None:
            body["devedor"] = dict(self.devedor)
        body["valor"] = valor
        body["chave"] = self.chave
        if self.solicitacao_pagador is not None:
            body["solicitacaoPagador"] = self.solicitacao_pagador
        if self.info_adicionais is not None:
            body["infoAdicionais"] = [dict(i) for i in self.info_adicionais]
        body["pixCopiaECola"] = self.pix_copia_e_cola
        if pix:
            body["pix"] = pix
        return body


@dataclass(slots=True)
class Refund:
    """A devolução of (part of) a received Pix."""

    id: str
    rtr_id: str
    e2e_id: str
    amount: int
    natureza: str
    requested_at: datetime
    descricao: str | None = None
    status: RefundStatus = "EM_PROCESSAMENTO"
    settled_at: datetime | None = None
    motivo: str | None = None

    @property
    def final(self) -> bool:
        return self.status != "EM_PROCESSAMENTO"

    def wire(self) -> dict[str, Any]:
        horario: dict[str, Any] = {"solicitacao": rfc3339(self.requested_at)}
        if self.settled_at is not None:
            horario["liquidacao"] = rfc3339(self.settled_at)
        body: dict[str, Any] = {
            "id": self.id,
            "rtrId": self.rtr_id,
            "valor": to_decimal_string(self.amount),
            "natureza": self.natureza,
        }
        if self.descricao is not None:
            body["descricao"] = self.descricao
        body["horario"] = horario
        body["status"] = self.status
        if self.motivo is not None:
            body["motivo"] = self.motivo
        return body


@dataclass(slots=True)
class ReceivedPix:
    """A Pix that arrived at the account's key, paying a cob."""

    e2e_id: str
    txid: str | None
    amount: int
    chave: str
    paid_at: datetime
    payer: Payer
    info_pagador: str | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    def refunded_amount(self) -> int:
        """Refunds that did not fail count against the Pix value (BCB: sum ≤ original)."""
        return sum(r.amount for r in self.refunds.values() if r.status != "NAO_REALIZADO")

    def wire(self, refunds: list[Refund] | None = None) -> dict[str, Any]:
        """The BCB ``Pix`` object; ``refunds`` narrows ``devolucoes`` (webhooks send one)."""
        chosen = list(self.refunds.values()) if refunds is None else refunds
        body: dict[str, Any] = {"endToEndId": self.e2e_id}
        if self.txid is not None:
            body["txid"] = self.txid
        body["valor"] = to_decimal_string(self.amount)
        body["componentesValor"] = {"original": {"valor": to_decimal_string(self.amount)}}
        body["chave"] = self.chave
        body["horario"] = rfc3339(self.paid_at)
        if self.info_pagador is not None:
            body["infoPagador"] = self.info_pagador
        body["devolucoes"] = [r.wire() for r in chosen]
        return body


@dataclass(slots=True)
class Webhook:
    """A webhook URL registered for one of the account's keys."""

    chave: str
    url: str
    created_at: datetime
    skip_mtls: bool = False

    def wire(self, cnpj: str | None = None) -> dict[str, Any]:
        """``WebhookCompleto``: the standard requires the receiver's ``cnpj``; Efí shows the key."""
        body: dict[str, Any] = {"webhookUrl": self.url, "chave": self.chave}
        if cnpj is not None:
            body["cnpj"] = cnpj
        body["criacao"] = rfc3339(self.created_at)
        return body


@dataclass(slots=True)
class PixState:
    """Every record, indexed the ways the API looks them up."""

    cobs: dict[str, Cob] = field(default_factory=dict)
    locs: dict[int, str] = field(default_factory=dict)  # loc id → txid
    locations: dict[str, str] = field(default_factory=dict)  # location URL → txid
    pix: dict[str, ReceivedPix] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)  # chave → webhook
    next_loc_id: int = 1

    def allocate_loc_id(self) -> int:
        loc_id = self.next_loc_id
        self.next_loc_id += 1
        return loc_id

    def counts(self) -> dict[str, int]:
        return {
            "cobs": len(self.cobs),
            "pix": len(self.pix),
            "devolucoes": sum(len(p.refunds) for p in self.pix.values()),
            "webhooks": len(self.webhooks),
        }
