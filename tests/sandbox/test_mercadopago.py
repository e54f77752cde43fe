"""The Mercado Pago simulator over real HTTP: payments, BR Codes, lifecycle, refunds, pay-outs,
signed webhooks and MP-shaped errors."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import PIL.Image
import pytest
import zxingcpp
from mercadopago.webhook import InvalidWebhookSignatureError, WebhookSignatureValidator

from pixwave.pix import (
    build_static_brcode,
    crc16_hex,
    is_valid_end_to_end_id,
    parse_brcode,
)
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig, MercadoPagoSimulator
from tests.pix.vectors import RECURRENCE_VECTOR
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink

SECRET = "sandbox-mercadopago-webhook-secret"
DEFAULT_CONFIG = MercadoPagoSimConfig().model_dump(mode="json")
CPF = "12345678909"
BRASILIA = timezone(timedelta(hours=-3))


# --------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def simulator() -> MercadoPagoSimulator:
    return MercadoPagoSimulator()


def no_delay(thread: ServerThread) -> ServerThread:
    """Answer without Nagle's delay. The listening socket is made without IPPROTO_TCP, so
    asyncio does not set TCP_NODELAY on accepted connections and each response waits ~40 ms
    for the client's delayed ACK; accepted sockets inherit the option from the listener."""
    thread.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return thread


@pytest.fixture(scope="module")
def server(simulator: MercadoPagoSimulator) -> Iterator[ServerThread]:
    with run_simulator(simulator) as thread:
        yield no_delay(thread)


@pytest.fixture(scope="module")
def sink_server() -> Iterator[tuple[WebhookSink, ServerThread]]:
    sink = WebhookSink()
    with run_sink(sink) as thread:
        yield sink, no_delay(thread)


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    """A client with a Bearer token, on a simulator with no resources and default settings."""
    headers = {"Authorization": "Bearer TEST-sandbox-token"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=5) as http:
        http.post("/_sandbox/reset").raise_for_status()
        http.patch("/_sandbox/config", json=DEFAULT_CONFIG).raise_for_status()
        yield http
        http.post("/_sandbox/reset")
        http.patch("/_sandbox/config", json=DEFAULT_CONFIG)


@pytest.fixture
def sink(
    client: httpx.Client, sink_server: tuple[WebhookSink, ServerThread]
) -> Iterator[WebhookSink]:
    """A webhook receiver that answers 200, with nothing received yet; the simulator's
    default webhook URL points at it (with a query of its own, as MP's docs suggest)."""
    receiver, thread = sink_server
    receiver.status = 200
    receiver.received.clear()
    url = f"{thread.base_url}/mp/webhook?source_news=webhooks"
    client.patch("/_sandbox/config", json={"webhook_url": url}).raise_for_status()
    yield receiver
    receiver.status = 200


def encode(body: Any) -> bytes:
    """A JSON body whose numbers are plain ints (no float can creep in)."""
    return json.dumps(body).encode()


def raw_json(template: str, **values: str) -> bytes:
    """A hand-written body, so amounts are the exact literals a test means."""
    return template.format(**values).encode()


def parsed(response: httpx.Response) -> Any:
    """The body with numbers as Decimal, never float."""
    return json.loads(response.content, parse_float=Decimal)


_keys = iter(range(10**9))


def new_key() -> str:
    return f"test-key-{next(_keys)}-{time.monotonic_ns()}"


def create_payment(
    client: httpx.Client,
    *,
    amount: str = "10.10",
    key: str | None = None,
    extra: str = "",
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> httpx.Response:
    """POST /v1/payments with ``amount`` as a literal JSON number."""
    body = (
        f'{{"transaction_amount": {amount}, "payment_method_id": "pix", '
        f'"description": "Pedido 123", "external_reference": "order-123", '
        f'"payer": {{"email": "buyer@example.com", "first_name": "Test", '
        f'"identification": {{"type": "CPF", "number": "{CPF}"}}}}{extra}}}'
    )
    sent = dict(headers or {})
    if not any(name.lower() == "x-idempotency-key" for name in sent):
        sent["X-Idempotency-Key"] = key or new_key()
    if timeout is None:
        return client.post("/v1/payments", content=body.encode(), headers=sent)
    return client.post("/v1/payments", content=body.encode(), headers=sent, timeout=timeout)


def created(client: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    response = create_payment(client, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = parsed(response)
    return body


def qr_code(payment: dict[str, Any]) -> str:
    code: str = payment["point_of_interaction"]["transaction_data"]["qr_code"]
    return code


def pay(client: httpx.Client, payment: dict[str, Any]) -> httpx.Response:
    return client.post("/_sandbox/pay", json={"brcode": qr_code(payment)})


def paid(client: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    payment = created(client, **kwargs)
    assert pay(client, payment).status_code == 200
    return payment


def get(client: httpx.Client, payment: dict[str, Any]) -> dict[str, Any]:
    response = client.get(f"/v1/payments/{payment['id']}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = parsed(response)
    return body


def refund(
    client: httpx.Client, payment: dict[str, Any], body: bytes = b"", key: str | None = None
) -> httpx.Response:
    return client.post(
        f"/v1/payments/{payment['id']}/refunds",
        content=body,
        headers={"X-Idempotency-Key": key or new_key()},
    )


def mp_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert Mercado Pago's error shape and return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "error", "status", "cause"}
    assert body["status"] == status
    assert isinstance(body["message"], str)
    assert isinstance(body["cause"], list)
    for cause in body["cause"]:
        assert set(cause) == {"code", "description", "data"}
    return body


def cause_codes(response: httpx.Response) -> list[Any]:
    return [cause["code"] for cause in response.json()["cause"]]


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``check`` holds (background work: settlements, webhook retries)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


PAYOUT_TEMPLATE = (
    '{{"external_reference": "{reference}", '
    '"point_of_interaction": {{"type": "PSP_TRANSFER"}}, {seller}'
    '"transaction": {{"from": {{"accounts": [{{"amount": {amount}}}]}}, '
    '"to": {{"accounts": [{{"type": "current", "amount": {amount}, '
    '"chave": {{"type": "{key_type}", "value": "{key}"}}, '
    '"owner": {{"identification": {{"type": "CPF", "number": "12345678909"}}, '
    '"name": "Fulano de Tal"}}}}]}}, '
    '"total_amount": {total}}}}}'
)


def create_payout(
    client: httpx.Client,
    *,
    reference: str = "send-1",
    amount: str = "25.50",
    total: str | None = None,
    key_type: str = "EMAIL",
    key: str = "fulano@example.com",
    url: str | None = None,
    idempotency_key: str | None = None,
) -> httpx.Response:
    """POST /v1/transaction-intents/process with literal amounts; ``url`` is the intent's
    notification_url (seller_configuration is left out without one)."""
    seller = (
        f'"seller_configuration": {{"notification_info": {{"notification_url": "{url}"}}}}, '
        if url
        else ""
    )
    body = raw_json(
        PAYOUT_TEMPLATE,
        reference=reference,
        amount=amount,
        total=total or amount,
        key_type=key_type,
        key=key,
        seller=seller,
    )
    return client.post(
        "/v1/transaction-intents/process",
        content=body,
        headers={"X-Idempotency-Key": idempotency_key or new_key()},
    )


def manual_settlement(client: httpx.Client) -> None:
    client.patch("/_sandbox/config", json={"auto_settle_sends": False}).raise_for_status()


def scan(png_base64: str) -> list[str]:
    image = PIL.Image.open(io.BytesIO(base64.b64decode(png_base64)))
    return [result.text for result in zxingcpp.read_barcodes(image)]


def expiry_in(delta: timedelta) -> str:
    """``now + delta`` as a client in Brasília writes it: ``…T12:00:00.000-03:00``."""
    moment = datetime.now(UTC).astimezone(BRASILIA) + delta
    return moment.isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------------
# Authentication and errors


class TestAuthentication:
    def test_missing_token_is_401(self, client: httpx.Client) -> None:
        """A request without Authorization gets MP's 401 body."""
        response = client.get("/v1/payments/1", headers={"Authorization": ""})
        body = mp_error(response, 401)
        assert body["error"] == "unauthorized"

    def test_non_bearer_scheme_is_401(self, client: httpx.Client) -> None:
        """Basic credentials are not an access token."""
        response = client.get("/v1/payments/1", headers={"Authorization": "Basic dXNlcjpwdw=="})
        mp_error(response, 401)

    def test_configured_token_rejects_others(self, client: httpx.Client) -> None:
        """With access_token set, another token is refused and that one accepted."""
        client.patch("/_sandbox/config", json={"access_token": "APP_USR-good"})
        assert client.get("/v1/payments/1").status_code == 401
        good = client.get("/v1/payments/1", headers={"Authorization": "Bearer APP_USR-good"})
        assert good.status_code == 404

    def test_unauthenticated_create_creates_nothing(self, client: httpx.Client) -> None:
        """A refused create leaves no payment behind."""
        create_payment(client, headers={"Authorization": ""})
        assert client.get("/_sandbox").json()["resources"]["payments"] == 0


class TestErrors:
    def test_answers_carry_a_request_id(self, client: httpx.Client) -> None:
        """Every API answer, error or not, has an x-request-id header."""
        assert client.get("/v1/payments/1").headers["x-request-id"]
        assert create_payment(client).headers["x-request-id"]

    def test_unknown_payment_is_404_code_2000(self, client: httpx.Client) -> None:
        """MP's 'Payment not found' body, cause code 2000."""
        response = client.get("/v1/payments/999")
        body = mp_error(response, 404)
        assert body["error"] == "not_found"
        assert body["message"] == "Payment not found"
        assert cause_codes(response) == [2000]

    def test_non_numeric_payment_id_is_404(self, client: httpx.Client) -> None:
        """An id that cannot be a payment's is simply not found."""
        mp_error(client.get("/v1/payments/abc"), 404)

    def test_malformed_json_is_400(self, client: httpx.Client) -> None:
        """Broken JSON is a 400 in MP's shape, never a 500."""
        response = client.post(
            "/v1/payments", content=b'{"transaction_amount": ', headers={"X-Idempotency-Key": "k"}
        )
        mp_error(response, 400)

    def test_json_that_is_not_an_object_is_400(self, client: httpx.Client) -> None:
        """A JSON array is not a payment."""
        response = client.post("/v1/payments", content=b"[1]", headers={"X-Idempotency-Key": "k"})
        mp_error(response, 400)

    def test_nan_is_not_a_number(self, client: httpx.Client) -> None:
        """NaN is refused as JSON, not taken as an amount."""
        response = create_payment(client, amount="NaN")
        mp_error(response, 400)

    def test_injected_fault_has_mp_shape(self, client: httpx.Client) -> None:
        """An injected 500 carries MP's error body and creates nothing."""
        client.put("/_sandbox/faults/payments.create", json={"error_rate": 1.0}).raise_for_status()
        response = create_payment(client)
        body = mp_error(response, 500)
        assert body["error"] == "internal_server_error"
        assert client.get("/_sandbox").json()["resources"]["payments"] == 0

    def test_injected_rate_limit_has_mp_shape(self, client: httpx.Client) -> None:
        """A 429 says too_many_requests and carries Retry-After."""
        rule = {"rate_limit": 0, "retry_after": 7}
        client.put("/_sandbox/faults/payments.get", json=rule).raise_for_status()
        response = client.get("/v1/payments/1")
        assert mp_error(response, 429)["error"] == "too_many_requests"
        assert response.headers["retry-after"] == "7"


# --------------------------------------------------------------------------------------------
# Payments


class TestCreatePayment:
    def test_answers_a_pending_pix_payment(self, client: httpx.Client) -> None:
        """201 with the fields of reference §1.2."""
        response = create_payment(client)
        assert response.status_code == 201
        body = parsed(response)
        assert isinstance(body["id"], int)
        assert (body["status"], body["status_detail"]) == ("pending", "pending_waiting_transfer")
        assert body["payment_method_id"] == "pix"
        assert body["payment_type_id"] == "bank_transfer"
        assert body["currency_id"] == "BRL"
        assert body["live_mode"] is False
        assert body["collector_id"] == 1234567
        assert body["external_reference"] == "order-123"
        assert body["transaction_amount_refunded"] == 0
        assert body["refunds"] == []
        assert body["date_approved"] is None
        assert body["payer"]["email"] == "buyer@example.com"
        assert body["payer"]["identification"] == {"type": "CPF", "number": CPF}
        assert body["transaction_details"]["net_received_amount"] == 0
        assert body["transaction_details"]["total_paid_amount"] == Decimal("10.1")
        poi = body["point_of_interaction"]
        assert poi["type"] == "PIX"
        assert set(poi["transaction_data"]) >= {"qr_code", "qr_code_base64", "ticket_url"}

    def test_get_returns_the_created_payment(self, client: httpx.Client) -> None:
        """GET /v1/payments/{id} answers the same resource."""
        payment = created(client)
        assert get(client, payment) == payment

    def test_ids_increase(self, client: httpx.Client) -> None:
        """Each new payment has a larger integer id."""
        first, second = created(client), created(client)
        assert second["id"] > first["id"]

    @pytest.mark.parametrize(
        ("literal", "expected", "centavos"),
        [
            ("10.10", Decimal("10.1"), 1010),
            ("0.30", Decimal("0.3"), 30),
            ("1234567.89", Decimal("1234567.89"), 123456789),
            ("100", 100, 10000),
            ("10.100", Decimal("10.1"), 1010),
        ],
    )
    def test_amount_is_exact(
        self, client: httpx.Client, literal: str, expected: Decimal | int, centavos: int
    ) -> None:
        """The amount survives without float rounding, in the JSON and in the BR Code."""
        payment = created(client, amount=literal)
        assert get(client, payment)["transaction_amount"] == expected
        assert parse_brcode(qr_code(payment)).amount_centavos == centavos

    def test_default_expiry_is_24_hours(self, client: httpx.Client) -> None:
        """Without date_of_expiration a Pix payment lasts 24 h."""
        payment = created(client)
        created_at = datetime.fromisoformat(payment["date_created"])
        expires = datetime.fromisoformat(payment["date_of_expiration"])
        assert expires - created_at == timedelta(hours=24)

    def test_given_expiry_is_kept(self, client: httpx.Client) -> None:
        """A date_of_expiration inside the window is the payment's."""
        wanted = expiry_in(timedelta(hours=2))
        payment = created(client, extra=f', "date_of_expiration": "{wanted}"')
        kept = datetime.fromisoformat(payment["date_of_expiration"])
        assert kept == datetime.fromisoformat(wanted)

    def test_ticket_url_serves_the_qr(self, client: httpx.Client, server: ServerThread) -> None:
        """ticket_url points at a page showing the copy-and-paste code."""
        payment = created(client)
        url = payment["point_of_interaction"]["transaction_data"]["ticket_url"]
        path = url.split("/sandbox/mercadopago", 1)[1]
        page = client.get(path)
        assert page.status_code == 200
        assert qr_code(payment) in page.text


class TestCreatePaymentValidation:
    @pytest.mark.parametrize("amount", ["0", "-1", "10.001", '"10.00"', "true", "null"])
    def test_bad_amount_is_400(self, client: httpx.Client, amount: str) -> None:
        """Zero, negative, sub-centavo, string, boolean and missing amounts are refused."""
        response = create_payment(client, amount=amount)
        mp_error(response, 400)
        assert cause_codes(response) == [4037]

    def test_other_payment_method_is_400(self, client: httpx.Client) -> None:
        """Only Pix is simulated."""
        body = encode({"transaction_amount": 10, "payment_method_id": "bolbradesco"})
        response = client.post("/v1/payments", content=body, headers={"X-Idempotency-Key": "k"})
        mp_error(response, 400)

    def test_missing_payer_email_is_400(self, client: httpx.Client) -> None:
        """payer.email is required."""
        body = encode({"transaction_amount": 10, "payment_method_id": "pix", "payer": {}})
        response = client.post("/v1/payments", content=body, headers={"X-Idempotency-Key": "k"})
        mp_error(response, 400)
        assert cause_codes(response) == [4050]

    def test_invalid_cpf_is_400(self, client: httpx.Client) -> None:
        """A payer CPF with wrong check digits is refused (cause 2067)."""
        body = encode(
            {
                "transaction_amount": 10,
                "payment_method_id": "pix",
                "payer": {
                    "email": "a@b.com",
                    "identification": {"type": "CPF", "number": "12345678900"},
                },
            }
        )
        response = client.post("/v1/payments", content=body, headers={"X-Idempotency-Key": "k"})
        mp_error(response, 400)
        assert cause_codes(response) == [2067]

    @pytest.mark.parametrize(
        "expiry",
        [
            "tomorrow",
            "2030-01-01",
            "2030-01-01T10:00:00",  # no offset
            expiry_in(timedelta(minutes=10)),  # under 30 minutes
            expiry_in(timedelta(days=31)),  # over 30 days
        ],
    )
    def test_bad_expiry_is_cause_23(self, client: httpx.Client, expiry: str) -> None:
        """date_of_expiration must be ISO-8601 with offset, 30 min to 30 days ahead."""
        response = create_payment(client, extra=f', "date_of_expiration": "{expiry}"')
        mp_error(response, 400)
        assert cause_codes(response) == [23]

    def test_bad_notification_url_is_400(self, client: httpx.Client) -> None:
        """notification_url must be an http(s) URL (cause 4020)."""
        response = create_payment(client, extra=', "notification_url": "not a url"')
        mp_error(response, 400)
        assert cause_codes(response) == [4020]


class TestIdempotency:
    def test_missing_key_is_400(self, client: httpx.Client) -> None:
        """POST /v1/payments without X-Idempotency-Key is refused."""
        body = encode({"transaction_amount": 10, "payment_method_id": "pix"})
        mp_error(client.post("/v1/payments", content=body), 400)

    def test_repeated_key_returns_the_first_payment(self, client: httpx.Client) -> None:
        """Same key: same status, byte-identical body, one payment."""
        first = create_payment(client, key="order-123-charge")
        again = create_payment(client, key="order-123-charge", amount="99.99")
        assert (again.status_code, again.content) == (first.status_code, first.content)
        assert client.get("/_sandbox").json()["resources"]["payments"] == 1

    def test_header_name_is_case_insensitive(self, client: httpx.Client) -> None:
        """x-idempotency-key in lower case is the same header."""
        first = create_payment(client, headers={"x-idempotency-key": "lower"})
        again = create_payment(client, headers={"X-IDEMPOTENCY-KEY": "lower"})
        assert again.json()["id"] == first.json()["id"]

    def test_refused_request_does_not_burn_the_key(self, client: httpx.Client) -> None:
        """A 400 creates nothing, so the corrected request with that key succeeds."""
        assert create_payment(client, key="retry-me", amount="0").status_code == 400
        assert create_payment(client, key="retry-me").status_code == 201


class TestBRCode:
    def test_code_is_a_valid_static_pix_code(self, client: httpx.Client) -> None:
        """The qr_code parses, its CRC is right, and it pays the collector's key."""
        payment = created(client)
        code = qr_code(payment)
        brcode = parse_brcode(code)
        assert code[-4:] == crc16_hex(code[:-4])
        assert brcode.point_of_initiation == "static"
        assert brcode.key == MercadoPagoSimConfig().collector_pix_key
        assert brcode.merchant_name == "PIXWAVE SANDBOX"
        assert brcode.merchant_city == "SAO PAULO"

    def test_code_carries_amount_and_txid(self, client: httpx.Client) -> None:
        """Field 54 is the amount and 62-05 the txid ``mpqrinter{id}``, like real MP codes."""
        payment = created(client, amount="57.30")
        brcode = parse_brcode(qr_code(payment))
        assert brcode.amount_centavos == 5730
        assert brcode.txid == f"mpqrinter{payment['id']}"

    def test_png_scans_back_to_the_code(self, client: httpx.Client) -> None:
        """qr_code_base64 is a PNG whose QR decodes to exactly qr_code."""
        payment = created(client)
        data = payment["point_of_interaction"]["transaction_data"]
        assert scan(data["qr_code_base64"]) == [data["qr_code"]]


# --------------------------------------------------------------------------------------------
# Lifecycle


class TestPay:
    def test_pay_approves_the_payment(self, client: httpx.Client) -> None:
        """Paying the code turns the payment approved/accredited."""
        payment = created(client)
        response = pay(client, payment)
        assert response.status_code == 200
        after = get(client, payment)
        assert (after["status"], after["status_detail"]) == ("approved", "accredited")
        assert after["date_approved"] is not None
        assert after["transaction_details"]["net_received_amount"] == Decimal("10.1")

    def test_pay_answers_what_happened(self, client: httpx.Client) -> None:
        """The answer names the charge, the endToEndId and the centavos paid."""
        payment = created(client, amount="10.10")
        body = pay(client, payment).json()
        assert body["gateway"] == "mercadopago"
        assert body["charge_id"] == str(payment["id"])
        assert body["status"] == "approved"
        assert body["amount"] == 1010
        assert is_valid_end_to_end_id(body["end_to_end_id"])

    def test_pay_records_the_payer(self, client: httpx.Client) -> None:
        """The payer's name and document appear in the payment's bank_info."""
        payment = created(client)
        payer = {"name": "Beltrano", "document": "111.444.777-35"}
        client.post("/_sandbox/pay", json={"brcode": qr_code(payment), "payer": payer})
        bank_payer = get(client, payment)["point_of_interaction"]["transaction_data"]["bank_info"]
        assert bank_payer["payer"]["account_holder_name"] == "Beltrano"
        assert bank_payer["payer"]["identification"] == {"type": "CPF", "number": "11144477735"}

    def test_paying_twice_is_409(self, client: httpx.Client) -> None:
        """A paid code cannot be paid again."""
        payment = paid(client)
        response = pay(client, payment)
        assert response.status_code == 409
        assert response.json()["error"] == "already_paid"

    def test_invalid_code_is_422(self, client: httpx.Client) -> None:
        """A code with a wrong CRC is refused with the parse error."""
        code = qr_code(created(client))
        broken = code[:-4] + ("0000" if code[-4:] != "0000" else "1111")
        response = client.post("/_sandbox/pay", json={"brcode": broken})
        assert response.status_code == 422
        assert response.json()["error"] == "brcode_crc_mismatch"

    def test_a_recurrence_only_code_pays_nothing(self, client: httpx.Client) -> None:
        """A Pix Automático authorisation code (Jornada 2) is not a payment: 422."""
        response = client.post("/_sandbox/pay", json={"brcode": RECURRENCE_VECTOR})
        assert response.status_code == 422
        assert response.json()["error"] == "nothing_to_pay"

    def test_unknown_txid_is_404(self, client: httpx.Client) -> None:
        """A valid code that no payment issued is not found."""
        code = build_static_brcode(
            key=MercadoPagoSimConfig().collector_pix_key,
            merchant_name="X",
            merchant_city="Y",
            amount_centavos=100,
            txid="mpqrinter1",
        )
        assert client.post("/_sandbox/pay", json={"brcode": code}).status_code == 404


class TestExpiry:
    def test_clock_past_expiry_expires_the_payment(self, client: httpx.Client) -> None:
        """Moving the simulated clock past date_of_expiration → cancelled/expired."""
        payment = created(client)
        client.post("/_sandbox/clock/advance", json={"seconds": 24 * 3600 + 1})
        after = get(client, payment)
        assert (after["status"], after["status_detail"]) == ("cancelled", "expired")

    def test_expired_payment_cannot_be_paid(self, client: httpx.Client) -> None:
        """Paying after expiry is a 409."""
        payment = created(
            client, extra=f', "date_of_expiration": "{expiry_in(timedelta(hours=1))}"'
        )
        client.post("/_sandbox/clock/advance", json={"seconds": 3601})
        response = pay(client, payment)
        assert response.status_code == 409
        assert response.json()["error"] == "expired"

    def test_payment_before_expiry_stays_pending(self, client: httpx.Client) -> None:
        """Time that does not reach the expiry changes nothing."""
        payment = created(client)
        client.post("/_sandbox/clock/advance", json={"seconds": 23 * 3600})
        assert get(client, payment)["status"] == "pending"

    def test_expire_route_expires_now(self, client: httpx.Client) -> None:
        """The sandbox expire hook does what the clock would."""
        payment = created(client)
        assert client.post(f"/_sandbox/payments/{payment['id']}/expire").status_code == 200
        assert get(client, payment)["status_detail"] == "expired"


class TestCancel:
    def test_cancel_pending_payment(self, client: httpx.Client) -> None:
        """PUT {"status": "cancelled"} on a pending payment → cancelled/by_collector."""
        payment = created(client)
        response = client.put(f"/v1/payments/{payment['id']}", json={"status": "cancelled"})
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["status_detail"]) == (
            "cancelled",
            "by_collector",
        )

    def test_cancel_approved_payment_is_400(self, client: httpx.Client) -> None:
        """An approved payment cannot be cancelled."""
        payment = paid(client)
        response = client.put(f"/v1/payments/{payment['id']}", json={"status": "cancelled"})
        mp_error(response, 400)
        assert get(client, payment)["status"] == "approved"

    def test_cancelled_payment_cannot_be_paid(self, client: httpx.Client) -> None:
        """Paying a cancelled charge is a 409."""
        payment = created(client)
        client.put(f"/v1/payments/{payment['id']}", json={"status": "cancelled"})
        assert pay(client, payment).status_code == 409

    def test_other_updates_are_400(self, client: httpx.Client) -> None:
        """Only cancellation is an update the simulator knows."""
        payment = created(client)
        response = client.put(f"/v1/payments/{payment['id']}", json={"capture": True})
        mp_error(response, 400)


class TestSearch:
    def test_search_by_external_reference_and_status(self, client: httpx.Client) -> None:
        """Filters combine; paging reports the total."""
        pending = created(client)
        approved = paid(client)
        response = client.get(
            "/v1/payments/search", params={"external_reference": "order-123", "status": "approved"}
        )
        body = parsed(response)
        assert body["paging"] == {"total": 1, "limit": 30, "offset": 0}
        assert [p["id"] for p in body["results"]] == [approved["id"]]
        assert pending["id"] != approved["id"]

    def test_search_pages(self, client: httpx.Client) -> None:
        """limit and offset select a page of the results."""
        ids = [created(client)["id"] for _ in range(3)]
        body = client.get("/v1/payments/search", params={"limit": 2, "offset": 2}).json()
        assert body["paging"]["total"] == 3
        assert [p["id"] for p in body["results"]] == ids[2:]


class TestSlowProvider:
    def test_a_latency_beyond_the_clients_timeout_still_does_the_work(
        self, client: httpx.Client
    ) -> None:
        """Like a real slow provider: the client times out, the payment is created anyway."""
        client.put("/_sandbox/faults/payments.create", json={"latency": {"fixed_ms": 600}})
        with pytest.raises(httpx.ReadTimeout):
            create_payment(client, headers={"X-Idempotency-Key": "slow-1"}, timeout=0.15)
        deadline = time.monotonic() + 5
        while not client.get("/v1/payments/search").json()["results"]:
            assert time.monotonic() < deadline, "the slow create never took effect"
            time.sleep(0.05)
        client.delete("/_sandbox/faults")
        again = create_payment(client, headers={"X-Idempotency-Key": "slow-1"})
        assert client.get("/v1/payments/search").json()["paging"]["total"] == 1  # a retry finds it
        assert again.status_code in {200, 201}


# --------------------------------------------------------------------------------------------
# Refunds


class TestRefunds:
    def test_partial_refund(self, client: httpx.Client) -> None:
        """A partial refund leaves the payment approved/partially_refunded."""
        payment = paid(client, amount="100.00")
        response = refund(client, payment, b'{"amount": 30.10}')
        assert response.status_code == 201
        body = parsed(response)
        assert body["amount"] == Decimal("30.1")
        assert body["status"] == "approved"
        assert body["payment_id"] == payment["id"]
        assert body["refund_mode"] == "standard"
        assert body["source"]["type"] == "collector"
        after = get(client, payment)
        assert (after["status"], after["status_detail"]) == ("approved", "partially_refunded")
        assert after["transaction_amount_refunded"] == Decimal("30.1")

    def test_empty_body_refunds_the_rest(self, client: httpx.Client) -> None:
        """After a partial refund, an empty body refunds what remains → refunded/refunded."""
        payment = paid(client, amount="100.00")
        refund(client, payment, b'{"amount": 30.10}')
        rest = refund(client, payment)
        assert parsed(rest)["amount"] == Decimal("69.9")
        after = get(client, payment)
        assert (after["status"], after["status_detail"]) == ("refunded", "refunded")
        assert after["transaction_amount_refunded"] == 100
        assert len(after["refunds"]) == 2

    def test_empty_object_is_a_full_refund(self, client: httpx.Client) -> None:
        """``{}`` refunds the whole amount."""
        payment = paid(client)
        assert parsed(refund(client, payment, b"{}"))["amount"] == Decimal("10.1")
        assert get(client, payment)["status"] == "refunded"

    def test_refund_over_remaining_is_400(self, client: httpx.Client) -> None:
        """More than is left to refund is refused and changes nothing."""
        payment = paid(client, amount="10.00")
        refund(client, payment, b'{"amount": 6}')
        response = refund(client, payment, b'{"amount": 4.01}')
        mp_error(response, 400)
        assert get(client, payment)["transaction_amount_refunded"] == 6

    def test_pending_payment_cannot_be_refunded(self, client: httpx.Client) -> None:
        """Only approved payments are refundable."""
        mp_error(refund(client, created(client)), 400)

    def test_refunded_payment_cannot_be_refunded_again(self, client: httpx.Client) -> None:
        """A fully refunded payment refuses more refunds."""
        payment = paid(client)
        refund(client, payment)
        mp_error(refund(client, payment, b'{"amount": 0.01}'), 400)

    def test_at_most_20_refunds(self, client: httpx.Client) -> None:
        """The 21st partial refund is refused."""
        payment = paid(client, amount="1.00")
        for _ in range(20):
            assert refund(client, payment, b'{"amount": 0.01}').status_code == 201
        mp_error(refund(client, payment, b'{"amount": 0.01}'), 400)

    def test_repeated_key_refunds_once(self, client: httpx.Client) -> None:
        """Same idempotency key: the first refund again, nothing more refunded."""
        payment = paid(client, amount="10.00")
        first = refund(client, payment, b'{"amount": 1}', key="refund-1")
        again = refund(client, payment, b'{"amount": 1}', key="refund-1")
        assert again.content == first.content
        assert get(client, payment)["transaction_amount_refunded"] == 1

    def test_refund_requires_idempotency_key(self, client: httpx.Client) -> None:
        """POST …/refunds without X-Idempotency-Key is a 400."""
        payment = paid(client)
        mp_error(client.post(f"/v1/payments/{payment['id']}/refunds"), 400)

    def test_list_and_get(self, client: httpx.Client) -> None:
        """GET …/refunds lists them; GET …/refunds/{id} reads one."""
        payment = paid(client, amount="10.00")
        one = refund(client, payment, b'{"amount": 1}').json()
        two = refund(client, payment, b'{"amount": 2}').json()
        listed = client.get(f"/v1/payments/{payment['id']}/refunds").json()
        assert [r["id"] for r in listed] == [one["id"], two["id"]]
        got = client.get(f"/v1/payments/{payment['id']}/refunds/{two['id']}")
        assert got.json() == two

    def test_unknown_refund_is_404(self, client: httpx.Client) -> None:
        """A refund id the payment does not have is not found."""
        payment = paid(client)
        mp_error(client.get(f"/v1/payments/{payment['id']}/refunds/1"), 404)


# --------------------------------------------------------------------------------------------
# Pay-outs


class TestPayouts:
    def test_create_answers_pending_intent(self, client: httpx.Client) -> None:
        """201 with a uuid id, pending status and the transaction as sent."""
        manual_settlement(client)
        response = create_payout(client, amount="25.50")
        assert response.status_code == 201
        body = parsed(response)
        assert len(body["id"]) == 36
        assert (body["status"], body["status_detail"]) == ("pending", "pending")
        assert body["external_reference"] == "send-1"
        assert body["end_to_end_id"] is None
        assert body["transaction"]["total_amount"] == Decimal("25.50")
        destination = body["transaction"]["to"]["accounts"][0]
        assert destination["chave"] == {"type": "EMAIL", "value": "fulano@example.com"}

    def test_get_and_search(self, client: httpx.Client) -> None:
        """The intent is found by id and by external_reference."""
        manual_settlement(client)
        intent = create_payout(client, reference="send-42").json()
        create_payout(client, reference="send-43")
        assert client.get(f"/v1/transaction-intents/{intent['id']}").json() == intent
        found = client.get(
            "/v1/transaction-intents/search", params={"external_reference": "send-42"}
        ).json()
        assert found["paging"]["total"] == 1
        assert [r["id"] for r in found["results"]] == [intent["id"]]

    def test_search_for_unknown_reference_is_empty(self, client: httpx.Client) -> None:
        """A pay-out that never arrived is an empty result, not an error."""
        found = client.get(
            "/v1/transaction-intents/search", params={"external_reference": "never-sent"}
        )
        assert found.status_code == 200
        assert found.json()["results"] == []

    def test_unknown_intent_is_404(self, client: httpx.Client) -> None:
        """GET of an unknown intent id is MP's 404."""
        mp_error(client.get("/v1/transaction-intents/00000000-0000-0000-0000-000000000000"), 404)

    def test_settle(self, client: httpx.Client) -> None:
        """The settle hook approves it with an endToEndId from MP's ISPB."""
        manual_settlement(client)
        intent = create_payout(client).json()
        response = client.post(f"/_sandbox/sends/{intent['id']}/settle")
        assert response.status_code == 200
        after = client.get(f"/v1/transaction-intents/{intent['id']}").json()
        assert after["status"] == "approved"
        assert after["end_to_end_id"].startswith("E10573521")
        assert is_valid_end_to_end_id(after["end_to_end_id"])

    def test_reject(self, client: httpx.Client) -> None:
        """The reject hook fails it with the given reason as status_detail."""
        manual_settlement(client)
        intent = create_payout(client).json()
        client.post(f"/_sandbox/sends/{intent['id']}/reject", json={"reason": "invalid_account"})
        after = client.get(f"/v1/transaction-intents/{intent['id']}").json()
        assert (after["status"], after["status_detail"]) == ("rejected", "invalid_account")
        assert after["end_to_end_id"] is None

    def test_final_intent_cannot_be_settled_again(self, client: httpx.Client) -> None:
        """Settling or rejecting a final intent is a 409."""
        manual_settlement(client)
        intent = create_payout(client).json()
        client.post(f"/_sandbox/sends/{intent['id']}/reject")
        assert client.post(f"/_sandbox/sends/{intent['id']}/settle").status_code == 409

    def test_settling_unknown_intent_is_404(self, client: httpx.Client) -> None:
        """The hooks know only existing intents."""
        assert client.post("/_sandbox/sends/nope/settle").status_code == 404

    def test_auto_settle(self, client: httpx.Client) -> None:
        """With auto settlement the intent approves after settle_delay × time_scale."""
        client.patch("/_sandbox/config", json={"time_scale": 0.001})
        intent = create_payout(client).json()

        def settled() -> bool:
            read = client.get(f"/v1/transaction-intents/{intent['id']}").json()
            return bool(read["status"] == "approved")

        eventually(settled)

    def test_disabled_payouts_are_403(self, client: httpx.Client) -> None:
        """An account without Money Out gets MP's 403 and nothing is created."""
        client.patch("/_sandbox/config", json={"payouts_enabled": False})
        response = create_payout(client)
        assert mp_error(response, 403)["error"] == "forbidden"
        assert client.get("/_sandbox").json()["resources"]["payouts"] == 0

    def test_invalid_key_is_400(self, client: httpx.Client) -> None:
        """A CPF key with wrong check digits is refused."""
        mp_error(create_payout(client, key_type="CPF", key="12345678900"), 400)

    def test_key_of_another_type_is_400(self, client: httpx.Client) -> None:
        """The key must be valid as the type it is sent as."""
        mp_error(create_payout(client, key_type="PHONE", key="fulano@example.com"), 400)

    def test_totals_must_match(self, client: httpx.Client) -> None:
        """total_amount must equal the accounts' amounts."""
        mp_error(create_payout(client, amount="10.00", total="10.01"), 400)

    def test_sub_centavo_amount_is_400(self, client: httpx.Client) -> None:
        """An amount with more than two decimals is refused."""
        mp_error(create_payout(client, amount="10.005"), 400)

    def test_repeated_key_sends_once(self, client: httpx.Client) -> None:
        """Same idempotency key: the first intent again, one pay-out."""
        manual_settlement(client)
        first = create_payout(client, idempotency_key="send-1-key")
        again = create_payout(client, idempotency_key="send-1-key")
        assert again.content == first.content
        assert client.get("/_sandbox").json()["resources"]["payouts"] == 1

    def test_requires_idempotency_key(self, client: httpx.Client) -> None:
        """POST …/process without X-Idempotency-Key is a 400."""
        mp_error(client.post("/v1/transaction-intents/process", content=b"{}"), 400)


# --------------------------------------------------------------------------------------------
# Webhooks


def validate_signature(request: Any, secret: str = SECRET) -> None:
    """Check a received webhook with the official SDK's validator (raises if invalid)."""
    data_id = httpx.QueryParams(request.query).get("data.id")
    WebhookSignatureValidator.validate(
        request.headers.get("x-signature"),
        request.headers.get("x-request-id"),
        data_id,
        secret,
        tolerance_seconds=300,
    )


class TestWebhooks:
    def test_created_payment_is_notified(self, client: httpx.Client, sink: WebhookSink) -> None:
        """payment.created goes to the URL with data.id and type in the query."""
        payment = created(client)
        (request,) = sink.wait_for(1)
        query = httpx.QueryParams(request.query)
        assert request.method == "POST"
        assert request.path == "/mp/webhook"
        assert query["source_news"] == "webhooks"
        assert query["data.id"] == str(payment["id"])
        assert query["type"] == "payment"
        body = request.json()
        assert body["action"] == "payment.created"
        assert body["type"] == "payment"
        assert body["data"] == {"id": str(payment["id"])}
        assert body["live_mode"] is False
        assert body["user_id"] == 1234567
        assert body["api_version"] == "v1"
        assert isinstance(body["id"], int)

    def test_signature_passes_the_official_validator(
        self, client: httpx.Client, sink: WebhookSink
    ) -> None:
        """x-signature verifies with mercadopago.webhook.WebhookSignatureValidator."""
        created(client)
        (request,) = sink.wait_for(1)
        validate_signature(request)

    def test_signature_fails_with_another_secret(
        self, client: httpx.Client, sink: WebhookSink
    ) -> None:
        """The signature really depends on the secret."""
        created(client)
        (request,) = sink.wait_for(1)
        with pytest.raises(InvalidWebhookSignatureError):
            validate_signature(request, secret="another-secret")

    def test_approval_is_notified_as_update(self, client: httpx.Client, sink: WebhookSink) -> None:
        """Paying sends payment.updated for the same payment id."""
        payment = paid(client)
        sink.wait_for(2)
        updates = [r.json() for r in sink.received if r.json()["action"] == "payment.updated"]
        assert [u["data"]["id"] for u in updates] == [str(payment["id"])]

    def test_refund_expiry_and_cancel_are_notified(
        self, client: httpx.Client, sink: WebhookSink
    ) -> None:
        """Refunded, expired and cancelled payments each send payment.updated."""
        refunded, expired, cancelled = paid(client), created(client), created(client)
        refund(client, refunded)
        client.put(f"/v1/payments/{cancelled['id']}", json={"status": "cancelled"})
        client.post("/_sandbox/clock/advance", json={"seconds": 24 * 3600 + 1})
        sink.wait_for(3 + 4)  # 3 created, 1 approved, refund, cancel, expiry
        updated = [
            r.json()["data"]["id"] for r in sink.received if r.json()["action"] == "payment.updated"
        ]
        assert sorted(updated) == sorted(
            [str(refunded["id"])] * 2 + [str(expired["id"]), str(cancelled["id"])]
        )

    def test_payment_notification_url_wins(
        self, client: httpx.Client, sink: WebhookSink, sink_server: tuple[WebhookSink, ServerThread]
    ) -> None:
        """A payment's own notification_url takes precedence over the configured one."""
        url = f"{sink_server[1].base_url}/own"
        created(client, extra=f', "notification_url": "{url}"')
        (request,) = sink.wait_for(1)
        assert request.path == "/own"
        assert httpx.QueryParams(request.query)["type"] == "payment"

    def test_retried_until_accepted(self, client: httpx.Client, sink: WebhookSink) -> None:
        """A 500 answer is retried on MP's schedule; each attempt is signed anew."""
        client.patch("/_sandbox/config", json={"time_scale": 0.0002}).raise_for_status()
        sink.status = 500
        created(client)
        sink.wait_for(2)
        sink.status = 200

        def delivered() -> bool:
            deliveries = client.get("/_sandbox/webhooks").json()
            return bool(deliveries and deliveries[0]["delivered"])

        eventually(delivered)
        attempts = sink.received
        assert len(attempts) >= 3
        assert len({a.body for a in attempts}) == 1  # same event, same notification id
        assert len({a.headers["x-request-id"] for a in attempts}) == len(attempts)
        for attempt in attempts:
            validate_signature(attempt)

    def test_payout_final_state_is_notified(
        self, client: httpx.Client, sink: WebhookSink, sink_server: tuple[WebhookSink, ServerThread]
    ) -> None:
        """A settled intent notifies type=transaction_intent with the intent id."""
        manual_settlement(client)
        url = f"{sink_server[1].base_url}/payouts"
        intent = create_payout(client, url=url).json()
        client.post(f"/_sandbox/sends/{intent['id']}/settle")
        (request,) = sink.wait_for(1)
        query = httpx.QueryParams(request.query)
        assert (request.path, query["type"], query["data.id"]) == (
            "/payouts",
            "transaction_intent",
            intent["id"],
        )
        assert request.json()["action"] == "transaction_intent.updated"
        validate_signature(request)

    def test_auto_settled_payout_is_notified(self, client: httpx.Client, sink: WebhookSink) -> None:
        """An intent settled by the clock notifies the configured URL too."""
        client.patch("/_sandbox/config", json={"time_scale": 0.001}).raise_for_status()
        intent = create_payout(client).json()
        (request,) = sink.wait_for(1)
        assert request.json()["data"] == {"id": intent["id"]}
        validate_signature(request)

    def test_no_url_no_webhook(self, client: httpx.Client) -> None:
        """Without a notification URL nothing is sent."""
        paid(client)
        assert client.get("/_sandbox/webhooks").json() == []


class TestSandboxSummary:
    def test_counts_resources(self, client: httpx.Client) -> None:
        """GET /_sandbox counts payments, refunds and pay-outs."""
        manual_settlement(client)
        refund(client, paid(client))
        created(client)
        create_payout(client)
        resources = client.get("/_sandbox").json()["resources"]
        assert resources["payments"] == 2
        assert resources["payments_pending"] == 1
        assert resources["refunds"] == 1
        assert resources["payouts"] == 1

    def test_reset_forgets_everything(self, client: httpx.Client) -> None:
        """After reset, a known payment is gone."""
        payment = created(client)
        client.post("/_sandbox/reset")
        mp_error(client.get(f"/v1/payments/{payment['id']}"), 404)


class TestRecords:
    def test_records_list_every_money_movement(self, client: httpx.Client) -> None:
        """`GET /_sandbox/records`: payments (paid or not) with their external_reference,
        their refunds under it, and payouts."""
        payment = paid(client)
        unpaid = created(client)
        assert refund(client, payment, b'{"amount": 3.5}').status_code == 201
        assert create_payout(client, reference="send-9", amount="25.50").status_code == 201
        records = client.get("/_sandbox/records").json()
        by_id = {(r["kind"], r["id"]): r for r in records}
        charge = by_id[("charge", str(payment["id"]))]
        assert (charge["reference"], charge["amount"]) == ("order-123", 10_10)
        assert charge["moved"] is True
        assert by_id[("charge", str(unpaid["id"]))]["moved"] is False
        [refunded] = [r for r in records if r["kind"] == "refund"]
        assert (refunded["parent"], refunded["amount"]) == ("order-123", 3_50)
        [payout] = [r for r in records if r["kind"] == "send"]
        assert (payout["reference"], payout["amount"], payout["done"]) == ("send-9", 25_50, False)
        assert len(records) == 4
