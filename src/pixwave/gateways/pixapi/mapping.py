"""The API Pix's statuses and RFC 7807 error types in PixWave's terms — tables of data.

Statuses: an unknown value maps to the *pending* state of its resource (ACTIVE, PROCESSING),
never to success or failure, so a new status can only delay a decision.

Errors: the standard answers RFC 7807 bodies ``{"type": ".../error/<Name>", "title", "status",
"detail", "violacoes"?}``. The type's last segment is the provider code, looked up in
:data:`ERROR_RULES`; anything unknown or unreadable falls back to
:func:`~pixwave.gateways.errors.classify_status`. A PSP that extends the standard (Efí) adds
its own codes and body shape through :func:`error_mapper`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import httpx
from pydantic import ValidationError

from pixwave.gateways.base import ChargeStatus, RefundStatus
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    classify_status,
)
from pixwave.gateways.http import ErrorMapper, retry_after_seconds
from pixwave.gateways.pixapi.schemas import Problema

# --- Statuses ----------------------------------------------------------------------------------

#: Cob ``status`` (CobrancaStatus). The standard's status is the *record's* status and never
#: says "expired": an ATIVA cob past ``criacao + expiracao`` is turned into EXPIRED by the
#: connector, using its clock.
CHARGE_STATUS: Final[dict[str, ChargeStatus]] = {
    "ATIVA": ChargeStatus.ACTIVE,
    "CONCLUIDA": ChargeStatus.PAID,
    "REMOVIDA_PELO_USUARIO_RECEBEDOR": ChargeStatus.CANCELLED,
    "REMOVIDA_PELO_PSP": ChargeStatus.CANCELLED,
}

#: Devolução ``status``.
REFUND_STATUS: Final[dict[str, RefundStatus]] = {
    "EM_PROCESSAMENTO": RefundStatus.PROCESSING,
    "DEVOLVIDO": RefundStatus.SUCCEEDED,
    "NAO_REALIZADO": RefundStatus.FAILED,
}


def charge_status(provider_status: str) -> ChargeStatus:
    return CHARGE_STATUS.get(provider_status, ChargeStatus.ACTIVE)


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


BY_STATUS: Final = ErrorRule(None)
NOT_FOUND: Final = ErrorRule(GatewayNotFound, "not_found")
INVALID_REQUEST: Final = ErrorRule(GatewayRejected, "invalid_request")

#: The standard's RFC 7807 type names (the ``type`` URI's last segment) → rule.
ERROR_RULES: Final[dict[str, ErrorRule]] = {
    "NaoEncontrado": NOT_FOUND,
    "CobNaoEncontrado": NOT_FOUND,
    "CobVNaoEncontrada": NOT_FOUND,
    "PixNaoEncontrado": NOT_FOUND,
    "PixDevolucaoNaoEncontrada": NOT_FOUND,
    "PixEnviadoNaoEncontrado": NOT_FOUND,
    "PayloadLocationNaoEncontrado": NOT_FOUND,
    "WebhookNaoEncontrado": NOT_FOUND,
    # A missing scope is our configuration's fault; another gateway may still work.
    "AcessoNegado": ErrorRule(GatewayUnavailable, "access_denied"),
    "RequisicaoInvalida": INVALID_REQUEST,
    "CobOperacaoInvalida": INVALID_REQUEST,
    "CobConsultaInvalida": INVALID_REQUEST,
    "PixDevolucaoInvalida": INVALID_REQUEST,
    "PixConsultaInvalida": INVALID_REQUEST,
    "WebhookOperacaoInvalida": ErrorRule(GatewayRejected, "invalid_webhook"),
    "PermanentementeRemovido": NOT_FOUND,
    "ServicoIndisponivel": ErrorRule(GatewayUnavailable, "provider_unavailable"),
    "IndisponibilidadePorTempoEsgotado": ErrorRule(None, as_status=504),
    "ErroInternoDoServidor": BY_STATUS,
}


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An error body reduced to what we keep: the provider's code and its human message."""

    code: str | None
    message: str | None


UNREADABLE: Final = ProviderError(None, None)

#: Reads one decoded error body; None when it is not in the shape the reader knows.
BodyReader = Callable[[dict[str, Any]], ProviderError | None]


def details(items: list[tuple[str | None, str | None]]) -> str:
    parts = [f"{where}: {what}" if where else what for where, what in items if what]
    return f" ({'; '.join(parts)})" if parts else ""


def read_problem(data: dict[str, Any]) -> ProviderError | None:
    """An RFC 7807 body: the code is the ``type`` URI's last segment."""
    if not isinstance(data.get("type"), str):
        return None
    try:
        problem = Problema.model_validate(data)
    except ValidationError:
        return None
    name = problem.type.rstrip("/").rsplit("/", 1)[-1] or None
    violations = details([(v.propriedade, v.razao) for v in problem.violacoes])
    message = (problem.detail or problem.title or "") + violations
    return ProviderError(name, message or None)


def parse_error_body(
    content: bytes, readers: tuple[BodyReader, ...] = (read_problem,)
) -> ProviderError:
    """Read an error body with the first reader that knows its shape; ``UNREADABLE`` else."""
    try:
        data: Any = json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return UNREADABLE
    if not isinstance(data, dict):
        return UNREADABLE
    for reader in readers:
        found = reader(data)
        if found is not None:
            return found
    return UNREADABLE


def _classify(status: int, *, moves_money: bool) -> tuple[type[GatewayError], str]:
    if status < 400:
        # A redirect or another non-2xx that is not an error status: nothing we can read,
        # and on a money call nothing proves the provider did not act.
        return (GatewayAmbiguous if moves_money else GatewayUnavailable), "unexpected_status"
    return classify_status(status, moves_money=moves_money)


def error_mapper(
    gateway: str,
    rules: Mapping[str, ErrorRule] = ERROR_RULES,
    parse: Callable[[bytes], ProviderError] = parse_error_body,
) -> ErrorMapper:
    """GatewayHTTP's mapper for one gateway: a non-2xx response → the GatewayError to raise."""

    def map_error(
        operation: str, response: httpx.Response, moves_money: bool, latency_ms: int
    ) -> GatewayError:
        status = response.status_code
        provider = parse(response.content)
        rule = rules.get(provider.code or "", BY_STATUS)
        error_class: type[GatewayError]
        if status == 429:
            error_class, code = GatewayUnavailable, "rate_limited"
        elif moves_money and status >= 500:
            # The status decides on a money-moving call: a body's code cannot prove the
            # provider did not act (a 500 saying "ServicoIndisponivel" stays ambiguous).
            error_class, code = _classify(status, moves_money=True)
        elif rule.error is not None and rule.code is not None:
            error_class, code = rule.error, rule.code
        else:
            error_class, code = _classify(rule.as_status or status, moves_money=moves_money)
        return error_class(
            provider.message or f"HTTP {status} from {gateway} on {operation}",
            gateway=gateway,
            operation=operation,
            code=code,
            http_status=status,
            provider_code=provider.code,
            retry_after=retry_after_seconds(response),
            latency_ms=latency_ms,
        )

    return map_error
