"""Mercado Pago's status tables, error table (row by row), amounts and wire encoding."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pixwave.gateways.base import ChargeStatus, RefundStatus, SendStatus
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pixwave.gateways.mercadopago.connector import (
    MAX_IDEMPOTENCY_KEY,
    expiry_text,
    idempotency_key,
    with_source_news,
)
from pixwave.gateways.mercadopago.mapping import (
    ERROR_RULES,
    PAYMENT_STATUS,
    REFUND_STATUS,
    SEND_STATUS,
    charge_status,
    find_rule,
    map_error,
    provider_codes,
    refund_status,
    send_status,
)
from pixwave.gateways.mercadopago.schemas import (
    ErrorBody,
    amount_number,
    decode_json,
    encode_json,
    to_centavos,
)

#: Every status of MP's official table (reference §1.4).
MP_PAYMENT_STATUSES = {
    "approved",
    "authorized",
    "in_process",
    "pending",
    "cancelled",
    "refunded",
    "charged_back",
    "in_mediation",
    "rejected",
}


class TestPaymentStatus:
    def test_table_is_exhaustive(self) -> None:
        """The table covers exactly the statuses MP publishes."""
        assert set(PAYMENT_STATUS) == MP_PAYMENT_STATUSES

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("pending", ChargeStatus.ACTIVE),
            ("in_process", ChargeStatus.ACTIVE),
            ("authorized", ChargeStatus.ACTIVE),
            ("approved", ChargeStatus.PAID),
            ("refunded", ChargeStatus.PAID),
            ("charged_back", ChargeStatus.PAID),
            ("in_mediation", ChargeStatus.PAID),
            ("cancelled", ChargeStatus.CANCELLED),
            ("rejected", ChargeStatus.CANCELLED),
        ],
    )
    def test_row(self, status: str, expected: ChargeStatus) -> None:
        """Each MP status maps to the documented charge status."""
        assert charge_status(status, None) is expected

    def test_expired(self) -> None:
        """cancelled/expired is EXPIRED."""
        assert charge_status("cancelled", "expired") is ChargeStatus.EXPIRED

    def test_cancelled_by_collector(self) -> None:
        """cancelled with another detail is CANCELLED."""
        assert charge_status("cancelled", "by_collector") is ChargeStatus.CANCELLED

    def test_expired_detail_only_refines_cancelled(self) -> None:
        """The 'expired' detail does not turn another status into EXPIRED."""
        assert charge_status("pending", "expired") is ChargeStatus.ACTIVE

    def test_unknown_is_active(self) -> None:
        """An unknown status is ACTIVE, never PAID."""
        assert charge_status("settled_somehow", "accredited") is ChargeStatus.ACTIVE


class TestRefundAndSendStatus:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("approved", RefundStatus.SUCCEEDED),
            ("in_process", RefundStatus.PROCESSING),
            ("pending", RefundStatus.PROCESSING),
            ("rejected", RefundStatus.FAILED),
            ("cancelled", RefundStatus.FAILED),
        ],
    )
    def test_refund_row(self, status: str, expected: RefundStatus) -> None:
        """Each refund status maps to the documented refund status."""
        assert refund_status(status) is expected

    def test_refund_table_size(self) -> None:
        """The refund table has exactly the five documented rows."""
        assert len(REFUND_STATUS) == 5

    def test_refund_unknown(self) -> None:
        """An unknown refund status is PROCESSING."""
        assert refund_status("mystery") is RefundStatus.PROCESSING

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("pending", SendStatus.PROCESSING),
            ("approved", SendStatus.SUCCEEDED),
            ("rejected", SendStatus.FAILED),
            ("cancelled", SendStatus.FAILED),
        ],
    )
    def test_send_row(self, status: str, expected: SendStatus) -> None:
        """Each transaction intent status maps to the documented send status."""
        assert send_status(status) is expected

    def test_send_table_size(self) -> None:
        """The send table has exactly the four assumed rows."""
        assert len(SEND_STATUS) == 4

    def test_send_unknown(self) -> None:
        """An unknown intent status is PROCESSING."""
        assert send_status("mystery") is SendStatus.PROCESSING


def mp_error(status: int, error: str, *causes: int | str, message: str = "error") -> bytes:
    body = {
        "message": message,
        "error": error,
        "status": status,
        "cause": [
            {"code": c, "description": "x", "data": "30-05-2025T12:00:00UTC;a1b2"} for c in causes
        ],
    }
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Case:
    """One error response and what it must become."""

    rule: int | None  # index in ERROR_RULES, None for the classify_status fallback
    operation: str
    status: int
    body: bytes
    error: type[GatewayError]
    code: str
    provider_code: str | None = None
    moves_money: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None


CASES: list[Case] = [
    Case(0, "create_charge", 401, mp_error(401, "unauthorized", 7), GatewayUnavailable,
         "authentication_failed", "7"),
    Case(1, "create_charge", 429, mp_error(429, "too_many_requests"), GatewayUnavailable,
         "rate_limited", "too_many_requests", headers={"Retry-After": "12"}, retry_after=12.0),
    Case(2, "cancel_charge", 423, mp_error(423, "locked"), GatewayUnavailable,
         "resource_locked", "locked"),
    Case(3, "refund", 424, mp_error(424, "failed_dependency"), GatewayUnavailable,
         "dependency_failed", "failed_dependency", moves_money=True),
    Case(4, "get_charge", 404, mp_error(404, "not_found", 2000), GatewayNotFound,
         "not_found", "2000"),
    Case(5, "get_refund", 400, mp_error(400, "bad_request"), GatewayNotFound, "not_found",
         "bad_request"),
    Case(6, "refund", 400, mp_error(400, "insufficient_amount"), GatewayRejected,
         "insufficient_balance", "insufficient_amount", moves_money=True),
    Case(6, "send_pix", 422, mp_error(422, "bad_request", "insufficient_funds"), GatewayRejected,
         "insufficient_balance", "insufficient_funds", moves_money=True),
    Case(7, "create_charge", 400, mp_error(400, "bad_request", 23), GatewayRejected,
         "invalid_expiry", "23"),
    Case(8, "cancel_charge", 400, mp_error(400, "bad_request"), GatewayRejected,
         "charge_not_cancellable", "bad_request"),
    Case(9, "create_charge", 400, mp_error(400, "bad_request", 4020), GatewayRejected,
         "invalid_request", "4020"),
    Case(10, "send_pix", 403, mp_error(403, "forbidden"), GatewayRejected,
         "payouts_not_enabled", "forbidden", moves_money=True),
    Case(10, "get_send", 403, mp_error(403, "forbidden"), GatewayRejected,
         "payouts_not_enabled", "forbidden"),
    # Money going out under a key still in flight: ask, never fail (the first may go through).
    Case(11, "send_pix", 409, mp_error(409, "idempotency_conflict"), GatewayAmbiguous,
         "idempotency_conflict", "idempotency_conflict", moves_money=True),
    Case(11, "refund", 409, mp_error(409, "idempotency_conflict"), GatewayAmbiguous,
         "idempotency_conflict", "idempotency_conflict", moves_money=True),
    Case(12, "create_charge", 409, mp_error(409, "idempotency_conflict"), GatewayRejected,
         "idempotency_conflict", "idempotency_conflict"),
    Case(13, "create_charge", 422, mp_error(422, "unprocessable_entity"), GatewayRejected,
         "invalid_request", "unprocessable_entity"),
    # No row: classify_status decides.
    Case(None, "get_charge", 403, mp_error(403, "forbidden"), GatewayRejected, "forbidden",
         "forbidden"),
    Case(None, "refund", 500, mp_error(500, "internal_error"), GatewayAmbiguous,
         "provider_error", "internal_error", moves_money=True),
    Case(None, "get_charge", 500, mp_error(500, "internal_error"), GatewayUnavailable,
         "provider_error", "internal_error"),
    Case(None, "create_charge", 503, b"", GatewayUnavailable, "provider_unavailable"),
    Case(None, "send_pix", 502, b"<html>Bad Gateway</html>", GatewayAmbiguous,
         "provider_error", moves_money=True),
    Case(None, "create_charge", 402, mp_error(402, "payment_required"), GatewayRejected,
         "invalid_request", "payment_required"),
    # Unknown bodies still classify by status, through the rows that need no body.
    Case(0, "get_charge", 401, b"<html>Unauthorized</html>", GatewayUnavailable,
         "authentication_failed"),
    Case(4, "get_send", 404, b"", GatewayNotFound, "not_found"),
    Case(9, "create_charge", 400, b"not json at all", GatewayRejected, "invalid_request"),
    Case(1, "get_charge", 429, b"", GatewayUnavailable, "rate_limited"),
]  # fmt: skip


def case_id(case: Case) -> str:
    row = "fallback" if case.rule is None else f"row{case.rule}"
    return f"{row}-{case.operation}-{case.status}-{case.code}"


class TestErrorTable:
    def test_every_row_has_a_case(self) -> None:
        """Each row of ERROR_RULES is exercised by at least one case below."""
        assert {c.rule for c in CASES if c.rule is not None} == set(range(len(ERROR_RULES)))

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_rule_selected(self, case: Case) -> None:
        """The expected row (or no row) matches the response."""
        codes = provider_codes(_body(case.body))
        rule = find_rule(case.status, case.operation, codes)
        expected = None if case.rule is None else ERROR_RULES[case.rule]
        assert rule is expected

    @pytest.mark.parametrize("case", CASES, ids=case_id)
    def test_error_raised(self, case: Case) -> None:
        """map_error builds the expected class and code, with MP's code and the status."""
        response = httpx.Response(case.status, content=case.body, headers=case.headers)
        error = map_error(case.operation, response, case.moves_money, 17)
        assert type(error) is case.error
        assert error.code == case.code
        assert error.provider_code == case.provider_code
        assert error.http_status == case.status
        assert error.gateway == "mercadopago"
        assert error.operation == case.operation
        assert error.latency_ms == 17
        assert error.retry_after == case.retry_after

    def test_message_carries_mp_text(self) -> None:
        """The error message includes MP's own message."""
        body = mp_error(400, "bad_request", 23, message="date_of_expiration is invalid")
        error = map_error("create_charge", httpx.Response(400, content=body), False, 0)
        assert "date_of_expiration is invalid" in error.message
        assert "HTTP 400" in error.message

    def test_retry_after_http_date(self) -> None:
        """A Retry-After date in the past means retry now (0 s)."""
        response = httpx.Response(
            429, content=b"", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
        )
        error = map_error("get_charge", response, False, 0)
        assert error.retry_after == 0.0

    def test_insufficient_on_server_error_is_not_rejected(self) -> None:
        """A 5xx mentioning insufficient funds still follows the 5xx rule."""
        body = mp_error(500, "insufficient_funds")
        error = map_error("send_pix", httpx.Response(500, content=body), True, 0)
        assert type(error) is GatewayAmbiguous

    def test_body_status_detail_is_a_provider_code(self) -> None:
        """A status_detail in the error body counts as MP's word for it."""
        body = json.dumps({"status": 400, "status_detail": "insufficient_amount"}).encode()
        error = map_error("refund", httpx.Response(400, content=body), True, 0)
        assert error.code == "insufficient_balance"


def _body(content: bytes) -> ErrorBody:
    try:
        return ErrorBody.model_validate(decode_json(content))
    except ValueError:
        return ErrorBody()


class TestAmounts:
    @pytest.mark.parametrize(
        ("value", "centavos"),
        [
            (Decimal("0.10"), 10),
            (Decimal("0.1"), 10),
            (Decimal("10.10"), 1010),
            (Decimal("10.100"), 1010),
            (Decimal("1234567.89"), 123456789),
            (Decimal("100"), 10000),
            (100, 10000),
            (0, 0),
            (Decimal("1E+2"), 10000),
        ],
    )
    def test_to_centavos(self, value: Decimal | int, centavos: int) -> None:
        """MP numbers become centavos exactly."""
        assert to_centavos(value) == centavos

    @pytest.mark.parametrize("value", [Decimal("10.001"), Decimal("0.005"), Decimal("NaN")])
    def test_more_than_two_decimals_rejected(self, value: Decimal) -> None:
        """Fractions of a centavo are refused."""
        with pytest.raises(ValueError, match="amount"):
            to_centavos(value)

    def test_bool_rejected(self) -> None:
        """true is not an amount."""
        with pytest.raises(ValueError, match="not an amount"):
            to_centavos(True)

    def test_parsed_without_float(self) -> None:
        """Response JSON numbers parse to Decimal with their digits intact."""
        data = decode_json(b'{"a": 1234567.89, "b": 0.10, "c": 5}')
        assert data == {"a": Decimal("1234567.89"), "b": Decimal("0.10"), "c": 5}
        assert str(data["b"]) == "0.10"

    @pytest.mark.parametrize(
        ("centavos", "text"),
        [(10, b"0.10"), (1010, b"10.10"), (123456789, b"1234567.89"), (0, b"0.00")],
    )
    def test_encoded_exactly(self, centavos: int, text: bytes) -> None:
        """amount_number encodes to the exact to_decimal_string text."""
        assert encode_json({"amount": amount_number(centavos)}) == b'{"amount":' + text + b"}"

    def test_round_trip(self) -> None:
        """Encoding then decoding gives back the same centavos."""
        for centavos in (1, 10, 99, 1010, 123456789, 999_999_999_999):
            raw = encode_json({"amount": amount_number(centavos)})
            assert to_centavos(decode_json(raw)["amount"]) == centavos


class TestEncoding:
    def test_float_refused(self) -> None:
        """A float in a request body is a bug, refused loudly."""
        with pytest.raises(TypeError, match="float"):
            encode_json({"amount": 10.1})

    def test_nested_and_text(self) -> None:
        """Nested objects, lists, null, booleans and non-ASCII text encode as JSON."""
        body: dict[str, Any] = {
            "a": [{"b": Decimal("1.50")}, None, True],
            "c": 'São Paulo "quoted"',
        }
        raw = encode_json(body)
        assert raw == '{"a":[{"b":1.50},null,true],"c":"São Paulo \\"quoted\\""}'.encode()
        assert json.loads(raw) == {"a": [{"b": 1.5}, None, True], "c": 'São Paulo "quoted"'}


class TestRequestHelpers:
    def test_idempotency_key(self) -> None:
        """The key is pixwave-{kind}-{reference}."""
        assert idempotency_key("charge", "txn_01") == "pixwave-charge-txn_01"

    def test_long_reference_hashed(self) -> None:
        """A reference too long for 64 characters is hashed, deterministically."""
        reference = "x" * 100
        key = idempotency_key("refund", reference)
        assert len(key) == MAX_IDEMPOTENCY_KEY
        assert key.startswith("pixwave-refund-")
        assert key == idempotency_key("refund", reference)
        assert key != idempotency_key("refund", "y" * 100)

    def test_expiry_format(self) -> None:
        """Expiry is written in -03:00 with milliseconds, as MP's examples."""
        now = datetime(2025, 12, 31, 23, 0, 0, 999_999, tzinfo=UTC)
        assert expiry_text(now, 86400) == "2026-01-01T20:00:00.000-03:00"

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://h.example/mp", "https://h.example/mp?source_news=webhooks"),
            ("https://h.example/mp?a=1", "https://h.example/mp?a=1&source_news=webhooks"),
            ("https://h.example/mp?source_news=ipn", "https://h.example/mp?source_news=ipn"),
        ],
    )
    def test_source_news(self, url: str, expected: str) -> None:
        """source_news=webhooks is appended with ? or &, once."""
        assert with_source_news(url) == expected
