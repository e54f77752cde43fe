"""The contract between the payments engine and a Pix gateway, in PixWave's own types.

A connector is a stateless translator: it turns these requests into one provider's HTTP calls
and the provider's answers back into these results. It never touches the database. Amounts are
int centavos here; the provider's string or float form exists only inside the connector.

Ids are deterministic: every request carries ``reference`` — the id of our transaction — and
the connector derives the provider's idempotency key, txid or ``idEnvio`` from it, so a retry
after a timeout can only ever find or repeat the same operation, never create a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol, runtime_checkable


class Capability(StrEnum):
    """What a connector can do. The router only sends an operation to a gateway that has it."""

    CHARGE = "charge"  # create, get and cancel cash-in charges (QR codes)
    SEND = "send"  # cash-out: send a Pix to a key, and query it
    REFUND = "refund"  # return all or part of a received Pix, and query it
    WEBHOOK = "webhook"  # authenticate and parse the provider's notifications


class ChargeStatus(StrEnum):
    """A cash-in charge. Unknown provider statuses map to ACTIVE: never guess success."""

    ACTIVE = "active"  # waiting for the payer
    PAID = "paid"  # money received (later refunds do not change this)
    CANCELLED = "cancelled"  # removed by us or the provider before payment
    EXPIRED = "expired"  # past its expiry without payment


class SendStatus(StrEnum):
    """A cash-out. PROCESSING until the provider reports a final state."""

    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookKind(StrEnum):
    """What an inbound notification is about; the engine re-reads the resource it names."""

    CHARGE = "charge"  # a charge changed (paid, cancelled …); resource_id is the charge id
    SEND = "send"  # a cash-out changed; resource_id is the provider's send id (Efí idEnvio,
    # which derives from our reference; MP's transaction intent id)
    REFUND = "refund"  # a refund reached a final state; resource_id is the refund id


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRequest:
    reference: str  # our transaction id; the txid / idempotency key derive from it
    amount: int  # centavos
    expires_in: int  # seconds from creation
    description: str | None = None
    payer_email: str | None = None
    payer_name: str | None = None
    payer_document: str | None = None  # CPF or CNPJ, digits only
    notification_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    gateway: str
    charge_id: str  # MP payment id, Efí txid: what get/cancel take
    reference: str | None
    status: ChargeStatus
    provider_status: str  # the provider's own words, for support and logs
    amount: int
    brcode: str  # "Pix copia e cola"
    qr_png_base64: str | None
    created_at: datetime | None
    expires_at: datetime | None
    txid: str | None = None
    paid_amount: int | None = None
    paid_at: datetime | None = None
    end_to_end_id: str | None = None  # the received Pix's id, needed to refund it at Efí
    refunded_amount: int = 0
    latency_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    reference: str  # our transaction id; the idEnvio / idempotency key derive from it
    amount: int
    pix_key: str
    description: str | None = None
    recipient_document: str | None = None  # when given, the provider checks the key's owner
    recipient_name: str | None = None
    notification_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    gateway: str
    send_id: str  # the provider's id (Efí idEnvio, MP transaction intent id)
    reference: str | None
    status: SendStatus
    provider_status: str
    amount: int
    end_to_end_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    latency_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundRequest:
    reference: str  # our refund transaction id; the devolução id / idempotency key derive from it
    charge_id: str  # the paid charge (MP payment id)
    end_to_end_id: str | None  # the received Pix (Efí refunds by endToEndId)
    amount: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refund:
    gateway: str
    refund_id: str
    reference: str | None
    status: RefundStatus
    provider_status: str
    amount: int
    return_id: str | None = None  # rtrId
    failure_message: str | None = None
    latency_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundWebhook:
    """An HTTP request that claims to come from a gateway, as the API received it."""

    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    client_ip: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """One authenticated notification. ``event_id`` is stable across redeliveries."""

    gateway: str
    event_id: str
    kind: WebhookKind
    resource_id: str
    #: What the notification itself says, when it says anything (Efí does, MP does not).
    #: Advisory only — the engine confirms by reading the resource from the gateway — unless
    #: it holds ``TRUSTED_PAYMENT``.
    data: Mapping[str, str] = field(default_factory=dict)


#: In a charge event's ``data``: the notification came over a scheme the operator chose to
#: trust with the payment itself (Efí's verified mTLS, ``EFI_WEBHOOK_TRUST_MTLS``), so its
#: ``amount`` and ``end_to_end_id`` may be credited without reading the charge back — after
#: they are checked against the charge. Set by the connector, never read from a body.
TRUSTED_PAYMENT: Final = "trusted"


@runtime_checkable
class PixGateway(Protocol):
    """One payment provider. Every method raises only :class:`~pixwave.gateways.errors.GatewayError`
    subclasses (and ``verify_webhook`` only :class:`~pixwave.gateways.errors.WebhookRejected`)."""

    name: str
    capabilities: frozenset[Capability]

    async def create_charge(self, request: ChargeRequest) -> Charge:
        """Create (or, for a repeated reference, find) the charge."""
        ...

    async def get_charge(self, charge_id: str) -> Charge: ...

    async def cancel_charge(self, charge_id: str) -> Charge:
        """Cancel an unpaid charge; a paid one raises GatewayRejected."""
        ...

    async def send_pix(self, request: SendRequest) -> Send:
        """Send a Pix. A repeated reference never sends twice: it returns the first send."""
        ...

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        """Find a send by our reference (and the provider's id when we know it).

        Raises GatewayNotFound when the provider never received it — the one answer that
        lets the engine try again elsewhere after an ambiguous send.
        """
        ...

    async def refund(self, request: RefundRequest) -> Refund: ...

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund: ...

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        """Authenticate and parse; raises WebhookRejected and processes nothing on failure."""
        ...

    async def aclose(self) -> None: ...
