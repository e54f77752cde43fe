"""Efí's statuses and error codes in PixWave's terms — tables of data, tested row by row.

Statuses: an unknown value maps to the *pending* state of its resource (ACTIVE, PROCESSING),
never to success or failure, so a new provider status can only delay a decision.

Errors: Efí answers in two shapes depending on the endpoint — its own ``{"nome","mensagem"}``
and the BCB's RFC 7807 ``{"type": ".../error/<Name>", "title", "status", "detail"}``. Both are
reduced to one provider code (``nome`` or the type's last segment) and looked up in
:data:`ERROR_RULES`; anything unknown or unreadable falls back to
:func:`~pixwave.gateways.errors.classify_status`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import httpx
from pydantic import ValidationError

from pixwave.gateways.base import ChargeStatus, RefundStatus, SendStatus
from pixwave.gateways.efi.schemas import EfiError, Problema
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    classify_status,
)
from pixwave.gateways.http import retry_after_seconds

GATEWAY: Final = "efi"

# --- Statuses ----------------------------------------------------------------------------------

#: Cob ``status``. The BCB status is the *record's* status and never says "expired": an ATIVA
#: cob past ``criacao + expiracao`` is turned into EXPIRED by the connector, using its clock.
CHARGE_STATUS: Final[dict[str, ChargeStatus]] = {
    "ATIVA": ChargeStatus.ACTIVE,
    "CONCLUIDA": ChargeStatus.PAID,
    "REMOVIDA_PELO_USUARIO_RECEBEDOR": ChargeStatus.CANCELLED,
    "REMOVIDA_PELO_PSP": ChargeStatus.CANCELLED,
}

#: Sent Pix ``status`` (Efí extension).
SEND_STATUS: Final[dict[str, SendStatus]] = {
    "EM_PROCESSAMENTO": SendStatus.PROCESSING,
    "REALIZADO": SendStatus.SUCCEEDED,
    "NAO_REALIZADO": SendStatus.FAILED,
}

#: Devolução ``status``.
REFUND_STATUS: Final[dict[str, RefundStatus]] = {
    "EM_PROCESSAMENTO": RefundStatus.PROCESSING,
    "DEVOLVIDO": RefundStatus.SUCCEEDED,
    "NAO_REALIZADO": RefundStatus.FAILED,
}


def charge_status(provider_status: str) -> ChargeStatus:
    return CHARGE_STATUS.get(provider_status, ChargeStatus.ACTIVE)


def send_status(provider_status: str) -> SendStatus:
    return SEND_STATUS.get(provider_status, SendStatus.PROCESSING)


def refund_status(provider_status: str) -> RefundStatus:
    return REFUND_STATUS.get(provider_status, RefundStatus.PROCESSING)


# --- Errors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """What one provider error code means for us.

    ``error`` None means "classify by HTTP status" — the response's own, or ``as_status`` when
    the code names a status more precisely than the response does.
    """

    error: type[GatewayError] | None
    code: str | None = None
    as_status: int | None = None


_BY_STATUS: Final = ErrorRule(None)
_NOT_FOUND: Final = ErrorRule(GatewayNotFound, "not_found")
_INVALID_REQUEST: Final = ErrorRule(GatewayRejected, "invalid_request")
_DUPLICATE: Final = ErrorRule(GatewayRejected, "duplicate_reference")

#: Provider code → rule. Efí codes are snake_case ``nome``; BCB ones are the RFC 7807 type names.
ERROR_RULES: Final[dict[str, ErrorRule]] = {
    # Efí {"nome","mensagem"}
    "chave_invalida": ErrorRule(GatewayRejected, "invalid_pix_key"),
    "chave_nao_pertence_ao_documento": ErrorRule(GatewayRejected, "key_document_mismatch"),
    "documento_bloqueado": ErrorRule(GatewayRejected, "document_blocked"),
    "valor_invalido": ErrorRule(GatewayRejected, "invalid_amount"),
    "json_invalido": _INVALID_REQUEST,
    "pagamento_negado": ErrorRule(GatewayRejected, "payment_denied"),
    "saldo_insuficiente": ErrorRule(GatewayRejected, "insufficient_balance"),
    "txid_duplicado": _DUPLICATE,
    "id_envio_duplicado": _DUPLICATE,
    "devolucao_id_duplicado": _DUPLICATE,
    "pix_nao_encontrado": _NOT_FOUND,
    "location_nao_encontrada": _NOT_FOUND,
    "cobranca_nao_encontrada": _NOT_FOUND,
    "webhook_invalido": ErrorRule(GatewayRejected, "invalid_webhook"),
    "erro_aplicacao": _BY_STATUS,
    # BCB RFC 7807 type names
    "NaoEncontrado": _NOT_FOUND,
    "CobNaoEncontrado": _NOT_FOUND,
    "CobVNaoEncontrada": _NOT_FOUND,
    "PixNaoEncontrado": _NOT_FOUND,
    "PixDevolucaoNaoEncontrada": _NOT_FOUND,
    "PixEnviadoNaoEncontrado": _NOT_FOUND,
    "WebhookNaoEncontrado": _NOT_FOUND,
    # A missing scope is our configuration's fault; another gateway may still work.
    "AcessoNegado": ErrorRule(GatewayUnavailable, "access_denied"),
    "RequisicaoInvalida": _INVALID_REQUEST,
    "CobOperacaoInvalida": _INVALID_REQUEST,
    "PixDevolucaoInvalida": _INVALID_REQUEST,
    "ServicoIndisponivel": ErrorRule(GatewayUnavailable, "provider_unavailable"),
    "IndisponibilidadePorTempoEsgotado": ErrorRule(None, as_status=504),
    "ErroInternoDoServidor": _BY_STATUS,
}


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An error body reduced to what we keep: Efí's code and its human message."""

    code: str | None
    message: str | None


def _details(items: list[tuple[str | None, str | None]]) -> str:
    parts = [f"{where}: {what}" if where else what for where, what in items if what]
    return f" ({'; '.join(parts)})" if parts else ""


def parse_error_body(content: bytes) -> ProviderError:
    """Read either error shape; an unreadable body gives ``ProviderError(None, None)``."""
    try:
        data: Any = json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return ProviderError(None, None)
    if not isinstance(data, dict):
        return ProviderError(None, None)
    try:
        if isinstance(data.get("nome"), str):
            efi = EfiError.model_validate(data)
            details = _details([(e.caminho or e.chave, e.mensagem) for e in efi.erros])
            message = (efi.mensagem or "") + details
            return ProviderError(efi.nome, message or None)
        if isinstance(data.get("type"), str):
            problem = Problema.model_validate(data)
            name = problem.type.rstrip("/").rsplit("/", 1)[-1] or None
            details = _details([(v.propriedade, v.razao) for v in problem.violacoes])
            message = (problem.detail or problem.title or "") + details
            return ProviderError(name, message or None)
    except ValidationError:
        pass
    return ProviderError(None, None)


def _classify(status: int, *, moves_money: bool) -> tuple[type[GatewayError], str]:
    if status < 400:
        # A redirect or another non-2xx that is not an error status: nothing we can read,
        # and on a money call nothing proves the provider did not act.
        return (GatewayAmbiguous if moves_money else GatewayUnavailable), "unexpected_status"
    return classify_status(status, moves_money=moves_money)


def map_error(
    operation: str, response: httpx.Response, moves_money: bool, latency_ms: int
) -> GatewayError:
    """Turn one non-2xx Efí response into the GatewayError to raise (GatewayHTTP's mapper)."""
    status = response.status_code
    provider = parse_error_body(response.content)
    rule = ERROR_RULES.get(provider.code or "", _BY_STATUS)
    error_class: type[GatewayError]
    if status == 429:
        error_class, code = GatewayUnavailable, "rate_limited"
    elif rule.error is not None and rule.code is not None:
        error_class, code = rule.error, rule.code
    else:
        error_class, code = _classify(rule.as_status or status, moves_money=moves_money)
    return error_class(
        provider.message or f"HTTP {status} from {GATEWAY} on {operation}",
        gateway=GATEWAY,
        operation=operation,
        code=code,
        http_status=status,
        provider_code=provider.code,
        retry_after=retry_after_seconds(response),
        latency_ms=latency_ms,
    )
