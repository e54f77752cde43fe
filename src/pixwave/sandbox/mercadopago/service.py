"""The rules of the simulated Mercado Pago account: what a request may do and what it changes.

Routes parse and call one method here; every method is synchronous, so each one runs to the
end without another request in between (one event loop), which is what makes idempotency keys
and state transitions race-free. Amounts are int centavos from the moment they are parsed.

Payment lifecycle (reference §1.4)::

    pending/pending_waiting_transfer
      ├─ pay ──────────────────────▶ approved/accredited
      │                                ├─ partial refund ─▶ approved/partially_refunded
      │                                └─ full refund ────▶ refunded/refunded
      ├─ expiry (simulated clock) ─▶ cancelled/expired
      └─ PUT {"status": "cancelled"} ▶ cancelled/by_collector

Pay-outs (transaction intents) go pending ▶ approved (with the endToEndId MP's ISPB created)
or rejected, settled automatically after ``settle_delay_seconds × time_scale`` or by hand.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from pixwave.pix import (
    BRCodeKind,
    PixFormatError,
    PixKeyType,
    build_static_brcode,
    generate_end_to_end_id,
    parse_brcode,
    qr_png_base64,
    validate_cnpj,
    validate_cpf,
    validate_document,
    validate_pix_key,
)
from pixwave.sandbox.core import NOTHING_TO_PAY, Clock
from pixwave.sandbox.mercadopago import errors
from pixwave.sandbox.mercadopago.config import MercadoPagoSimConfig
from pixwave.sandbox.mercadopago.errors import MPError, SandboxError
from pixwave.sandbox.mercadopago.state import (
    APPROVED,
    CANCELLABLE,
    CANCELLED,
    EXPIRED,
    MAX_REFUNDS,
    PARTIALLY_REFUNDED,
    PAYOUT_APPROVED,
    PAYOUT_PENDING,
    PAYOUT_REJECTED,
    PENDING,
    REFUNDED,
    Payment,
    Payout,
    Refund,
    Store,
)
from pixwave.sandbox.mercadopago.webhooks import Notifier
from pixwave.sandbox.mercadopago.wire import centavos_from_json, dumps, parse_mp_datetime

log = structlog.get_logger("pixwave.sandbox.mercadopago")

#: Mercado Pago's ISPB: the payer PSP of every pay-out, so the first digits of its endToEndId.
MERCADOPAGO_ISPB: Final = "10573521"
#: ISPB written into the endToEndId of a sandbox payer's Pix (the payer's bank creates it).
SANDBOX_PAYER_ISPB: Final = "00000000"

EXPIRY_MIN = timedelta(minutes=30)
EXPIRY_MAX = timedelta(days=30)
EXPIRY_DEFAULT = timedelta(hours=24)
#: Slack on both window edges for the time a request spends in flight: a client asking for
#: exactly "now + 30 min" must not be refused because its clock read came a second earlier.
EXPIRY_GRACE = timedelta(seconds=60)

#: Idempotency keys remembered. MP does not publish how long it keeps them; a bound keeps a
#: long load test from growing the simulator without limit (each answer is a few KB).
MAX_ANSWERS = 100_000

DEFAULT_LIMIT = 30
MAX_LIMIT = 1000
PAYMENT_SORTS = frozenset({"date_created", "date_approved", "date_last_updated", "id"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TXID_PREFIX = "mpqrinter"
#: MP's key-type words and the aliases community code sends, to the DICT's types.
_KEY_TYPES: Final[dict[str, PixKeyType]] = {
    "CPF": PixKeyType.CPF,
    "CNPJ": PixKeyType.CNPJ,
    "EMAIL": PixKeyType.EMAIL,
    "PHONE": PixKeyType.PHONE,
    "EVP": PixKeyType.EVP,
    "RANDOM": PixKeyType.EVP,
}


def _optional_text(body: Mapping[str, Any], name: str, max_length: int = 600) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise errors.params_error(f"{name} must be a string of at most {max_length} characters")
    return value


def _http_url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s]+", value):
        # MP's own message, typo included.
        raise MPError(400, "notificaction_url attribute must be url valid", code=4020)
    return value


def _identification(value: object, *, code: int | str) -> dict[str, str]:
    """``{"type": "CPF"|"CNPJ", "number": …}`` with valid check digits."""
    if not isinstance(value, Mapping):
        raise MPError(400, "Invalid identification", code=code)
    kind, number = value.get("type"), value.get("number")
    if kind not in ("CPF", "CNPJ") or not isinstance(number, str):
        raise MPError(400, "Invalid user identification type or number", code=code)
    try:
        canonical = validate_cpf(number) if kind == "CPF" else validate_cnpj(number)
    except PixFormatError as exc:
        raise MPError(
            400, "Invalid user identification number", code=code, description=exc.message
        ) from None
    return {"type": kind, "number": canonical}


def _paging(params: Mapping[str, str]) -> tuple[int, int]:
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
        offset = int(params.get("offset", 0))
    except ValueError:
        raise errors.params_error("limit and offset must be integers") from None
    if not 0 < limit <= MAX_LIMIT or offset < 0:
        raise errors.params_error(f"limit must be 1..{MAX_LIMIT} and offset >= 0")
    return limit, offset


def _page(found: Sequence[Payment | Payout], limit: int, offset: int) -> dict[str, Any]:
    """MP's search envelope; only the page asked for is rendered."""
    return {
        "paging": {"total": len(found), "limit": limit, "offset": offset},
        "results": [item.to_wire() for item in found[offset : offset + limit]],
    }


def _int_id(raw: str, not_found: Callable[[], MPError]) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise not_found()
    return int(raw)


class MercadoPagoService:
    """Every operation of the simulated account, over a :class:`Store`."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        config: Callable[[], MercadoPagoSimConfig],
        notifier: Notifier,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.notifier = notifier
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # --- idempotency ----------------------------------------------------------------------
    def answer(self, scope: str, key: str, produce: Callable[[], Any]) -> bytes:
        """The body first given for ``key`` in ``scope``, or a new one. A refused request
        raises out of ``produce`` and is not kept: it created nothing, so trying it again is
        harmless."""
        known = self.store.answers.get((scope, key))
        if known is not None:
            return known
        answer = dumps(produce())
        answers = self.store.answers
        answers[(scope, key)] = answer
        if len(answers) > MAX_ANSWERS:  # forget the oldest key (dicts keep insertion order)
            del answers[next(iter(answers))]
        return answer

    # --- payments -------------------------------------------------------------------------
    def create_payment(self, body: Mapping[str, Any]) -> Payment:
        config = self.config()
        if body.get("payment_method_id") != "pix":
            raise errors.params_error("payment_method_id must be pix: this simulator is Pix-only")
        amount = centavos_from_json(body.get("transaction_amount"))
        if amount is None:
            raise errors.invalid_amount()
        payer = self._payer(body.get("payer"))
        now = self.clock.now()
        expiration = self._expiration(body.get("date_of_expiration"), now)
        notification_url = _http_url(body.get("notification_url"))
        description = _optional_text(body, "description")
        external_reference = _optional_text(body, "external_reference", 256)
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise errors.params_error("metadata must be an object")

        payment_id = next(self.store.payment_ids)
        qr_code = build_static_brcode(
            key=config.collector_pix_key,
            merchant_name=config.merchant_name,
            merchant_city=config.merchant_city,
            amount_centavos=amount,
            txid=f"{_TXID_PREFIX}{payment_id}",
        )
        payment = Payment(
            id=payment_id,
            amount=amount,
            collector_id=config.collector_id,
            description=description,
            external_reference=external_reference,
            notification_url=notification_url,
            payer=payer,
            metadata=dict(metadata),
            date_created=now,
            date_of_expiration=expiration,
            date_last_updated=now,
            qr_code=qr_code,
            qr_code_base64=qr_png_base64(qr_code),
            ticket_url=(
                f"{config.public_url}/_sandbox/payments/{payment_id}/ticket"
                f"?caller_id={config.collector_id}&hash={uuid.uuid4()}"
            ),
        )
        self.store.add_payment(payment)
        log.info("sandbox.mercadopago.payment.created", payment_id=payment_id, amount=amount)
        self.notifier.payment(payment, "payment.created")
        return payment

    def _payer(self, value: object) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise MPError(400, "payer.email must be a valid email", code=4050)
        email = value.get("email")
        if not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email):
            raise MPError(400, "payer.email must be a valid email", code=4050)
        identification: dict[str, Any] = {"type": None, "number": None}
        if value.get("identification") is not None:
            identification = _identification(value["identification"], code=2067)
        names = {}
        for name in ("first_name", "last_name", "entity_type", "type"):
            names[name] = _optional_text(value, name, 256)
        return {
            "id": None,
            "type": names["type"],
            "email": email,
            "identification": identification,
            "first_name": names["first_name"],
            "last_name": names["last_name"],
            "entity_type": names["entity_type"],
            "phone": {"area_code": None, "number": None, "extension": None},
        }

    def _expiration(self, value: object, now: datetime) -> datetime:
        if value is None:
            return now + EXPIRY_DEFAULT
        moment = parse_mp_datetime(value)
        if moment is None:
            raise errors.invalid_expiration()
        ahead = moment - now
        if not EXPIRY_MIN - EXPIRY_GRACE <= ahead <= EXPIRY_MAX + EXPIRY_GRACE:
            raise errors.invalid_expiration()
        return moment

    def get_payment(self, raw_id: str) -> Payment:
        payment = self.store.payments.get(_int_id(raw_id, errors.payment_not_found))
        if payment is None:
            raise errors.payment_not_found()
        return payment

    def search_payments(self, params: Mapping[str, str]) -> dict[str, Any]:
        limit, offset = _paging(params)
        sort = params.get("sort", "date_created")
        criteria = params.get("criteria", "asc")
        if sort not in PAYMENT_SORTS or criteria not in ("asc", "desc"):
            raise errors.params_error(
                f"sort must be one of {sorted(PAYMENT_SORTS)} and criteria asc or desc"
            )
        filters = {
            name: params[name]
            for name in ("external_reference", "status", "status_detail", "id")
            if name in params
        }
        found = [
            payment
            for payment in self.store.payments.values()
            if all(str(getattr(payment, name)) == wanted for name, wanted in filters.items())
        ]

        def key(payment: Payment) -> tuple[bool, Any]:
            value = payment.id if sort == "id" else getattr(payment, sort)
            return (value is None, value if value is not None else 0)

        found.sort(key=key, reverse=criteria == "desc")
        return _page(found, limit, offset)

    def update_payment(self, raw_id: str, body: Mapping[str, Any]) -> Payment:
        """Only the cancellation PixWave needs: ``{"status": "cancelled"}``."""
        payment = self.get_payment(raw_id)
        if body.get("status") != "cancelled":
            raise errors.params_error(
                'this simulator only updates a payment with {"status": "cancelled"}'
            )
        if payment.status not in CANCELLABLE:
            raise errors.cannot_cancel(payment.status)
        payment.set_status(CANCELLED, self.clock.now())
        log.info("sandbox.mercadopago.payment.cancelled", payment_id=payment.id)
        self.notifier.payment(payment, "payment.updated")
        return payment

    def expire(self, payment: Payment) -> None:
        payment.set_status(EXPIRED, self.clock.now())
        log.info("sandbox.mercadopago.payment.expired", payment_id=payment.id)
        self.notifier.payment(payment, "payment.updated")

    # --- refunds --------------------------------------------------------------------------
    def create_refund(self, raw_id: str, body: Mapping[str, Any]) -> Refund:
        payment = self.get_payment(raw_id)
        if payment.status != APPROVED[0]:
            raise errors.cannot_refund(
                f"Payment cannot be refunded: its status is {payment.status}", 4040
            )
        remaining = payment.amount - payment.refunded_amount
        if body.get("amount") is None:
            amount = remaining
        else:
            parsed = centavos_from_json(body["amount"])
            if parsed is None:
                raise errors.invalid_amount("amount")
            amount = parsed
        if amount > remaining:
            raise errors.cannot_refund(
                "Invalid refund amount: it exceeds the amount available to refund", 4041
            )
        if len(payment.refunds) >= MAX_REFUNDS:
            raise errors.cannot_refund(f"A payment accepts at most {MAX_REFUNDS} refunds", 4042)
        config = self.config()
        now = self.clock.now()
        refund = Refund(
            id=next(self.store.refund_ids),
            payment_id=payment.id,
            amount=amount,
            date_created=now,
            source={
                "id": str(config.collector_id),
                "name": config.merchant_name,
                "type": "collector",
            },
        )
        payment.refunds.append(refund)
        self.store.refunds[refund.id] = refund
        full = payment.refunded_amount == payment.amount
        payment.set_status(REFUNDED if full else PARTIALLY_REFUNDED, now)
        log.info(
            "sandbox.mercadopago.refund.created",
            payment_id=payment.id,
            refund_id=refund.id,
            amount=amount,
        )
        self.notifier.payment(payment, "payment.updated")
        return refund

    def get_refund(self, raw_id: str, raw_refund_id: str) -> Refund:
        payment = self.get_payment(raw_id)
        refund_id = _int_id(raw_refund_id, errors.refund_not_found)
        for refund in payment.refunds:
            if refund.id == refund_id:
                return refund
        raise errors.refund_not_found()

    # --- pay-outs -------------------------------------------------------------------------
    def create_payout(self, body: Mapping[str, Any]) -> Payout:
        external_reference = body.get("external_reference")
        if not isinstance(external_reference, str) or not 0 < len(external_reference) <= 256:
            raise errors.params_error("external_reference is required (a string)")
        point = body.get("point_of_interaction")
        if not isinstance(point, Mapping) or point.get("type") != "PSP_TRANSFER":
            raise errors.params_error('point_of_interaction.type must be "PSP_TRANSFER"')
        notification_url = self._payout_notification_url(body.get("seller_configuration"))
        destination, amount = self._payout_destination(body.get("transaction"))
        if destination.get("type") != "current":
            raise errors.params_error('transaction.to.accounts[].type must be "current"')
        key_type, key_value = self._pix_key(destination.get("chave"))
        owner = destination.get("owner")
        if owner is not None:
            if not isinstance(owner, Mapping):
                raise errors.params_error("transaction.to.accounts[].owner must be an object")
            _identification(owner.get("identification"), code="invalid_identification")

        config = self.config()
        now = self.clock.now()
        delay = config.settle_delay_seconds * config.time_scale
        payout = Payout(
            id=str(uuid.uuid4()),
            external_reference=external_reference,
            amount=amount,
            key_type=key_type,
            key_value=key_value,
            notification_url=notification_url,
            request=dict(body),
            created=now,
            last_updated=now,
            settle_at=now + timedelta(seconds=delay),
        )
        self.store.add_payout(payout)
        if config.auto_settle_sends:
            loop = asyncio.get_running_loop()
            self._timers[payout.id] = loop.call_later(delay, self._auto_settle, payout.id)
        log.info("sandbox.mercadopago.payout.created", intent_id=payout.id, amount=amount)
        return payout

    def _payout_destination(self, transaction: object) -> tuple[Mapping[str, Any], int]:
        """The one destination account and the amount, once from, to and total agree."""
        if not isinstance(transaction, Mapping):
            raise errors.params_error("transaction is required")
        sources = self._accounts(transaction.get("from"), "transaction.from.accounts")
        destinations = self._accounts(transaction.get("to"), "transaction.to.accounts")
        if len(destinations) != 1:
            raise errors.params_error("transaction.to.accounts must hold exactly one account")
        source_total = sum(self._amount(a, "transaction.from.accounts[].amount") for a in sources)
        destination = destinations[0]
        amount = self._amount(destination, "transaction.to.accounts[].amount")
        total = centavos_from_json(transaction.get("total_amount"))
        if total is None:
            raise errors.invalid_amount("transaction.total_amount")
        if not source_total == amount == total:
            raise errors.params_error(
                "transaction.total_amount must equal the sum of the from and of the to accounts"
            )
        return destination, amount

    def _payout_notification_url(self, value: object) -> str | None:
        if value is None:
            return None
        info = value.get("notification_info") if isinstance(value, Mapping) else None
        if not isinstance(info, Mapping):
            raise errors.params_error("seller_configuration.notification_info must be an object")
        return _http_url(info.get("notification_url"))

    @staticmethod
    def _accounts(side: object, name: str) -> list[Mapping[str, Any]]:
        accounts = side.get("accounts") if isinstance(side, Mapping) else None
        if (
            not isinstance(accounts, list)
            or not accounts
            or not all(isinstance(a, Mapping) for a in accounts)
        ):
            raise errors.params_error(f"{name} must be a non-empty list of accounts")
        return accounts

    @staticmethod
    def _amount(account: Mapping[str, Any], name: str) -> int:
        amount = centavos_from_json(account.get("amount"))
        if amount is None:
            raise errors.invalid_amount(name)
        return amount

    @staticmethod
    def _pix_key(value: object) -> tuple[str, str]:
        if not isinstance(value, Mapping):
            raise errors.params_error("transaction.to.accounts[].chave is required")
        kind, raw = value.get("type"), value.get("value")
        key_type = _KEY_TYPES.get(kind.upper()) if isinstance(kind, str) else None
        if key_type is None or not isinstance(raw, str):
            raise MPError(
                400,
                "Invalid Pix key type",
                code="invalid_pix_key",
                description=f"chave.type must be one of {sorted(_KEY_TYPES)}",
            )
        try:
            key = validate_pix_key(raw, key_type)
        except PixFormatError as exc:
            raise MPError(
                400, "Invalid Pix key", code="invalid_pix_key", description=exc.message
            ) from None
        return key.type.value, key.value

    def get_payout(self, intent_id: str) -> Payout:
        payout = self.store.payouts.get(intent_id)
        if payout is None:
            raise errors.intent_not_found()
        return payout

    def search_payouts(self, params: Mapping[str, str]) -> dict[str, Any]:
        limit, offset = _paging(params)
        found = [
            payout
            for payout in self.store.payouts.values()
            if params.get("external_reference") in (None, payout.external_reference)
            and params.get("status") in (None, payout.status)
        ]
        found.sort(key=lambda payout: payout.created)
        return _page(found, limit, offset)

    def _auto_settle(self, intent_id: str) -> None:
        self._timers.pop(intent_id, None)
        payout = self.store.payouts.get(intent_id)
        if (
            payout is not None
            and payout.status == PAYOUT_PENDING
            and self.config().auto_settle_sends
        ):
            self._finish_payout(payout, PAYOUT_APPROVED, "approved")

    def _finish_payout(self, payout: Payout, status: str, detail: str) -> None:
        now = self.clock.now()
        payout.status, payout.status_detail, payout.last_updated = status, detail, now
        if status == PAYOUT_APPROVED:
            payout.end_to_end_id = generate_end_to_end_id(MERCADOPAGO_ISPB, now)
        timer = self._timers.pop(payout.id, None)
        if timer is not None:
            timer.cancel()
        log.info("sandbox.mercadopago.payout.finished", intent_id=payout.id, status=status)
        self.notifier.transaction_intent(payout)

    # --- what only the sandbox can do -----------------------------------------------------
    def pay(self, brcode: str, payer: Mapping[str, Any] | None) -> Payment:
        """What the payer's bank does with a scanned code: find the charge and pay it."""
        try:
            code = parse_brcode(brcode)
        except PixFormatError as exc:
            raise SandboxError(422, exc.code.value, exc.message) from None
        if code.kind is BRCodeKind.RECURRENCE:
            raise SandboxError(422, "nothing_to_pay", NOTHING_TO_PAY)
        txid = code.txid or ""
        number = txid.removeprefix(_TXID_PREFIX)
        payment = None
        if txid.startswith(_TXID_PREFIX) and number.isascii() and number.isdigit():
            payment = self.store.payments.get(int(number))
        if payment is None:
            raise SandboxError(404, "charge_not_found", f"no payment has the txid {txid!r}")
        if code.amount_centavos != payment.amount:
            raise SandboxError(
                422, "amount_mismatch", "the code's amount is not the payment's amount"
            )
        paid_by = self._paid_by(payer)
        self.tick()
        if payment.status != PENDING[0]:
            if payment.status in (APPROVED[0], REFUNDED[0]):
                raise SandboxError(409, "already_paid", f"payment {payment.id} is already paid")
            if payment.status_detail == EXPIRED[1]:
                raise SandboxError(409, "expired", f"payment {payment.id} has expired")
            raise SandboxError(409, "cancelled", f"payment {payment.id} was cancelled")
        now = self.clock.now()
        payment.end_to_end_id = generate_end_to_end_id(SANDBOX_PAYER_ISPB, now)
        payment.date_approved = now
        payment.paid_by = paid_by
        payment.set_status(APPROVED, now)
        log.info("sandbox.mercadopago.payment.approved", payment_id=payment.id)
        self.notifier.payment(payment, "payment.updated")
        return payment

    @staticmethod
    def _paid_by(payer: Mapping[str, Any] | None) -> dict[str, Any]:
        payer = payer or {}
        name, document, email = payer.get("name"), payer.get("document"), payer.get("email")
        for label, value in (("name", name), ("document", document), ("email", email)):
            if value is not None and not isinstance(value, str):
                raise SandboxError(422, "invalid_payer", f"payer.{label} must be a string")
        identification = None
        if document is not None:
            try:
                kind, number = validate_document(document)
            except PixFormatError as exc:
                raise SandboxError(422, exc.code.value, exc.message) from None
            identification = {"type": kind.upper(), "number": number}
        return {
            "id": None,
            "account_id": None,
            "long_name": None,
            "account_holder_name": name,
            "email": email,
            "identification": identification,
        }

    def expire_now(self, raw_id: str) -> Payment:
        try:
            payment = self.get_payment(raw_id)
        except MPError:
            raise SandboxError(404, "not_found", f"no payment {raw_id}") from None
        if payment.status != PENDING[0]:
            raise SandboxError(409, "not_pending", f"payment {payment.id} is {payment.status}")
        self.expire(payment)
        return payment

    def finish_payout(self, intent_id: str, *, approve: bool, reason: str | None) -> Payout:
        payout = self.store.payouts.get(intent_id)
        if payout is None:
            raise SandboxError(404, "not_found", f"no transaction intent {intent_id}")
        if payout.status != PAYOUT_PENDING:
            raise SandboxError(
                409, "already_final", f"transaction intent {intent_id} is {payout.status}"
            )
        if approve:
            self._finish_payout(payout, PAYOUT_APPROVED, "approved")
        else:
            self._finish_payout(payout, PAYOUT_REJECTED, reason or "rejected_by_bank")
        return payout

    # --- time -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Expire what the clock has passed; settle pay-outs that are due (when automatic)."""
        now = self.clock.now()
        for payment in self.store.due_expiries(now):
            self.expire(payment)
        if self.config().auto_settle_sends:
            for payout in self.store.due_settlements(now):
                self._finish_payout(payout, PAYOUT_APPROVED, "approved")

    def clear_timers(self) -> None:
        """Cancel pending automatic settlements (tick() still settles what is due)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def clear(self) -> None:
        self.clear_timers()
        self.store.clear()
