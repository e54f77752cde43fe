"""Efí's statuses and error codes in PixWave's terms — tables of data, tested row by row.

The standard's tables (``gateways/pixapi/mapping.py``) hold for Efí; Efí adds its sends'
statuses and its own error codes.

Statuses: an unknown value maps to the *pending* state of its resource (ACTIVE, PROCESSING),
never to success or failure, so a new provider status can only delay a decision.

Errors: Efí answers in two shapes depending on the endpoint — its own ``{"nome","mensagem"}``
and the BCB's RFC 7807 ``{"type": ".../error/<Name>", "title", "status", "detail"}``. Both are
reduced to one provider code (``nome`` or the type's last segment) and looked up in
:data:`ERROR_RULES`; anything unknown or unreadable falls back to
:func:`~pixwave.gateways.errors.classify_status`.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from pixwave.gateways.base import SendStatus
from pixwave.gateways.efi.schemas import EfiError
from pixwave.gateways.errors import GatewayRejected
from pixwave.gateways.pixapi import mapping as standard
from pixwave.gateways.pixapi.mapping import (
    BY_STATUS,
    CHARGE_STATUS,
    INVALID_REQUEST,
    NOT_FOUND,
    REFUND_STATUS,
    ErrorRule,
    ProviderError,
    charge_status,
    details,
    read_problem,
    refund_status,
)

__all__ = [
    "CHARGE_STATUS",
    "ERROR_RULES",
    "GATEWAY",
    "REFUND_STATUS",
    "SEND_STATUS",
    "ErrorRule",
    "ProviderError",
    "charge_status",
    "map_error",
    "parse_error_body",
    "refund_status",
    "send_status",
]

GATEWAY: Final = "efi"

#: Sent Pix ``status`` (Efí extension).
SEND_STATUS: Final[dict[str, SendStatus]] = {
    "EM_PROCESSAMENTO": SendStatus.PROCESSING,
    "REALIZADO": SendStatus.SUCCEEDED,
    "NAO_REALIZADO": SendStatus.FAILED,
}


def send_status(provider_status: str) -> SendStatus:
    return SEND_STATUS.get(provider_status, SendStatus.PROCESSING)


_DUPLICATE: Final = ErrorRule(GatewayRejected, "duplicate_reference")

#: Provider code → rule: Efí's snake_case ``nome`` codes, then the standard's RFC 7807 names.
ERROR_RULES: Final[dict[str, ErrorRule]] = {
    "chave_invalida": ErrorRule(GatewayRejected, "invalid_pix_key"),
    "chave_nao_pertence_ao_documento": ErrorRule(GatewayRejected, "key_document_mismatch"),
    "documento_bloqueado": ErrorRule(GatewayRejected, "document_blocked"),
    "valor_invalido": ErrorRule(GatewayRejected, "invalid_amount"),
    "json_invalido": INVALID_REQUEST,
    "pagamento_negado": ErrorRule(GatewayRejected, "payment_denied"),
    "saldo_insuficiente": ErrorRule(GatewayRejected, "insufficient_balance"),
    "txid_duplicado": _DUPLICATE,
    "id_envio_duplicado": _DUPLICATE,
    "devolucao_id_duplicado": _DUPLICATE,
    "pix_nao_encontrado": NOT_FOUND,
    "location_nao_encontrada": NOT_FOUND,
    "cobranca_nao_encontrada": NOT_FOUND,
    "webhook_invalido": ErrorRule(GatewayRejected, "invalid_webhook"),
    "erro_aplicacao": BY_STATUS,
    **standard.ERROR_RULES,
}


def _read_efi(data: dict[str, Any]) -> ProviderError | None:
    """Efí's own ``{"nome","mensagem","erros"?}`` shape."""
    if not isinstance(data.get("nome"), str):
        return None
    try:
        efi = EfiError.model_validate(data)
    except ValidationError:
        return None
    message = (efi.mensagem or "") + details(
        [(e.caminho or e.chave, e.mensagem) for e in efi.erros]
    )
    return ProviderError(efi.nome, message or None)


def parse_error_body(content: bytes) -> ProviderError:
    """Read either error shape; an unreadable body gives ``ProviderError(None, None)``."""
    return standard.parse_error_body(content, (_read_efi, read_problem))


#: GatewayHTTP's mapper for Efí: one non-2xx response → the GatewayError to raise.
map_error: Final = standard.error_mapper(GATEWAY, ERROR_RULES, parse_error_body)
