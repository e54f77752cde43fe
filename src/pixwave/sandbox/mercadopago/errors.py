"""Mercado Pago's error body, ``{"message", "error", "status", "cause": [...]}``, and the errors
the simulator answers with.

Cause codes named by MP's material are used as such (2000 payment not found, 23 bad
``date_of_expiration``, 1 params error, 4037 invalid amount, 4050 invalid e-mail, 2067 invalid
identification, 5 missing token). Where MP publishes no code (refund and cancel refusals,
pay-outs), the simulator picks a plausible one and keeps it stable; they are marked below.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pixwave.sandbox.mercadopago.wire import MPResponse

#: The ``error`` word MP pairs with each HTTP status.
ERROR_WORDS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    423: "locked",
    424: "failed_dependency",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def cause_data() -> str:
    """``DD-MM-YYYYThh:mm:ssUTC;<uuid>``: when and which request, as MP writes it."""
    return f"{datetime.now(UTC):%d-%m-%YT%H:%M:%SUTC};{uuid.uuid4()}"


def error_body(
    status: int,
    message: str,
    *,
    code: int | str | None = None,
    description: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One MP error body; ``code`` adds the single cause MP usually sends."""
    cause: list[dict[str, Any]] = []
    if code is not None:
        cause.append({"code": code, "description": description or message, "data": cause_data()})
    return {
        "message": message,
        "error": error or ERROR_WORDS.get(status, "error"),
        "status": status,
        "cause": cause,
    }


class MPError(Exception):
    """Raised anywhere in a provider route; the route turns it into MP's error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | str | None = None,
        description: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, code=code, description=description, error=error)

    def response(self) -> MPResponse:
        return MPResponse(self.body, status_code=self.status)


# --- the simulator's errors, one constructor each ---------------------------------------------


def missing_token() -> MPError:
    return MPError(401, "Must provide your access_token to proceed", code=5, error="unauthorized")


def invalid_token() -> MPError:
    return MPError(401, "invalid access token", code=7, error="unauthorized")


def missing_idempotency_key() -> MPError:
    # MP's docs make the header mandatory; the wording of its refusal is a plausible choice.
    return MPError(
        400,
        "X-Idempotency-Key header is required",
        code=1,
        description="Params Error: header X-Idempotency-Key is required",
    )


def params_error(description: str) -> MPError:
    return MPError(400, description, code=1, description=description)


def invalid_json(detail: str) -> MPError:
    return MPError(400, "Invalid JSON body", code=1, description=f"Params Error: {detail}")


def payment_not_found() -> MPError:
    return MPError(404, "Payment not found", code=2000)


def refund_not_found() -> MPError:
    # Code chosen by the simulator (MP documents only the payment's 2000).
    return MPError(404, "Refund not found", code=2001)


def intent_not_found() -> MPError:
    # Code chosen by the simulator.
    return MPError(404, "Transaction intent not found", code="transaction_intent_not_found")


def invalid_amount(field: str = "transaction_amount") -> MPError:
    return MPError(400, f"Invalid {field}", code=4037, description=f"Invalid {field}")


def invalid_expiration() -> MPError:
    return MPError(
        400,
        "Invalid date_of_expiration",
        code=23,
        description=(
            "The following parameters must be valid date and format "
            "(yyyy-MM-dd'T'HH:mm:ssz) date_of_expiration, between 30 minutes and 30 days "
            "from now"
        ),
    )


def cannot_cancel(status: str) -> MPError:
    # MP's exact refusal is UNCONFIRMED (reference §1.3); 400 with a stable code.
    return MPError(
        400,
        f"Payment cannot be cancelled: its status is {status}",
        code=4311,
        description="Only payments in status pending or in_process can be cancelled",
    )


def cannot_refund(message: str, code: int) -> MPError:
    # Codes chosen by the simulator: 4040 wrong status, 4041 amount, 4042 too many refunds.
    return MPError(400, message, code=code)


def payouts_forbidden() -> MPError:
    return MPError(
        403,
        "The application is not enabled for payouts (Money Out)",
        code="payouts_not_enabled",
    )


class SandboxError(Exception):
    """A refusal of a sandbox-only route (pay, settle …): ``{"error", "message"}``, like the
    other admin routes, since no provider defines these."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def response(self) -> MPResponse:
        return MPResponse({"error": self.error, "message": self.message}, status_code=self.status)
