"""PixWave's gateway protocol over a PSP's standard API Pix (the Central Bank's, v2.9.0).

A bank that speaks the standard receives Pix for us: immediate charges (``cob``), the Pix that
pay them and their refunds (``devolucao``), and notifications of both. The standard has no way
to *send* a Pix, so these gateways have no SEND capability and the router never gives them a
withdrawal; ``send_pix`` refuses without calling anything.

Every id the PSP sees is derived from our transaction's ``reference``, so a call repeated after
a lost response can only find — never duplicate — what the first one did:

* txid (cob) = the reference's alphanumerics, right-padded with ``0`` to 26, at most 35;
* devolução id (refund) = the refund reference's alphanumerics, at most 35.

The standard makes ``PUT /cob/{txid}`` a create-or-revise of an *active* charge, so repeating
it answers the same charge; on a charge no longer active (paid meanwhile) it answers 400
``CobOperacaoInvalida``, and a repeated devolução id is a 400 ``PixDevolucaoInvalida``: those
answers are resolved by reading the existing resource back, and stand when there is none.

Efí (``gateways/efi``) extends this class with its own id conflicts, QR code route and sends.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from pixwave.gateways.base import (
    Capability,
    Charge,
    ChargeRequest,
    ChargeStatus,
    InboundWebhook,
    Refund,
    RefundRequest,
    Send,
    SendRequest,
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
from pixwave.gateways.pixapi import schemas
from pixwave.gateways.pixapi.client import (
    CertificateRules,
    PixApiClient,
    TokenRequestBody,
    parse_json,
)
from pixwave.gateways.pixapi.mapping import charge_status, error_mapper, refund_status
from pixwave.gateways.pixapi.webhooks import Notifications, WebhookAuth
from pixwave.kit.money import from_decimal_string, to_decimal_string
from pixwave.pix import PixFormatError, validate_document, validate_txid
from pixwave.pix import qr_png_base64 as render_qr_png_base64

#: The scopes our calls need (cob, pix and webhook, read and write), asked for in the token.
DEFAULT_SCOPES: Final = "cob.write cob.read pix.write pix.read webhook.write webhook.read"

#: BCB limit for ``solicitacaoPagador`` and ``descricao``.
DESCRIPTION_MAX: Final = 140
_TXID_MIN: Final = 26
_ID_MAX: Final = 35
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")

#: The cob status values our flow branches on.
PAID: Final = "CONCLUIDA"
REMOVED: Final = frozenset({"REMOVIDA_PELO_USUARIO_RECEBEDOR", "REMOVIDA_PELO_PSP"})
REFUNDED: Final = "DEVOLVIDO"
ACTIVE: Final = "ATIVA"

#: How far around a cob's lifetime ``GET /pix?txid=`` looks for the Pix that paid it.
_PIX_SEARCH_MARGIN: Final = timedelta(hours=1)

ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT", Send, Refund)
Clock = Callable[[], datetime]


class SendNotSupported(GatewayRejected, UnsupportedOperation):
    """A send asked of a gateway that cannot send: refused here, nothing reaches the PSP."""


def alphanumerics(reference: str, operation: str, *, gateway: str, provider: str) -> str:
    value = _NON_ALNUM.sub("", reference)
    if not value:
        raise GatewayRejected(
            f"reference {reference!r} has no letters or digits to derive the {provider} id from",
            gateway=gateway,
            operation=operation,
            code="invalid_reference",
        )
    return value


def txid_for(reference: str, operation: str, *, gateway: str, provider: str) -> str:
    """The cob txid of a reference: its alphanumerics, padded with 0 to 26, cut to 35."""
    value = alphanumerics(reference, operation, gateway=gateway, provider=provider)
    return validate_txid(value.ljust(_TXID_MIN, "0")[:_ID_MAX])


def transaction_id_of(provider_id: str) -> str | None:
    """The transaction id a txid, devolução id or send id was derived from: ours drop the
    underscore of ``txn_…`` (``txn01J…``), so put it back; None for any other id."""
    if provider_id.startswith("txn") and not provider_id.startswith("txn_"):
        return f"txn_{provider_id[3:]}"
    return None


def devolucao_id_for(reference: str, operation: str, *, gateway: str, provider: str) -> str:
    """The devolução id of a refund reference: its alphanumerics, at most 35."""
    return alphanumerics(reference, operation, gateway=gateway, provider=provider)[:_ID_MAX]


def segment(value: str) -> str:
    """A path segment; ``@`` and ``+`` stay literal, as PSPs' SDKs send keys."""
    return quote(value, safe="@+")


def description(text: str | None) -> str | None:
    return text[:DESCRIPTION_MAX] if text else None


def with_latency(result: ResultT, latency_ms: int) -> ResultT:
    return replace(result, latency_ms=latency_ms)


class PixApiConnector:
    """One PSP account over the standard API Pix, with mTLS and OAuth2 client credentials.

    ``name`` is this gateway's own (``bancoa``): there is one connector per bank account, each
    a gateway of its own for routing, health and the ledger.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.CHARGE, Capability.REFUND, Capability.WEBHOOK}
    )
    #: Where the standard's paths live under the base URL (Efí: ``/v2`` under its host).
    api_path: ClassVar[str] = ""
    #: Provider codes meaning "this txid / devolução id is taken" (read the resource back).
    charge_taken: ClassVar[frozenset[str]] = frozenset({"CobOperacaoInvalida"})
    refund_taken: ClassVar[frozenset[str]] = frozenset({"PixDevolucaoInvalida"})
    #: Whether that code *proves* the id exists. The standard's 400s cover other violations
    #: too, so a failed read-back leaves the original refusal standing; Efí's dedicated 409s
    #: do prove it, so a failed read-back there is ambiguous.
    taken_is_certain: ClassVar[bool] = False
    #: Find the Pix of a paid cob that came back without ``pix[]`` through ``GET /pix?txid=``.
    search_pix_by_txid: ClassVar[bool] = True

    name: str
    provider: str
    pix_key: str
    webhook_auth: WebhookAuth
    client: PixApiClient
    notifications: Notifications
    _clock: Clock

    def __init__(
        self,
        *,
        name: str,
        client_id: str,
        client_secret: str,
        pix_key: str,
        base_url: str,
        token_url: str,
        scopes: str | None = DEFAULT_SCOPES,
        certificate_path: str | None = None,
        timeouts: Timeouts = Timeouts(),
        webhook_auth: WebhookAuth,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        clock = clock or now
        client = PixApiClient(
            gateway=name,
            base_url=base_url,
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            certificate_path=certificate_path,
            certificate=CertificateRules(name, f"PIXAPI_{name.upper()}_CERTIFICATE_PATH"),
            timeouts=timeouts,
            clock=clock,
            map_error=error_mapper(name),
            scopes=scopes,
            token_body=TokenRequestBody.FORM,
            transport=transport,
        )
        self._bind(
            name=name,
            provider=name,
            pix_key=pix_key,
            webhook_auth=webhook_auth,
            client=client,
            clock=clock,
        )

    def _bind(
        self,
        *,
        name: str,
        provider: str,
        pix_key: str,
        webhook_auth: WebhookAuth,
        client: PixApiClient,
        clock: Clock,
    ) -> None:
        self.name = name
        self.provider = provider
        self.pix_key = pix_key
        self.webhook_auth = webhook_auth
        self.client = client
        self.notifications = Notifications(name, provider)
        self._clock = clock

    # --- ids ------------------------------------------------------------------------------------

    def txid_for(self, reference: str, operation: str = "cob.create") -> str:
        return txid_for(reference, operation, gateway=self.name, provider=self.provider)

    def devolucao_id_for(self, reference: str, operation: str = "pix.refund") -> str:
        return devolucao_id_for(reference, operation, gateway=self.name, provider=self.provider)

    def _path(self, path: str) -> str:
        return f"{self.api_path}{path}"

    # --- charges -------------------------------------------------------------------------------

    async def create_charge(self, request: ChargeRequest) -> Charge:
        operation = "cob.create"
        txid = self.txid_for(request.reference, operation)
        body = schemas.CobCreate(
            calendario=schemas.CalendarioCreate(expiracao=request.expires_in),
            devedor=self._devedor(request, operation),
            valor=schemas.CobValor(original=to_decimal_string(request.amount)),
            chave=self.pix_key,
            solicitacaoPagador=description(request.description),
        )
        try:
            response, latency = await self.client.request(
                operation,
                "PUT",
                self._path(f"/cob/{txid}"),
                mutates=True,
                json=body.model_dump(exclude_none=True),
            )
            cob = self._read(schemas.Cob, response, operation, latency)
        except GatewayRejected as exc:
            if exc.provider_code not in self.charge_taken:
                raise
            # Our own earlier attempt (its response lost), or another charge on the same id.
            cob, latency = await self._taken_cob(txid, request.amount, exc)
        brcode, image = cob.pixCopiaECola, None
        if not brcode:
            brcode, image, qr_latency = await self._brcode(cob, operation)
            latency += qr_latency
        return self._charge(
            cob,
            operation=operation,
            reference=request.reference,
            brcode=brcode,
            qr_png_base64=image or render_qr_png_base64(brcode),
            latency_ms=latency,
        )

    async def _taken_cob(
        self, txid: str, amount: int, taken: GatewayRejected
    ) -> tuple[schemas.Cob, int]:
        """The existing cob behind a "txid taken" answer, when it is ours; else that answer."""
        try:
            cob, get_latency = await self._get_cob(txid)
        except GatewayNotFound:
            if self.taken_is_certain:
                raise
            raise taken from None
        latency = taken.latency_ms + get_latency
        if self._amount(cob.valor.original, taken.operation, latency) != amount:
            taken.latency_ms = latency
            raise taken
        return cob, latency

    async def get_charge(self, charge_id: str) -> Charge:
        cob, latency = await self._get_cob(charge_id)
        if cob.status == PAID and not cob.pix and self.search_pix_by_txid:
            cob, latency = await self._with_received_pix(cob, latency)
        return self._charge(cob, latency_ms=latency)

    async def cancel_charge(self, charge_id: str) -> Charge:
        operation = "cob.cancel"
        cob, latency = await self._get_cob(charge_id)
        if cob.status in REMOVED:
            return self._charge(cob, latency_ms=latency)
        if cob.status == PAID:
            raise self._not_cancellable(cob, latency)
        patch = schemas.CobCancel().model_dump()
        try:
            response, patch_latency = await self.client.request(
                operation,
                "PATCH",
                self._path(f"/cob/{segment(charge_id)}"),
                mutates=True,
                json=patch,
            )
        except GatewayRejected as exc:
            if exc.http_status != 400:
                raise
            # Paid between our read and the PATCH: report it as such, not as a bad request.
            exc.latency_ms += latency
            cob, get_latency = await self._get_cob(charge_id)
            if cob.status == PAID:
                raise self._not_cancellable(cob, exc.latency_ms + get_latency) from exc
            raise
        latency += patch_latency
        cancelled = self._read(schemas.Cob, response, operation, latency)
        return self._charge(cancelled, operation=operation, latency_ms=latency)

    # --- sends: not in the standard ------------------------------------------------------------

    async def send_pix(self, request: SendRequest) -> Send:
        raise self._cannot_send("pix.send")

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        raise self._cannot_send("pix.send.get")

    def _cannot_send(self, operation: str) -> SendNotSupported:
        return SendNotSupported(
            f"{self.name} {operation}: the standard API Pix has no way to send a Pix",
            gateway=self.name,
            operation=operation,
            code="unsupported_operation",
        )

    # --- received Pix --------------------------------------------------------------------------

    async def get_received(self, end_to_end_id: str) -> tuple[schemas.Pix, int]:
        """A received Pix by its endToEndId (``GET /pix/{e2eid}``), with the latency."""
        operation = "pix.get"
        response, latency = await self.client.request(
            operation, "GET", self._path(f"/pix/{segment(end_to_end_id)}"), mutates=False
        )
        return self._read(schemas.Pix, response, operation, latency), latency

    async def received_for(
        self, txid: str, *, start: datetime, end: datetime
    ) -> tuple[list[schemas.Pix], int]:
        """The Pix received for ``txid`` between two instants (``GET /pix?txid=&inicio=&fim=``)."""
        operation = "pix.list"
        response, latency = await self.client.request(
            operation,
            "GET",
            self._path("/pix"),
            mutates=False,
            params={"inicio": _rfc3339(start), "fim": _rfc3339(end), "txid": txid},
        )
        found = self._read(schemas.PixConsultados, response, operation, latency)
        # Only Pix naming this txid: a bank that ignores the filter must not lend a deposit
        # someone else's payment (its endToEndId is what a refund would return).
        return [p for p in found.pix if p.txid == txid], latency

    async def _with_received_pix(self, cob: schemas.Cob, latency: int) -> tuple[schemas.Cob, int]:
        """A CONCLUIDA cob shown without ``pix[]``: its Pix, searched over the cob's life.

        The window is the cob's own (creation to expiry, with a margin), not our clock's.
        """
        created = cob.calendario.criacao
        if created is None:
            return cob, latency
        start = created - _PIX_SEARCH_MARGIN
        end = created + timedelta(seconds=cob.calendario.expiracao) + _PIX_SEARCH_MARGIN
        received, search_latency = await self.received_for(cob.txid, start=start, end=end)
        return cob.model_copy(update={"pix": received}), latency + search_latency

    # --- refunds -------------------------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> Refund:
        operation = "pix.refund"
        e2e = self._require_e2e(request.end_to_end_id, operation)
        refund_id = self.devolucao_id_for(request.reference, operation)
        body = schemas.DevolucaoCreate(valor=to_decimal_string(request.amount))
        try:
            response, latency = await self.client.request(
                operation,
                "PUT",
                self._path(f"/pix/{segment(e2e)}/devolucao/{refund_id}"),
                mutates=True,
                moves_money=True,
                json=body.model_dump(exclude_none=True),
            )
        except GatewayRejected as exc:
            if exc.provider_code not in self.refund_taken:
                raise
            lookup = self.get_refund(
                reference=request.reference,
                charge_id=request.charge_id,
                end_to_end_id=e2e,
                refund_id=refund_id,
            )
            found = await self._existing(lookup, exc, "refund")
            if found.amount != request.amount:
                # The id derives from our refund, so a devolução under it is ours whatever it
                # says: never report it refused (the hold would be released while money left).
                raise self._unconfirmed(
                    exc,
                    "refund_amount_mismatch",
                    f"{self.provider} holds devolução {refund_id} for {found.amount} centavos, "
                    f"not {request.amount}",
                    operation=operation,
                    latency_ms=found.latency_ms,
                ) from exc
            return with_latency(found, exc.latency_ms + found.latency_ms)
        devolucao = self._read(schemas.Devolucao, response, operation, latency, money=True)
        return self._refund(devolucao, request.reference, latency, money=True)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        operation = "pix.refund.get"
        e2e = self._require_e2e(end_to_end_id, operation)
        devolucao_id = refund_id or self.devolucao_id_for(reference, operation)
        response, latency = await self.client.request(
            operation,
            "GET",
            self._path(f"/pix/{segment(e2e)}/devolucao/{segment(devolucao_id)}"),
            mutates=False,
        )
        devolucao = self._read(schemas.Devolucao, response, operation, latency)
        return self._refund(devolucao, reference, latency)

    # --- webhooks ------------------------------------------------------------------------------

    async def register_webhook(self, url: str) -> None:
        """Point the PSP's notifications for our key at ``url`` (the PSP appends ``/pix``).

        Without mTLS at our ingress, register ``…?hmac=<secret>&ignorar=`` so the suffix lands
        in a dummy parameter and the secret authenticates (see :class:`WebhookAuth`).
        """
        await self._put_webhook(url, headers=None)

    async def _put_webhook(self, url: str, *, headers: dict[str, str] | None) -> None:
        await self.client.request(
            "webhook.register",
            "PUT",
            self._path(f"/webhook/{segment(self.pix_key)}"),
            mutates=True,
            json=schemas.WebhookCreate(webhookUrl=url).model_dump(),
            headers=headers,
        )

    async def get_webhook(self) -> str | None:
        """The URL registered for our key, or None when there is none."""
        operation = "webhook.get"
        try:
            response, latency = await self.client.request(
                operation, "GET", self._path(f"/webhook/{segment(self.pix_key)}"), mutates=False
            )
        except GatewayNotFound:
            return None
        return self._read(schemas.WebhookConfig, response, operation, latency).webhookUrl

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        return self.notifications.verify(self.webhook_auth, request)

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- helpers -------------------------------------------------------------------------------

    async def _get_cob(self, txid: str) -> tuple[schemas.Cob, int]:
        operation = "cob.get"
        response, latency = await self.client.request(
            operation, "GET", self._path(f"/cob/{segment(txid)}"), mutates=False
        )
        return self._read(schemas.Cob, response, operation, latency), latency

    async def _brcode(self, cob: schemas.Cob, operation: str) -> tuple[str, str | None, int]:
        """BR Code (and PNG base64, if the PSP gives one) of a cob shown without its code.

        The standard has no other route to it than ``pixCopiaECola``; a PSP extending the
        standard (Efí's ``/loc/{id}/qrcode``) overrides this.
        """
        raise GatewayUnavailable(
            f"cob {cob.txid} came back without pixCopiaECola",
            gateway=self.name,
            operation=operation,
            code="invalid_response",
        )

    def _charge(
        self,
        cob: schemas.Cob,
        *,
        latency_ms: int,
        operation: str = "cob.get",
        reference: str | None = None,
        brcode: str | None = None,
        qr_png_base64: str | None = None,
    ) -> Charge:
        created_at = cob.calendario.criacao
        expires_at = (
            created_at + timedelta(seconds=cob.calendario.expiracao) if created_at else None
        )
        status = charge_status(cob.status)
        if cob.status == ACTIVE and expires_at is not None and self._clock() >= expires_at:
            status = ChargeStatus.EXPIRED
        paid_amount = paid_at = end_to_end_id = None
        refunded = 0
        amount = self._amount(cob.valor.original, operation, latency_ms)
        if cob.pix:
            paid_amount = sum(self._amount(p.valor, operation, latency_ms) for p in cob.pix)
            paid_at = cob.pix[0].horario
            end_to_end_id = cob.pix[0].endToEndId
            refunded = sum(
                self._amount(d.valor, operation, latency_ms)
                for p in cob.pix
                for d in p.devolucoes
                if d.status == REFUNDED
            )
        elif status is ChargeStatus.PAID:
            # CONCLUIDA without the pix list: the charge's fixed amount is what was paid.
            paid_amount = amount
        return Charge(
            gateway=self.name,
            charge_id=cob.txid,
            reference=reference,
            status=status,
            provider_status=cob.status,
            amount=amount,
            brcode=brcode or cob.pixCopiaECola or "",
            qr_png_base64=qr_png_base64,
            created_at=created_at,
            expires_at=expires_at,
            txid=cob.txid,
            paid_amount=paid_amount,
            paid_at=paid_at,
            end_to_end_id=end_to_end_id,
            refunded_amount=refunded,
            latency_ms=latency_ms,
        )

    def _refund(
        self, devolucao: schemas.Devolucao, reference: str, latency: int, *, money: bool = False
    ) -> Refund:
        operation = "pix.refund" if money else "pix.refund.get"
        return Refund(
            gateway=self.name,
            refund_id=devolucao.id,
            reference=reference,
            status=refund_status(devolucao.status),
            provider_status=devolucao.status,
            amount=self._amount(devolucao.valor, operation, latency, money=money),
            return_id=devolucao.rtrId,
            failure_message=devolucao.motivo,
            latency_ms=latency,
        )

    def _devedor(self, request: ChargeRequest, operation: str) -> schemas.Devedor | None:
        """The payer, only when both document and name are known (the BCB requires both)."""
        if not (request.payer_document and request.payer_name):
            return None
        kind, document = self._document(request.payer_document, operation)
        if kind == "cpf":
            return schemas.Devedor(cpf=document, nome=request.payer_name)
        return schemas.Devedor(cnpj=document, nome=request.payer_name)

    def _document(self, raw: str, operation: str) -> tuple[str, str]:
        try:
            return validate_document(raw)
        except PixFormatError as exc:
            raise GatewayRejected(
                f"invalid CPF/CNPJ: {exc.message}",
                gateway=self.name,
                operation=operation,
                code="invalid_document",
            ) from exc

    def _require_e2e(self, end_to_end_id: str | None, operation: str) -> str:
        if not end_to_end_id:
            raise GatewayRejected(
                f"{self.provider} refunds a received Pix by its endToEndId, and none was given",
                gateway=self.name,
                operation=operation,
                code="missing_end_to_end_id",
            )
        return end_to_end_id

    def _not_cancellable(self, cob: schemas.Cob, latency: int) -> GatewayRejected:
        return GatewayRejected(
            f"cob {cob.txid} is {cob.status}: a paid charge cannot be cancelled",
            gateway=self.name,
            operation="cob.cancel",
            code="charge_not_cancellable",
            provider_code=cob.status,
            latency_ms=latency,
        )

    def _invalid_response(
        self, operation: str, latency: int, money: bool, detail: str
    ) -> GatewayError:
        """A 2xx we cannot read: on a money call it may have worked, so it is ambiguous."""
        error_class = GatewayAmbiguous if money else GatewayUnavailable
        return error_class(
            f"{self.name} {operation}: unreadable response: {detail}",
            gateway=self.name,
            operation=operation,
            code="invalid_response",
            latency_ms=latency,
        )

    def _read(
        self,
        model: type[ModelT],
        response: httpx.Response,
        operation: str,
        latency: int,
        *,
        money: bool = False,
    ) -> ModelT:
        try:
            return model.model_validate(parse_json(response))
        except (ValueError, ValidationError) as exc:
            raise self._invalid_response(operation, latency, money, str(exc)) from exc

    def _amount(self, text: str, operation: str, latency: int, *, money: bool = False) -> int:
        try:
            return from_decimal_string(text)
        except ValueError as exc:
            raise self._invalid_response(operation, latency, money, str(exc)) from exc

    async def _existing(
        self, lookup: Awaitable[ResultT], taken: GatewayRejected, what: str
    ) -> ResultT:
        """Read back the resource an "id taken" answer names.

        Where that answer proves the id exists (``taken_is_certain``), "not found" now cannot
        mean "never arrived": it is reported as ambiguous so the engine queries again instead
        of going elsewhere; otherwise that refusal stands. A read-back that fails any other way
        is ambiguous too: the resource may exist, so the engine must ask again, never move on.
        """
        try:
            return await lookup
        except GatewayNotFound as exc:
            if not self.taken_is_certain:
                taken.latency_ms += exc.latency_ms
                raise taken from None
            raise self._unconfirmed(
                exc,
                "duplicate_not_visible",
                f"{self.provider} reported the {what} id as already used but cannot find it yet",
                operation=taken.operation,
                latency_ms=taken.latency_ms,
            ) from exc
        except GatewayError as exc:
            raise self._unconfirmed(
                exc,
                "duplicate_unconfirmed",
                f"{self.provider} reported the {what} id as already used and could not be "
                f"asked about it: {exc.message}",
                operation=taken.operation,
                latency_ms=taken.latency_ms,
            ) from exc

    def _unconfirmed(
        self, cause: GatewayError, code: str, message: str, *, operation: str, latency_ms: int
    ) -> GatewayAmbiguous:
        """An id of ours the provider holds (or may hold) but we cannot confirm as asked:
        ambiguous, so the engine asks again — never a refusal, never "go elsewhere"."""
        return GatewayAmbiguous(
            message,
            gateway=self.name,
            operation=operation,
            code=code,
            http_status=cause.http_status,
            provider_code=cause.provider_code,
            latency_ms=latency_ms + cause.latency_ms,
        )


def now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
