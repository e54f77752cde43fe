"""Mercado Pago as a :class:`~pixwave.gateways.base.PixGateway`: Pix over the Payments API.

Cash-in is a payment with ``payment_method_id: "pix"``; the BR Code is in
``point_of_interaction.transaction_data``. Refunds are payment refunds. Cash-out uses MP's
restricted "Money Out" product (transaction intents), so SEND is a capability only when the
account has it enabled. Every POST carries an ``X-Idempotency-Key`` derived from our reference,
so a retry after a timeout replays the first answer instead of acting twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel

from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    ChargeStatus,
    InboundWebhook,
    Refund,
    RefundRequest,
    RefundStatus,
    Send,
    SendRequest,
    SendStatus,
    WebhookEvent,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
    UnsupportedOperation,
)
from pixwave.gateways.http import Timeouts
from pixwave.gateways.mercadopago import webhooks
from pixwave.gateways.mercadopago.client import DEFAULT_BASE_URL, build_http
from pixwave.gateways.mercadopago.mapping import (
    GATEWAY,
    charge_status,
    refund_status,
    send_status,
)
from pixwave.gateways.mercadopago.schemas import (
    AccountOwner,
    DestinationAccount,
    Identification,
    PayerCreate,
    Payment,
    PaymentCancel,
    PaymentCreate,
    PixKeyRef,
    RefundCreate,
    RefundResource,
    TransactionIntent,
    TransactionIntentCreate,
    TransactionIntentSearch,
    amount_number,
    decode_json,
    encode_json,
    to_centavos,
)
from pixwave.pix import PixFormatError, PixKeyType, parse_pix_key, validate_document

_Model = TypeVar("_Model", bound=BaseModel)

#: MP accepts a Pix expiry between 30 minutes and 30 days after creation. The margin keeps a
#: clamped value inside the window despite clock skew and the truncation to whole seconds.
MIN_EXPIRY: Final = timedelta(minutes=30)
MAX_EXPIRY: Final = timedelta(days=30)
EXPIRY_MARGIN: Final = timedelta(minutes=1)

#: MP's examples write expiries in Brasília time.
BRASILIA: Final = timezone(timedelta(hours=-3), "BRT")

MAX_IDEMPOTENCY_KEY: Final = 64  # the official SDK refuses longer keys

_KEY_TYPES: Final[dict[PixKeyType, Literal["CPF", "CNPJ", "EMAIL", "PHONE", "EVP"]]] = {
    PixKeyType.CPF: "CPF",
    PixKeyType.CNPJ: "CNPJ",
    PixKeyType.EMAIL: "EMAIL",
    PixKeyType.PHONE: "PHONE",
    PixKeyType.EVP: "EVP",
}

_JSON_HEADERS: Final = {"Content-Type": "application/json"}


def idempotency_key(kind: str, reference: str) -> str:
    """``pixwave-{kind}-{reference}``; a reference too long for MP's 64 characters is hashed,
    which keeps the key deterministic."""
    prefix = f"pixwave-{kind}-"
    key = prefix + reference
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    digest = hashlib.sha256(reference.encode()).hexdigest()
    return prefix + digest[: MAX_IDEMPOTENCY_KEY - len(prefix)]


def expiry_text(now: datetime, expires_in: int) -> str:
    """``now + expires_in`` clamped into MP's window, as ``yyyy-MM-ddTHH:mm:ss.000-03:00``."""
    delta = timedelta(seconds=expires_in)
    delta = max(MIN_EXPIRY + EXPIRY_MARGIN, min(delta, MAX_EXPIRY - EXPIRY_MARGIN))
    local = (now + delta).astimezone(BRASILIA)
    return local.strftime("%Y-%m-%dT%H:%M:%S.000-03:00")


def with_source_news(url: str) -> str:
    """Ask MP for Webhooks only (not legacy IPN) by adding ``source_news=webhooks``."""
    if "source_news=" in urlsplit(url).query:
        return url
    separator = "&" if urlsplit(url).query else "?"
    if url.endswith(("?", "&")):
        separator = ""
    return f"{url}{separator}source_news=webhooks"


def _segment(value: str) -> str:
    """An id as one path segment: ``/`` and friends cannot reach another endpoint."""
    return quote(value, safe="")


class MercadoPagoConnector:
    """Mercado Pago's Payments API (Pix cash-in, refunds) and Money Out (Pix cash-out)."""

    name: str = GATEWAY

    def __init__(
        self,
        *,
        access_token: str,
        webhook_secret: str | None,
        base_url: str = DEFAULT_BASE_URL,
        timeouts: Timeouts = Timeouts(),  # frozen dataclass: safe to share as a default
        payouts_enabled: bool = False,
        payer_email: str = "pagador@pixwave.app",
        webhook_tolerance_seconds: int = 300,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        capabilities = {Capability.CHARGE, Capability.REFUND, Capability.WEBHOOK}
        if payouts_enabled:  # MP enables Money Out per application
            capabilities.add(Capability.SEND)
        self.capabilities: frozenset[Capability] = frozenset(capabilities)
        self._webhook_secret = webhook_secret
        self._payer_email = payer_email
        self._webhook_tolerance = webhook_tolerance_seconds
        self._clock = clock
        self._http = build_http(
            access_token=access_token, base_url=base_url, timeouts=timeouts, transport=transport
        )

    # ----------------------------------------------------------------------------------------
    # Cash-in

    async def create_charge(self, request: ChargeRequest) -> Charge:
        """Create the Pix payment; a repeated reference replays the first one (same key)."""
        operation = "create_charge"
        self._require(Capability.CHARGE, operation)
        body: PaymentCreate = {
            "transaction_amount": amount_number(request.amount),
            "payment_method_id": "pix",
            "external_reference": request.reference,
            "date_of_expiration": expiry_text(self._clock(), request.expires_in),
            "payer": self._payer(request, operation),
        }
        if request.description:
            body["description"] = request.description
        if request.notification_url:
            body["notification_url"] = with_source_news(request.notification_url)
        data, latency = await self._call(
            operation,
            "POST",
            "/v1/payments",
            mutates=True,
            body=body,
            headers={"X-Idempotency-Key": idempotency_key("charge", request.reference)},
        )
        with self._reading(operation, latency, mutates=True):
            charge = self._charge(self._model(Payment, data), latency)
            if not charge.brcode:
                raise ValueError("the payment has no point_of_interaction.transaction_data.qr_code")
        return charge

    async def get_charge(self, charge_id: str) -> Charge:
        operation = "get_charge"
        self._require(Capability.CHARGE, operation)
        data, latency = await self._call(
            operation, "GET", f"/v1/payments/{_segment(charge_id)}", mutates=False
        )
        with self._reading(operation, latency, mutates=False):
            return self._charge(self._model(Payment, data), latency)

    async def cancel_charge(self, charge_id: str) -> Charge:
        """``PUT {"status": "cancelled"}``; MP answers 400 unless the payment is still pending,
        which the error table turns into ``charge_not_cancellable``."""
        operation = "cancel_charge"
        self._require(Capability.CHARGE, operation)
        body: PaymentCancel = {"status": "cancelled"}
        data, latency = await self._call(
            operation, "PUT", f"/v1/payments/{_segment(charge_id)}", mutates=True, body=body
        )
        with self._reading(operation, latency, mutates=True):
            return self._charge(self._model(Payment, data), latency)

    # ----------------------------------------------------------------------------------------
    # Refunds

    async def refund(self, request: RefundRequest) -> Refund:
        """Refund ``amount`` of a paid charge; the amount is always explicit, because an empty
        body means "refund everything" at MP."""
        operation = "refund"
        self._require(Capability.REFUND, operation)
        body: RefundCreate = {"amount": amount_number(request.amount)}
        data, latency = await self._call(
            operation,
            "POST",
            f"/v1/payments/{_segment(request.charge_id)}/refunds",
            mutates=True,
            moves_money=True,
            body=body,
            headers={"X-Idempotency-Key": idempotency_key("refund", request.reference)},
        )
        with self._reading(operation, latency, mutates=True):
            return self._refund(self._model(RefundResource, data), request.reference, latency)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        """Find a refund: by id when we have it, else by replaying the refund POST.

        MP refunds carry no reference of ours, so without ``refund_id`` the POST is repeated
        with the same ``X-Idempotency-Key``: MP replays the original response, which finds the
        refund without creating a second one. The lookup sends ``{"amount": 0}`` rather than
        the original amount (which this call does not know), so if the first POST never
        reached MP nothing can be refunded: MP refuses the zero amount, and that refusal is
        reported as ``GatewayNotFound``. (Whether MP also checks that a replayed key comes with
        the same body is UNCONFIRMED; the simulator replays by key alone.)
        """
        operation = "get_refund"
        self._require(Capability.REFUND, operation)
        if refund_id is not None:
            path = f"/v1/payments/{_segment(charge_id)}/refunds/{_segment(refund_id)}"
            data, latency = await self._call(operation, "GET", path, mutates=False)
        else:
            body: RefundCreate = {"amount": amount_number(0)}
            data, latency = await self._call(
                operation,
                "POST",
                f"/v1/payments/{_segment(charge_id)}/refunds",
                mutates=False,  # a replay, or a refused zero refund: it cannot move money
                body=body,
                headers={"X-Idempotency-Key": idempotency_key("refund", reference)},
            )
        with self._reading(operation, latency, mutates=False):
            return self._refund(self._model(RefundResource, data), reference, latency)

    # ----------------------------------------------------------------------------------------
    # Cash-out

    async def send_pix(self, request: SendRequest) -> Send:
        """Send a Pix through MP's Money Out (``POST /v1/transaction-intents/process``).

        MP can require each request body to be signed with the account's Ed25519 key
        (``x-signature``, enforced in production). That signing is not implemented: the request
        says ``x-enforce-signature: false``, so accounts that enforce it answer 4xx.
        """
        operation = "send_pix"
        self._require(Capability.SEND, operation)
        try:
            key = parse_pix_key(request.pix_key)
        except PixFormatError as exc:
            raise self._rejected(operation, "invalid_pix_key", exc.message) from exc
        amount = amount_number(request.amount)
        chave: PixKeyRef = {"type": _KEY_TYPES[key.type], "value": key.value}
        destination: DestinationAccount = {"type": "current", "amount": amount, "chave": chave}
        if request.recipient_document:
            owner: AccountOwner = {
                "identification": self._identification(request.recipient_document, operation)
            }
            if request.recipient_name:
                owner["name"] = request.recipient_name
            destination["owner"] = owner
        body: TransactionIntentCreate = {
            "external_reference": request.reference,
            "point_of_interaction": {"type": "PSP_TRANSFER"},
            "transaction": {
                "from": {"accounts": [{"amount": amount}]},
                "to": {"accounts": [destination]},
                "total_amount": amount,
            },
        }
        if request.notification_url:
            body["seller_configuration"] = {
                "notification_info": {"notification_url": request.notification_url}
            }
        data, latency = await self._call(
            operation,
            "POST",
            "/v1/transaction-intents/process",
            mutates=True,
            moves_money=True,
            body=body,
            headers={
                "X-Idempotency-Key": idempotency_key("send", request.reference),
                "x-enforce-signature": "false",
            },
        )
        with self._reading(operation, latency, mutates=True):
            intent = self._model(TransactionIntent, data)
            return self._send_result(
                intent, latency, default_amount=request.amount, default_reference=request.reference
            )

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        """By intent id when known, else by searching our ``external_reference``."""
        operation = "get_send"
        self._require(Capability.SEND, operation)
        if send_id is not None:
            path = f"/v1/transaction-intents/{_segment(send_id)}"
            data, latency = await self._call(operation, "GET", path, mutates=False)
            with self._reading(operation, latency, mutates=False):
                return self._send_result(self._model(TransactionIntent, data), latency)
        data, latency = await self._call(
            operation,
            "GET",
            "/v1/transaction-intents/search",
            mutates=False,
            params={"external_reference": reference},
        )
        with self._reading(operation, latency, mutates=False):
            search = self._model(TransactionIntentSearch, data)
            found = [i for i in search.results if i.external_reference == reference]
            if found:
                return self._send_result(found[0], latency)
        raise GatewayNotFound(
            f"{GATEWAY} {operation}: no transaction intent with external_reference {reference}",
            gateway=GATEWAY,
            operation=operation,
            code="not_found",
            latency_ms=latency,
        )

    # ----------------------------------------------------------------------------------------
    # Webhooks

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        """Check ``x-signature`` and parse. The events carry no status: MP's notifications do
        not, so the engine re-reads the payment (or transaction intent) they name."""
        return webhooks.verify_webhook(
            request,
            secret=self._webhook_secret,
            tolerance_seconds=self._webhook_tolerance,
            clock=self._clock,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----------------------------------------------------------------------------------------
    # Helpers

    def _require(self, capability: Capability, operation: str) -> None:
        if capability not in self.capabilities:
            raise UnsupportedOperation(
                f"{GATEWAY} {operation}: this account does not have {capability.value}",
                gateway=GATEWAY,
                operation=operation,
                code="unsupported_operation",
            )

    def _rejected(self, operation: str, code: str, message: str) -> GatewayRejected:
        """A request refused before sending: MP would refuse it too."""
        return GatewayRejected(
            f"{GATEWAY} {operation}: {message}", gateway=GATEWAY, operation=operation, code=code
        )

    def _identification(self, document: str, operation: str) -> Identification:
        try:
            kind, number = validate_document(document)
        except PixFormatError as exc:
            raise self._rejected(operation, "invalid_document", exc.message) from exc
        return {"type": "CPF" if kind == "cpf" else "CNPJ", "number": number}

    def _payer(self, request: ChargeRequest, operation: str) -> PayerCreate:
        payer: PayerCreate = {"email": request.payer_email or self._payer_email}
        if request.payer_name:
            payer["first_name"] = request.payer_name
        if request.payer_document:
            payer["identification"] = self._identification(request.payer_document, operation)
        return payer

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        mutates: bool,
        moves_money: bool = False,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[Any, int]:
        """One call; the body is encoded exactly and the answer parsed without floats."""
        content = None
        all_headers = dict(headers or {})
        if body is not None:
            content = encode_json(body)
            all_headers.update(_JSON_HEADERS)
        response, latency = await self._http.request(
            operation,
            method,
            path,
            mutates=mutates,
            moves_money=moves_money,
            content=content,
            params=params,
            headers=all_headers,
        )
        with self._reading(operation, latency, mutates=mutates):
            return decode_json(response.content), latency

    @contextmanager
    def _reading(self, operation: str, latency: int, *, mutates: bool) -> Iterator[None]:
        """A 2xx we cannot read: after a call that changed something the outcome is unknown."""
        try:
            yield
        except GatewayError:
            raise
        except ValueError as exc:  # bad JSON, a failed pydantic validation, a bad amount
            error_class = GatewayAmbiguous if mutates else GatewayUnavailable
            raise error_class(
                f"{GATEWAY} {operation}: unreadable response: {exc}",
                gateway=GATEWAY,
                operation=operation,
                code="invalid_response",
                latency_ms=latency,
            ) from exc

    @staticmethod
    def _model(model: type[_Model], data: Any) -> _Model:
        return model.model_validate(data)

    @staticmethod
    def _charge(payment: Payment, latency: int) -> Charge:
        status = charge_status(payment.status, payment.status_detail)
        poi = payment.point_of_interaction
        qr = poi.transaction_data if poi is not None else None
        amount = to_centavos(payment.transaction_amount)
        paid = status is ChargeStatus.PAID
        return Charge(
            gateway=GATEWAY,
            charge_id=str(payment.id),
            reference=payment.external_reference,
            status=status,
            provider_status=payment.status,
            amount=amount,
            brcode=(qr.qr_code if qr is not None else None) or "",
            qr_png_base64=qr.qr_code_base64 if qr is not None else None,
            created_at=payment.date_created,
            expires_at=payment.date_of_expiration,
            txid=None,  # MP keeps the txid inside its BR Code and does not expose it
            paid_amount=amount if paid else None,
            paid_at=payment.date_approved if paid else None,
            end_to_end_id=None,  # not exposed on the payment (UNCONFIRMED); MP refunds by id
            refunded_amount=to_centavos(payment.transaction_amount_refunded),
            latency_ms=latency,
        )

    @staticmethod
    def _refund(resource: RefundResource, reference: str, latency: int) -> Refund:
        status = refund_status(resource.status)
        return Refund(
            gateway=GATEWAY,
            refund_id=str(resource.id),
            reference=reference,  # MP refunds carry no reference of ours
            status=status,
            provider_status=resource.status,
            amount=to_centavos(resource.amount),
            return_id=None,  # MP does not expose the refund's rtrId
            failure_message=(
                f"Mercado Pago refund {resource.status}" if status is RefundStatus.FAILED else None
            ),
            latency_ms=latency,
        )

    @staticmethod
    def _send_result(
        intent: TransactionIntent,
        latency: int,
        *,
        default_amount: int | None = None,
        default_reference: str | None = None,
    ) -> Send:
        status = send_status(intent.status)
        failed = status is SendStatus.FAILED
        return Send(
            gateway=GATEWAY,
            send_id=str(intent.id),
            reference=intent.external_reference or default_reference,
            status=status,
            provider_status=intent.status,
            amount=_intent_amount(intent, default_amount),
            end_to_end_id=intent.end_to_end_id,
            failure_code=(intent.status_detail or intent.status) if failed else None,
            failure_message=(
                f"Mercado Pago {intent.status} the transfer: {intent.status_detail or 'no detail'}"
                if failed
                else None
            ),
            latency_ms=latency,
        )


def _intent_amount(intent: TransactionIntent, default: int | None) -> int:
    """``transaction.total_amount``, else the sum sent to the destination accounts."""
    transaction = intent.transaction
    if transaction is not None:
        if transaction.total_amount is not None:
            return to_centavos(transaction.total_amount)
        if transaction.to is not None:
            amounts = [a.amount for a in transaction.to.accounts if a.amount is not None]
            if amounts:
                return sum(to_centavos(a) for a in amounts)
    if default is not None:
        return default
    raise ValueError("the transaction intent has no amount")
