"""The Efí connector: the standard API Pix connector (``gateways/pixapi``) plus Efí's ``/gn``.

Efí speaks the Central Bank's API Pix under ``/v2`` of its host, so charges, received Pix,
refunds and webhooks are the standard family's code; what is Efí's own lives here: its
dedicated "id already used" 409s (``txid_duplicado``, ``devolucao_id_duplicado``,
``id_envio_duplicado``), its QR code route for a cob returned without its BR Code, and sends.

Every id Efí sees is derived from our transaction's ``reference``, so a call repeated after a
lost response can only find — never duplicate — what the first one did:

* txid (cob) = the reference's alphanumerics, right-padded with ``0`` to 26, at most 35;
* idEnvio (send) and the devolução id (refund) = the reference's alphanumerics, at most 35.

A repeat that Efí answers with its "duplicate id" 409 is resolved by reading the existing
resource back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Final

import httpx

from pixwave.gateways.base import Capability, Send, SendRequest
from pixwave.gateways.efi import schemas
from pixwave.gateways.efi.client import EfiClient
from pixwave.gateways.efi.mapping import GATEWAY, send_status
from pixwave.gateways.efi.webhooks import NOTIFICATIONS, EfiWebhookAuth
from pixwave.gateways.errors import GatewayRejected, GatewayUnavailable
from pixwave.gateways.http import Timeouts
from pixwave.gateways.pixapi import connector as standard
from pixwave.gateways.pixapi.connector import (
    DESCRIPTION_MAX,
    PixApiConnector,
    alphanumerics,
    description,
    segment,
    with_latency,
)
from pixwave.kit.money import to_decimal_string

__all__ = [
    "DESCRIPTION_MAX",
    "HOMOLOGATION_URL",
    "PRODUCTION_URL",
    "EfiConnector",
    "devolucao_id_for",
    "id_envio_for",
    "txid_for",
]

PRODUCTION_URL: Final = "https://pix.api.efipay.com.br"
HOMOLOGATION_URL: Final = "https://pix-h.api.efipay.com.br"

PROVIDER: Final = "Efí"
_ID_MAX: Final = 35
_PNG_DATA_URI: Final = "data:image/png;base64,"


def txid_for(reference: str, operation: str = "cob.create") -> str:
    """The cob txid of a reference: its alphanumerics, padded with 0 to 26, cut to 35."""
    return standard.txid_for(reference, operation, gateway=GATEWAY, provider=PROVIDER)


def id_envio_for(reference: str, operation: str = "pix.send") -> str:
    """The idEnvio of a send reference: its alphanumerics, at most 35."""
    return alphanumerics(reference, operation, gateway=GATEWAY, provider=PROVIDER)[:_ID_MAX]


def devolucao_id_for(reference: str, operation: str = "pix.refund") -> str:
    """The devolução id of a refund reference: its alphanumerics, at most 35."""
    return standard.devolucao_id_for(reference, operation, gateway=GATEWAY, provider=PROVIDER)


def _strip_png_data_uri(image: str | None) -> str | None:
    """The base64 of a PNG data URI; None for anything else (an SVG sample exists)."""
    if image and image.startswith(_PNG_DATA_URI):
        return image[len(_PNG_DATA_URI) :]
    return None


class EfiConnector(PixApiConnector):
    """Efí (ex-Gerencianet) over its API Pix, with mTLS and OAuth2 client credentials."""

    capabilities = frozenset(
        {Capability.CHARGE, Capability.SEND, Capability.REFUND, Capability.WEBHOOK}
    )
    api_path: ClassVar[str] = "/v2"
    charge_taken: ClassVar[frozenset[str]] = frozenset({"txid_duplicado"})
    refund_taken: ClassVar[frozenset[str]] = frozenset({"devolucao_id_duplicado"})
    taken_is_certain: ClassVar[bool] = True
    search_pix_by_txid: ClassVar[bool] = False

    client: EfiClient
    webhook_auth: EfiWebhookAuth

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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        clock = clock or standard.now
        client = EfiClient(
            base_url=base_url,
            client_id=client_id,
            client_secret=client_secret,
            certificate_path=certificate_path,
            timeouts=timeouts,
            clock=clock,
            transport=transport,
        )
        self._bind(
            name=GATEWAY,
            provider=PROVIDER,
            pix_key=pix_key,
            webhook_auth=webhook_auth,
            client=client,
            clock=clock,
        )
        self.notifications = NOTIFICATIONS

    # --- ids: Efí's module functions, so tests and tools compute the same ------------------------

    def txid_for(self, reference: str, operation: str = "cob.create") -> str:
        return txid_for(reference, operation)

    def devolucao_id_for(self, reference: str, operation: str = "pix.refund") -> str:
        return devolucao_id_for(reference, operation)

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
                chave=self.pix_key, infoPagador=description(request.description)
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
            return with_latency(found, exc.latency_ms + found.latency_ms)
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
            operation, "GET", f"/v2/gn/pix/enviados/id-envio/{segment(id_envio)}", mutates=False
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

    # --- webhooks ------------------------------------------------------------------------------

    async def register_webhook(self, url: str, *, skip_mtls: bool = False) -> None:
        """Point Efí's notifications for our key at ``url`` (Efí appends ``/pix``).

        ``skip_mtls`` tells Efí not to require our server to verify its client certificate;
        the URL should then carry ``?hmac=<secret>&ignorar=`` (see :class:`EfiWebhookAuth`).
        """
        await self._put_webhook(
            url, headers={"x-skip-mtls-checking": "true" if skip_mtls else "false"}
        )

    # --- helpers -------------------------------------------------------------------------------

    async def _brcode(self, cob: schemas.Cob, operation: str) -> tuple[str, str | None, int]:
        """BR Code and image from Efí's ``/v2/loc/{id}/qrcode``, for a cob without its code."""
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
        return qrcode.qrcode, _strip_png_data_uri(qrcode.imagemQrcode), latency
