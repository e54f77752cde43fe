"""The simulator's memory: payments, their refunds, pay-outs, and answered idempotency keys.

Resources are plain dataclasses holding int centavos and aware datetimes; ``to_wire`` renders
each one as MP's JSON (amounts as exact JSON numbers, dates at -04:00). Everything runs on one
event loop, so a handler that does not ``await`` between reading and writing the store is
atomic: two requests with the same idempotency key cannot both create.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pixwave.sandbox.mercadopago.wire import amount_json, mp_datetime

#: Payment status / status_detail pairs (reference §1.4) the simulator moves through.
PENDING = ("pending", "pending_waiting_transfer")
APPROVED = ("approved", "accredited")
PARTIALLY_REFUNDED = ("approved", "partially_refunded")
REFUNDED = ("refunded", "refunded")
EXPIRED = ("cancelled", "expired")
CANCELLED = ("cancelled", "by_collector")

#: Statuses that ``PUT {"status": "cancelled"}`` accepts.
CANCELLABLE = frozenset({"pending", "in_process"})

#: Pay-out statuses (MP publishes none: UNCONFIRMED, see the package docstring).
PAYOUT_PENDING = "pending"
PAYOUT_APPROVED = "approved"
PAYOUT_REJECTED = "rejected"

MAX_REFUNDS = 20


def _id_sequence(base: int) -> Iterator[int]:
    """Increasing ids that a restarted simulator does not hand out again: the start moves with
    the clock (one id per millisecond since 2024), so ids a client stored in a previous run
    are not reused unless that run created more than a thousand resources a second."""
    millis_since_2024 = int(time.time() * 1000) - 1_704_067_200_000
    return itertools.count(base + max(millis_since_2024, 0))


@dataclass(slots=True, kw_only=True)
class Refund:
    id: int
    payment_id: int
    amount: int
    date_created: datetime
    source: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "payment_id": self.payment_id,
            "amount": amount_json(self.amount),
            "metadata": {},
            "source": self.source,
            "date_created": mp_datetime(self.date_created),
            "expiration_date": None,
            "unique_sequence_number": None,
            "refund_mode": "standard",
            "adjustment_amount": 0,
            "status": "approved",
            "reason": None,
            "labels": [],
            "amount_refunded_to_payer": amount_json(self.amount),
            "partition_details": [],
        }


@dataclass(slots=True, kw_only=True)
class Payment:
    """A Pix payment (a charge) as MP keeps it."""

    id: int
    amount: int
    collector_id: int
    description: str | None
    external_reference: str | None
    notification_url: str | None
    payer: dict[str, Any]
    metadata: dict[str, Any]
    date_created: datetime
    date_of_expiration: datetime
    date_last_updated: datetime
    qr_code: str
    qr_code_base64: str
    ticket_url: str
    status: str = PENDING[0]
    status_detail: str = PENDING[1]
    date_approved: datetime | None = None
    end_to_end_id: str | None = None
    paid_by: dict[str, Any] | None = None
    refunds: list[Refund] = field(default_factory=list)

    @property
    def txid(self) -> str:
        """The reference label (BR Code 62-05) that real MP codes carry."""
        return f"mpqrinter{self.id}"

    @property
    def refunded_amount(self) -> int:
        return sum(refund.amount for refund in self.refunds)

    def set_status(self, pair: tuple[str, str], at: datetime) -> None:
        self.status, self.status_detail = pair
        self.date_last_updated = at

    def to_wire(self) -> dict[str, Any]:
        paid = self.date_approved is not None
        return {
            "id": self.id,
            "date_created": mp_datetime(self.date_created),
            "date_approved": mp_datetime(self.date_approved),
            "date_last_updated": mp_datetime(self.date_last_updated),
            "date_of_expiration": mp_datetime(self.date_of_expiration),
            "money_release_date": mp_datetime(self.date_approved),
            "money_release_status": "released" if paid else None,
            "operation_type": "regular_payment",
            "issuer_id": None,
            "payment_method_id": "pix",
            "payment_type_id": "bank_transfer",
            "payment_method": {"id": "pix", "type": "bank_transfer", "issuer_id": None},
            "status": self.status,
            "status_detail": self.status_detail,
            "currency_id": "BRL",
            "description": self.description,
            "live_mode": False,
            "sponsor_id": None,
            "authorization_code": None,
            "collector_id": self.collector_id,
            "payer": self.payer,
            "metadata": self.metadata,
            "additional_info": {},
            "external_reference": self.external_reference,
            "transaction_amount": amount_json(self.amount),
            "transaction_amount_refunded": amount_json(self.refunded_amount),
            "coupon_amount": 0,
            "net_amount": amount_json(self.amount),
            "taxes_amount": 0,
            "shipping_amount": 0,
            "installments": 1,
            "transaction_details": {
                # No fees in the sandbox: once paid, the seller nets the whole amount.
                "net_received_amount": amount_json(self.amount) if paid else 0,
                "total_paid_amount": amount_json(self.amount),
                "overpaid_amount": 0,
                "external_resource_url": None,
                "installment_amount": 0,
                "financial_institution": None,
                "payment_method_reference_id": None,
                "payable_deferral_period": None,
                "acquirer_reference": None,
            },
            "fee_details": [],
            "charges_details": [],
            "captured": True,
            "binary_mode": False,
            "statement_descriptor": None,
            "notification_url": self.notification_url,
            "processing_mode": "aggregator",
            "point_of_interaction": {
                "type": "PIX",
                "sub_type": None,
                "application_data": {"name": None, "version": None},
                "business_info": {"unit": "online_payments", "sub_unit": "default"},
                "transaction_data": self._transaction_data(),
            },
            "refunds": [refund.to_wire() for refund in self.refunds],
        }

    def _transaction_data(self) -> dict[str, Any]:
        # qr_code / qr_code_base64 / ticket_url are documented (§1.2). The rest appears in MP's
        # typed SDKs; what it holds once paid is UNCONFIRMED: the simulator writes the payer
        # PSP's endToEndId as ``e2e_id`` and as ``transaction_id`` ("PIX" + e2e id), which is
        # what live payloads are reported to carry.
        paid = self.end_to_end_id is not None
        return {
            "qr_code": self.qr_code,
            "qr_code_base64": self.qr_code_base64,
            "ticket_url": self.ticket_url,
            "transaction_id": f"PIX{self.end_to_end_id}" if paid else None,
            "e2e_id": self.end_to_end_id,
            "bank_transfer_id": None,
            "financial_institution": None,
            "bank_info": {
                "payer": self.paid_by or {"id": None, "account_id": None, "long_name": None},
                "collector": {
                    "account_id": None,
                    "long_name": None,
                    "account_holder_name": None,
                    "transfer_account_id": None,
                },
                "is_same_bank_account_owner": None,
                "origin_bank_id": None,
                "origin_wallet_id": None,
            },
        }


@dataclass(slots=True, kw_only=True)
class Payout:
    """A transaction intent (a Pix sent). Its response shape is the simulator's assumption."""

    id: str
    external_reference: str
    amount: int
    key_type: str
    key_value: str
    notification_url: str | None
    request: dict[str, Any]
    """The body as sent (amounts as the exact ``Decimal`` the client wrote)."""
    created: datetime
    last_updated: datetime
    settle_at: datetime
    status: str = PAYOUT_PENDING
    status_detail: str = PAYOUT_PENDING
    end_to_end_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        transaction = self.request.get("transaction")
        return {
            "id": self.id,
            "external_reference": self.external_reference,
            "status": self.status,
            "status_detail": self.status_detail,
            "created_date": mp_datetime(self.created),
            "last_updated_date": mp_datetime(self.last_updated),
            "point_of_interaction": self.request.get("point_of_interaction"),
            "seller_configuration": self.request.get("seller_configuration"),
            "transaction": transaction,
            "end_to_end_id": self.end_to_end_id,
        }


@dataclass(slots=True)
class Store:
    """Every resource, the idempotency record and the time-ordered work queues."""

    payments: dict[int, Payment] = field(default_factory=dict)
    refunds: dict[int, Refund] = field(default_factory=dict)
    payouts: dict[str, Payout] = field(default_factory=dict)
    #: (scope, key) → the body first created for that idempotency key (always a 201).
    answers: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: (date_of_expiration, payment id) of payments that may still expire.
    expiring: list[tuple[datetime, int]] = field(default_factory=list)
    #: (settle_at, intent id) of pay-outs waiting for automatic settlement.
    settling: list[tuple[datetime, str]] = field(default_factory=list)
    payment_ids: Iterator[int] = field(default_factory=lambda: _id_sequence(100_000_000_000))
    refund_ids: Iterator[int] = field(default_factory=lambda: _id_sequence(1_000_000_000))
    notification_ids: Iterator[int] = field(default_factory=lambda: _id_sequence(10_000_000_000))

    def add_payment(self, payment: Payment) -> None:
        self.payments[payment.id] = payment
        heapq.heappush(self.expiring, (payment.date_of_expiration, payment.id))

    def add_payout(self, payout: Payout) -> None:
        self.payouts[payout.id] = payout
        heapq.heappush(self.settling, (payout.settle_at, payout.id))

    def due_expiries(self, now: datetime) -> Iterator[Payment]:
        """Pending payments whose expiry has passed (each yielded once)."""
        while self.expiring and self.expiring[0][0] <= now:
            _, payment_id = heapq.heappop(self.expiring)
            payment = self.payments.get(payment_id)
            if payment is not None and payment.status == PENDING[0]:
                yield payment

    def due_settlements(self, now: datetime) -> Iterator[Payout]:
        """Pending pay-outs whose settle time has passed (each yielded once)."""
        while self.settling and self.settling[0][0] <= now:
            _, payout_id = heapq.heappop(self.settling)
            payout = self.payouts.get(payout_id)
            if payout is not None and payout.status == PAYOUT_PENDING:
                yield payout

    def clear(self) -> None:
        """Forget every resource; id sequences keep counting so no id is ever reused."""
        self.payments.clear()
        self.refunds.clear()
        self.payouts.clear()
        self.answers.clear()
        self.expiring.clear()
        self.settling.clear()
