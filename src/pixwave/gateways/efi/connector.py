"""The Efí connector: PixWave's gateway protocol over Efí's API Pix (BCB standard + ``/v2/gn``).

Every id Efí sees is derived from our transaction's ``reference``, so a call repeated after a
lost response can only find — never duplicate — what the first one did:

* txid (cob) = the reference's alphanumerics, right-padded with ``0`` to 26, at most 35;
* idEnvio (send) and the devolução id (refund) = the reference's alphanumerics, at most 35.

A repeat that Efí answers with its "duplicate id" 409 is resolved by reading the existing
resource back.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
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
from pixwave.gateways.efi import schemas
from pixwave.gateways.efi.client import EfiClient, parse_json
from pixwave.gateways.efi.mapping import GATEWAY, charge_status, refund_status, send_status
from pixwave.gateways.efi.webhooks import EfiWebhookAuth, verify_webhook
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pixwave.gateways.http import Timeouts
from pixwave.kit.money import from_decimal_string, to_decimal_string
from pixwave.pix import PixFormatError, validate_document, validate_txid
from pixwave.pix import qr_png_base64 as render_qr_png_base64

PRODUCTION_URL: Final = "https://pix.api.efipay.com.br"
HOMOLOGATION_URL: Final = "https://pix-h.api.efipay.com.br"

#: BCB limit for ``solicitacaoPagador``, ``infoPagador`` and ``descricao``.
DESCRIPTION_MAX: Final = 140
_TXID_MIN: Final = 26
_ID_MAX: Final = 35
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_PNG_DATA_URI: Final = "data:image/png;base64,"

#: The cob status values our flow branches on.
_PAID = "CONCLUIDA"
_REMOVED = frozenset({"REMOVIDA_PELO_USUARIO_RECEBEDOR", "REMOVIDA_PELO_PSP"})
_REFUNDED = "DEVOLVIDO"

ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT", Send, Refund)


def _alphanumerics(reference: str, operation: str) -> str:
    value = _NON_ALNUM.sub("", reference)
    if not value:
        raise GatewayRejected(
            f"reference {reference!r} has no letters or digits to derive an Efí id from",
            gateway=GATEWAY,
            operation=operation,
            code="invalid_reference",
        )
    return value


def txid_for(reference: str, operation: str = "cob.create") -> str:
    """The cob txid of a reference: its alphanumerics, padded with 0 to 26, cut to 35."""
    txid = _alphanumerics(reference, operation).ljust(_TXID_MIN, "0")[:_ID_MAX]
    return validate_txid(txid)


def id_envio_for(reference: str, operation: str = "pix.send") -> str:
    """The idEnvio of a send reference: its alphanumerics, at most 35."""
    return _alphanumerics(reference, operation)[:_ID_MAX]


def devolucao_id_for(reference: str, operation: str = "pix.refund") -> str:
    """The devolução id of a refund reference: its alphanumerics, at most 35."""
    return _alphanumerics(reference, operation)[:_ID_MAX]


def _segment(value: str) -> str:
    """A path segment; ``@`` and ``+`` stay literal, as Efí's own SDK sends keys."""
    return quote(value, safe="@+")


def _description(text: str | None) -> str | None:
    return text[:DESCRIPTION_MAX] if text else None


def _strip_png_data_uri(image: str | None) -> str | None:
    """The base64 of a PNG data URI; None for anything else (an SVG sample exists)."""
    if image and image.startswith(_PNG_DATA_URI):
        return image[len(_PNG_DATA_URI) :]
    return None


class EfiConnector:
    """Efí (ex-Gerencianet) over its API Pix, with mTLS and OAuth2 client credentials."""

    name = GATEWAY
    capabilities = frozenset(
        {Capability.CHARGE, Capability.SEND, Capability.REFUND, Capability.WEBHOOK}
    )

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        pix_key: str,
        base_url: str = PRODUCTION_URL,
        certificate_path: str | None = None,
        timeouts: Timeouts = Timeouts(),
        webhook_auth: EfiWebhookAuth,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pix_key = pix_key
        self.webhook_auth = webhook_auth
        self._clock = clock
        self.client = EfiClient(
            base_url=base_url,
            client_id=client_id,
            client_secret=client_secret,
            certificate_path=certificate_path,
            timeouts=timeouts,
            clock=clock,
            transport=transport,
        )

    # --- charges -------------------------------------------------------------------------------

    async def create_charge(self, request: ChargeRequest) -> Charge:
        operation = "cob.create"
        txid = txid_for(request.reference, operation)
        body = schemas.CobCreate(
            calendario=schemas.CalendarioCreate(expiracao=request.expires_in),
            devedor=self._devedor(request, operation),
            valor=schemas.CobValor(original=to_decimal_string(request.amount)),
            chave=self.pix_key,
            solicitacaoPagador=_description(request.description),
        )
        path = f"/v2/cob/{txid}"
        try:
            response, latency = await self.client.request(
                operation, "PUT", path, mutates=True, json=body.model_dump(exclude_none=True)
            )
            cob = self._read(schemas.Cob, response, operation, latency)
        except GatewayRejected as exc:
            if exc.provider_code != "txid_duplicado":
                raise
            # Our own earlier attempt (its response lost) or another charge on the same id.
            cob, get_latency = await self._get_cob(txid)
            latency = exc.latency_ms + get_latency
            if self._amount(cob.valor.original, operation, latency) != request.amount:
                exc.latency_ms = latency
                raise
        brcode, image = cob.pixCopiaECola, None
        if not brcode:
            brcode, image, qr_latency = await self._qrcode(cob, operation)
            latency += qr_latency
        return self._charge(
            cob,
            operation=operation,
            reference=request.reference,
            brcode=brcode,
            qr_png_base64=_strip_png_data_uri(image) or render_qr_png_base64(brcode),
            latency_ms=latency,
        )

    async def get_charge(self, charge_id: str) -> Charge:
        cob, latency = await self._get_cob(charge_id)
        return self._charge(cob, latency_ms=latency)

    async def cancel_charge(self, charge_id: str) -> Charge:
        operation = "cob.cancel"
        cob, latency = await self._get_cob(charge_id)
        if cob.status in _REMOVED:
            return self._charge(cob, latency_ms=latency)
        if cob.status == _PAID:
            raise self._not_cancellable(cob, latency)
        patch = schemas.CobCancel().model_dump()
        try:
            response, patch_latency = await self.client.request(
                operation, "PATCH", f"/v2/cob/{_segment(charge_id)}", mutates=True, json=patch
            )
        except GatewayRejected as exc:
            if exc.http_status != 400:
                raise
            # Paid between our read and the PATCH: report it as such, not as a bad request.
            exc.latency_ms += latency
            cob, get_latency = await self._get_cob(charge_id)
            if cob.status == _PAID:
                raise self._not_cancellable(cob, exc.latency_ms + get_latency) from exc
            raise
        latency += patch_latency
        cancelled = self._read(schemas.Cob, response, operation, latency)
        return self._charge(cancelled, operation=operation, latency_ms=latency)

    # --- sends ---------------------------------------------------------------------------------

    async def send_pix(self, request: SendRequest) -> Send:
        operation = "pix.send"
        id_envio = id_envio_for(request.reference, operation)
        cpf = cnpj = None
        if request.recipient_document:
            kind, document = self._document(request.recipient_document, operation)
            cpf, cnpj = (document, None) if kind == "cpf" else (None, document)
        body = schemas.PixEnvioCreate(
            valor=to_decimal_string(request.amount),
            pagador=schemas.Pagador(
                chave=self.pix_key, infoPagador=_description(request.description)
            ),
            favorecido=schemas.Favorecido(chave=request.pix_key, cpf=cpf, cnpj=cnpj),
        )
        try:
            response, latency = await self.client.request(
                operation,
                "PUT",
                f"/v3/gn/pix/{id_envio}",
                mutates=True,
                moves_money=True,
                json=body.model_dump(exclude_none=True),
            )
        except GatewayRejected as exc:
            if exc.provider_code != "id_envio_duplicado":
                raise
            # Sent before (a lost response): report that send, never make a second one.
            found = await self._existing(self.get_send(request.reference, id_envio), exc, "send")
            return _with_latency(found, exc.latency_ms + found.latency_ms)
        created = self._read(schemas.PixEnvioCreated, response, operation, latency, money=True)
        return Send(
            gateway=GATEWAY,
            send_id=created.idEnvio or id_envio,
            reference=request.reference,
            status=send_status(created.status),
            provider_status=created.status,
            amount=(
                self._amount(created.valor, operation, latency, money=True)
                if created.valor
                else request.amount
            ),
            end_to_end_id=created.e2eId,
            latency_ms=latency,
        )

    async def get_send(self, reference: str, send_id: str | None = None) -> Send:
        operation = "pix.send.get"
        id_envio = send_id or id_envio_for(reference, operation)
        response, latency = await self.client.request(
            operation, "GET", f"/v2/gn/pix/enviados/id-envio/{_segment(id_envio)}", mutates=False
        )
        sent = self._read(schemas.PixEnviado, response, operation, latency)
        error = sent.gnExtras.erro if sent.gnExtras else None
        return Send(
            gateway=GATEWAY,
            send_id=sent.idEnvio or id_envio,
            reference=reference,
            status=send_status(sent.status),
            provider_status=sent.status,
            amount=self._amount(sent.valor, operation, latency),
            end_to_end_id=sent.endToEndId,
            failure_code=error.codigo if error else None,
            failure_message=error.motivo if error else None,
            latency_ms=latency,
        )

    # --- refunds -------------------------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> Refund:
        operation = "pix.refund"
        e2e = self._require_e2e(request.end_to_end_id, operation)
        refund_id = devolucao_id_for(request.reference, operation)
        body = schemas.DevolucaoCreate(valor=to_decimal_string(request.amount))
        try:
            response, latency = await self.client.request(
                operation,
                "PUT",
                f"/v2/pix/{_segment(e2e)}/devolucao/{refund_id}",
                mutates=True,
                moves_money=True,
                json=body.model_dump(exclude_none=True),
            )
        except GatewayRejected as exc:
            if exc.provider_code != "devolucao_id_duplicado":
                raise
            found = await self._existing(
                self.get_refund(
                    reference=request.reference,
                    charge_id=request.charge_id,
                    end_to_end_id=e2e,
                    refund_id=refund_id,
                ),
                exc,
                "refund",
            )
            return _with_latency(found, exc.latency_ms + found.latency_ms)
        devolucao = self._read(schemas.Devolucao, response, operation, latency, money=True)
        return self._refund(devolucao, request.reference, latency, money=True)

    async def get_refund(
        self, *, reference: str, charge_id: str, end_to_end_id: str | None, refund_id: str | None
    ) -> Refund:
        operation = "pix.refund.get"
        e2e = self._require_e2e(end_to_end_id, operation)
        devolucao_id = refund_id or devolucao_id_for(reference, operation)
        response, latency = await self.client.request(
            operation,
            "GET",
            f"/v2/pix/{_segment(e2e)}/devolucao/{_segment(devolucao_id)}",
            mutates=False,
        )
        devolucao = self._read(schemas.Devolucao, response, operation, latency)
        return self._refund(devolucao, reference, latency)

    # --- webhooks ------------------------------------------------------------------------------

    async def register_webhook(self, url: str, *, skip_mtls: bool) -> None:
        """Point Efí's notifications for our key at ``url`` (Efí appends ``/pix``).

        ``skip_mtls`` tells Efí not to require our server to verify its client certificate;
        the URL should then carry ``?hmac=<secret>&ignorar=`` (see :class:`EfiWebhookAuth`).
        """
        await self.client.request(
            "webhook.register",
            "PUT",
            f"/v2/webhook/{_segment(self.pix_key)}",
            mutates=True,
            json=schemas.WebhookCreate(webhookUrl=url).model_dump(),
            headers={"x-skip-mtls-checking": "true" if skip_mtls else "false"},
        )

    async def get_webhook(self) -> str | None:
        """The URL registered for our key, or None when there is none."""
        operation = "webhook.get"
        try:
            response, latency = await self.client.request(
                operation, "GET", f"/v2/webhook/{_segment(self.pix_key)}", mutates=False
            )
        except GatewayNotFound:
            return None
        return self._read(schemas.WebhookConfig, response, operation, latency).webhookUrl

    def verify_webhook(self, request: InboundWebhook) -> list[WebhookEvent]:
        return verify_webhook(self.webhook_auth, request)

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- helpers -------------------------------------------------------------------------------

    async def _get_cob(self, txid: str) -> tuple[schemas.Cob, int]:
        operation = "cob.get"
        response, latency = await self.client.request(
            operation, "GET", f"/v2/cob/{_segment(txid)}", mutates=False
        )
        return self._read(schemas.Cob, response, operation, latency), latency

    async def _qrcode(self, cob: schemas.Cob, operation: str) -> tuple[str, str | None, int]:
        """BR Code and image from the cob's location, for a cob returned without its BR Code."""
        if cob.loc is None:
            raise GatewayUnavailable(
                f"cob {cob.txid} has neither pixCopiaECola nor a location",
                gateway=GATEWAY,
                operation=operation,
                code="invalid_response",
            )
        qr_operation = "loc.qrcode"
        response, latency = await self.client.request(
            qr_operation, "GET", f"/v2/loc/{cob.loc.id}/qrcode", mutates=False
        )
        qrcode = self._read(schemas.LocQrCode, response, qr_operation, latency)
        return qrcode.qrcode, qrcode.imagemQrcode, latency

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
        if cob.status == "ATIVA" and expires_at is not None and self._clock() >= expires_at:
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
                if d.status == _REFUNDED
            )
        elif status is ChargeStatus.PAID:
            # CONCLUIDA without the pix list: the charge's fixed amount is what was paid.
            paid_amount = amount
        return Charge(
            gateway=GATEWAY,
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
            gateway=GATEWAY,
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

    @staticmethod
    def _document(raw: str, operation: str) -> tuple[str, str]:
        try:
            return validate_document(raw)
        except PixFormatError as exc:
            raise GatewayRejected(
                f"invalid CPF/CNPJ: {exc.message}",
                gateway=GATEWAY,
                operation=operation,
                code="invalid_document",
            ) from exc

    @staticmethod
    def _require_e2e(end_to_end_id: str | None, operation: str) -> str:
        if not end_to_end_id:
            raise GatewayRejected(
                "Efí refunds a received Pix by its endToEndId, and none was given",
                gateway=GATEWAY,
                operation=operation,
                code="missing_end_to_end_id",
            )
        return end_to_end_id

    @staticmethod
    def _not_cancellable(cob: schemas.Cob, latency: int) -> GatewayRejected:
        return GatewayRejected(
            f"cob {cob.txid} is {cob.status}: a paid charge cannot be cancelled",
            gateway=GATEWAY,
            operation="cob.cancel",
            code="charge_not_cancellable",
            provider_code=cob.status,
            latency_ms=latency,
        )

    @staticmethod
    def _invalid_response(operation: str, latency: int, money: bool, detail: str) -> GatewayError:
        """A 2xx we cannot read: on a money call it may have worked, so it is ambiguous."""
        error_class = GatewayAmbiguous if money else GatewayUnavailable
        return error_class(
            f"{GATEWAY} {operation}: unreadable response: {detail}",
            gateway=GATEWAY,
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

    @staticmethod
    async def _existing(lookup: Awaitable[ResultT], duplicate: GatewayError, what: str) -> ResultT:
        """Read back the resource a duplicate-id 409 names.

        Efí has just said the id exists, so "not found" now cannot mean "never arrived"; it
        is reported as ambiguous so the engine queries again instead of sending elsewhere.
        """
        try:
            return await lookup
        except GatewayNotFound as exc:
            raise GatewayAmbiguous(
                f"Efí reported the {what} id as already used but cannot find it yet",
                gateway=GATEWAY,
                operation=duplicate.operation,
                code="duplicate_not_visible",
                http_status=exc.http_status,
                provider_code=exc.provider_code,
                latency_ms=duplicate.latency_ms + exc.latency_ms,
            ) from exc


def _with_latency(result: ResultT, latency_ms: int) -> ResultT:
    return replace(result, latency_ms=latency_ms)
