"""Mercado Pago's statuses and errors in PixWave's terms, as tables of data.

Status maps are exhaustive over MP's published values (reference §1.4); a value not in a table
maps to the *pending* state of our enum, never to success or failure. The error table is read
top to bottom, the first matching row wins, and anything no row matches falls back to
:func:`~pixwave.gateways.errors.classify_status`.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Final

import httpx
from pydantic import ValidationError

from pixwave.gateways.base import ChargeStatus, RefundStatus, SendStatus
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    classify_status,
)
from pixwave.gateways.http import retry_after_seconds
from pixwave.gateways.mercadopago.schemas import ErrorBody, decode_json

GATEWAY: Final = "mercadopago"

# --------------------------------------------------------------------------------------------
# Statuses

#: Payment ``status`` → charge status. Refunded, charged back and disputed payments stay PAID:
#: the Pix was received, and refunds are tracked as their own transactions.
PAYMENT_STATUS: Final[dict[str, ChargeStatus]] = {
    "pending": ChargeStatus.ACTIVE,
    "in_process": ChargeStatus.ACTIVE,
    "authorized": ChargeStatus.ACTIVE,
    "approved": ChargeStatus.PAID,
    "refunded": ChargeStatus.PAID,
    "charged_back": ChargeStatus.PAID,
    "in_mediation": ChargeStatus.PAID,
    "cancelled": ChargeStatus.CANCELLED,
    "rejected": ChargeStatus.CANCELLED,
}

#: (status, status_detail) pairs that refine :data:`PAYMENT_STATUS`.
PAYMENT_STATUS_DETAIL: Final[dict[tuple[str, str], ChargeStatus]] = {
    ("cancelled", "expired"): ChargeStatus.EXPIRED,
}

#: Refund ``status`` → refund status.
REFUND_STATUS: Final[dict[str, RefundStatus]] = {
    "approved": RefundStatus.SUCCEEDED,
    "in_process": RefundStatus.PROCESSING,
    "pending": RefundStatus.PROCESSING,
    "rejected": RefundStatus.FAILED,
    "cancelled": RefundStatus.FAILED,
}

#: Transaction intent (pay-out) ``status`` → send status. MP does not publish these values
#: (UNCONFIRMED); PixWave and its simulator use pending / approved / rejected, and cancelled
#: is read as a failure should it ever appear.
SEND_STATUS: Final[dict[str, SendStatus]] = {
    "pending": SendStatus.PROCESSING,
    "approved": SendStatus.SUCCEEDED,
    "rejected": SendStatus.FAILED,
    "cancelled": SendStatus.FAILED,
}


def charge_status(status: str, status_detail: str | None) -> ChargeStatus:
    """An unknown status is ACTIVE: the engine keeps polling instead of guessing."""
    if status_detail is not None:
        refined = PAYMENT_STATUS_DETAIL.get((status, status_detail))
        if refined is not None:
            return refined
    return PAYMENT_STATUS.get(status, ChargeStatus.ACTIVE)


def refund_status(status: str) -> RefundStatus:
    return REFUND_STATUS.get(status, RefundStatus.PROCESSING)


def send_status(status: str) -> SendStatus:
    return SEND_STATUS.get(status, SendStatus.PROCESSING)


# --------------------------------------------------------------------------------------------
# Errors

#: Operations of the pay-out product, which MP enables per account (403 otherwise).
PAYOUT_OPERATIONS: Final = frozenset({"send_pix", "get_send"})
#: Operations that move money out: an unclear answer to one of them is never a failure.
MONEY_OUT_OPERATIONS: Final = frozenset({"send_pix", "refund"})

_CLIENT_ERRORS: Final = range(400, 500)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRule:
    """One row: when an error response matches every given condition, raise ``error``/``code``.

    ``provider_codes`` matches MP's ``error`` string, any ``cause[].code`` and a
    ``status_detail``; ``operations`` limits the row to some connector operations.
    """

    statuses: Container[int]
    error: type[GatewayError]
    code: str
    provider_codes: frozenset[str] | None = None
    operations: frozenset[str] | None = None
    retry_after: bool = False  # read the Retry-After header
    note: str = field(default="", compare=False)

    def matches(self, status: int, operation: str, provider_codes: set[str]) -> bool:
        if status not in self.statuses:
            return False
        if self.operations is not None and operation not in self.operations:
            return False
        return self.provider_codes is None or bool(self.provider_codes & provider_codes)


ERROR_RULES: Final[tuple[ErrorRule, ...]] = (
    ErrorRule(
        statuses={401},
        error=GatewayUnavailable,
        code="authentication_failed",
        note="bad or revoked access token: this gateway is unusable until an operator acts",
    ),
    ErrorRule(
        statuses={429},
        error=GatewayUnavailable,
        code="rate_limited",
        retry_after=True,
        note="MP publishes no limits; honour Retry-After",
    ),
    ErrorRule(
        statuses={423},
        error=GatewayUnavailable,
        code="resource_locked",
        note="the payment is being changed by another request; retry shortly",
    ),
    ErrorRule(
        statuses={424},
        error=GatewayUnavailable,
        code="dependency_failed",
        note="failed_dependency: an MP back-end failed, nothing was done",
    ),
    ErrorRule(statuses={404}, error=GatewayNotFound, code="not_found"),
    ErrorRule(
        statuses={400, 422},
        error=GatewayNotFound,
        code="not_found",
        operations=frozenset({"get_refund"}),
        note="the zero-amount lookup POST was not a replay: no refund exists under that key",
    ),
    ErrorRule(
        statuses=_CLIENT_ERRORS,
        error=GatewayRejected,
        code="insufficient_balance",
        provider_codes=frozenset({"insufficient_amount", "insufficient_funds"}),
        note="not enough balance for a refund or pay-out",
    ),
    ErrorRule(
        statuses={400},
        error=GatewayRejected,
        code="invalid_expiry",
        provider_codes=frozenset({"23"}),
        note="cause 23: date_of_expiration malformed or outside 30 min..30 days",
    ),
    ErrorRule(
        statuses={400},
        error=GatewayRejected,
        code="charge_not_cancellable",
        operations=frozenset({"cancel_charge"}),
        note="only pending / in_process payments can be cancelled (exact body UNCONFIRMED)",
    ),
    ErrorRule(statuses={400}, error=GatewayRejected, code="invalid_request"),
    ErrorRule(
        statuses={403},
        error=GatewayRejected,
        code="payouts_not_enabled",
        operations=PAYOUT_OPERATIONS,
        note="Money Out is a restricted product, enabled by MP per application",
    ),
    ErrorRule(
        statuses={409},
        error=GatewayAmbiguous,
        code="idempotency_conflict",
        operations=MONEY_OUT_OPERATIONS,
        note="the key is in flight: our own earlier request may still move the money, so the "
        "engine asks about it instead of failing the payment",
    ),
    ErrorRule(
        statuses={409},
        error=GatewayRejected,
        code="idempotency_conflict",
        note="the idempotency key was already used with another body, or is in flight",
    ),
    ErrorRule(statuses={422}, error=GatewayRejected, code="invalid_request"),
)


def _read_error_body(response: httpx.Response) -> ErrorBody:
    """MP's error JSON, or an empty body for HTML, plain text or nothing at all."""
    try:
        return ErrorBody.model_validate(decode_json(response.content))
    except (ValueError, ValidationError):
        return ErrorBody()


def provider_codes(body: ErrorBody) -> list[str]:
    """MP's own words for the failure, most specific first: cause codes, detail, error."""
    codes = [str(cause.code) for cause in body.cause if cause.code is not None]
    codes += [code for code in (body.status_detail, body.error) if code]
    return codes


def find_rule(status: int, operation: str, codes: list[str]) -> ErrorRule | None:
    """The first row of :data:`ERROR_RULES` that matches, if any."""
    present = set(codes)
    return next((rule for rule in ERROR_RULES if rule.matches(status, operation, present)), None)


def map_error(
    operation: str, response: httpx.Response, moves_money: bool, latency_ms: int
) -> GatewayError:
    """The exception for an MP error response (``GatewayHTTP``'s ``map_error`` hook)."""
    status = response.status_code
    body = _read_error_body(response)
    codes = provider_codes(body)
    rule = find_rule(status, operation, codes)
    if rule is not None:
        error_class, code = rule.error, rule.code
        matched = sorted(rule.provider_codes & set(codes)) if rule.provider_codes else []
    else:
        error_class, code = classify_status(status, moves_money=moves_money)
        matched = []
    provider_code = matched[0] if matched else (codes[0] if codes else None)
    detail = body.message or response.reason_phrase or "error"
    retry_after = None
    if (rule is not None and rule.retry_after) or error_class is GatewayUnavailable:
        retry_after = retry_after_seconds(response)
    return error_class(
        f"{GATEWAY} {operation}: HTTP {status}: {detail}",
        gateway=GATEWAY,
        operation=operation,
        code=code,
        http_status=status,
        provider_code=provider_code,
        retry_after=retry_after,
        latency_ms=latency_ms,
    )
