"""What the Efí simulator remembers beyond the standard's records (``sandbox/pixapi/state.py``):
the Pix it sends (Efí's ``/gn`` extension).

Amounts are int centavos inside; the ``"123.45"`` strings Efí uses exist only in the ``wire``
methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pixwave.kit.money import to_decimal_string
from pixwave.sandbox.pixapi.state import (
    Cob,
    CobStatus,
    Payer,
    PixState,
    ReceivedPix,
    Refund,
    RefundStatus,
    Webhook,
    rfc3339,
)

__all__ = [
    "Cob",
    "CobStatus",
    "EfiState",
    "Payer",
    "ReceivedPix",
    "Refund",
    "RefundStatus",
    "Send",
    "SendError",
    "SendStatus",
    "Webhook",
    "mask_document",
    "rfc3339",
]

SendStatus = Literal["EM_PROCESSAMENTO", "REALIZADO", "NAO_REALIZADO"]


@dataclass(slots=True)
class SendError:
    """Why a send ended NAO_REALIZADO (``gnExtras.erro``)."""

    codigo: str
    origem: str
    motivo: str

    def wire(self) -> dict[str, str]:
        return {"codigo": self.codigo, "origem": self.origem, "motivo": self.motivo}


@dataclass(slots=True)
class Send:
    """A Pix sent from the account (Efí's ``/gn/pix`` extension)."""

    id_envio: str
    e2e_id: str
    amount: int
    pagador_chave: str
    favorecido_chave: str
    favorecido_document_kind: Literal["cpf", "cnpj"]
    favorecido_document: str
    favorecido_name: str
    requested_at: datetime
    info_pagador: str | None = None
    status: SendStatus = "EM_PROCESSAMENTO"
    settled_at: datetime | None = None
    error: SendError | None = None

    @property
    def final(self) -> bool:
        return self.status != "EM_PROCESSAMENTO"

    def created_wire(self) -> dict[str, Any]:
        """The 201 answer to ``PUT /v3/gn/pix/{idEnvio}``."""
        return {
            "idEnvio": self.id_envio,
            "e2eId": self.e2e_id,
            "valor": to_decimal_string(self.amount),
            "horario": {"solicitacao": rfc3339(self.requested_at)},
            "status": self.status,
        }

    def wire(self) -> dict[str, Any]:
        """``GET /v2/gn/pix/enviados/...``: the document of the receiver is masked."""
        horario: dict[str, Any] = {"solicitacao": rfc3339(self.requested_at)}
        if self.settled_at is not None:
            horario["liquidacao"] = rfc3339(self.settled_at)
        body: dict[str, Any] = {
            "endToEndId": self.e2e_id,
            "idEnvio": self.id_envio,
            "valor": to_decimal_string(self.amount),
            "chave": self.pagador_chave,
            "status": self.status,
        }
        if self.info_pagador is not None:
            body["infoPagador"] = self.info_pagador
        body["horario"] = horario
        body["favorecido"] = {
            "chave": self.favorecido_chave,
            "identificacao": {
                "nome": self.favorecido_name,
                self.favorecido_document_kind: mask_document(
                    self.favorecido_document_kind, self.favorecido_document
                ),
            },
        }
        if self.error is not None:
            # Where the GET shows the failure is not documented; Efí's webhook uses
            # gnExtras.erro, so the query mirrors it.
            body["gnExtras"] = {"erro": self.error.wire()}
        return body


def mask_document(kind: Literal["cpf", "cnpj"], document: str) -> str:
    """``***.456.789-**`` as Efí shows a receiver's CPF; CNPJs are masked the same way."""
    if kind == "cpf":
        return f"***.{document[3:6]}.{document[6:9]}-**"
    return f"**.{document[2:5]}.{document[5:8]}/{document[8:12]}-**"


@dataclass(slots=True)
class EfiState(PixState):
    """The standard's records plus sent Pix."""

    sends: dict[str, Send] = field(default_factory=dict)  # idEnvio → send
    sends_by_e2e: dict[str, str] = field(default_factory=dict)  # endToEndId → idEnvio

    def counts(self) -> dict[str, int]:
        # PixState.counts by name: slots dataclasses break the zero-argument super().
        return {**PixState.counts(self), "sends": len(self.sends)}
