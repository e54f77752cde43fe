"""A stateful simulator of Efí's Pix API: the standard API Pix simulator (``sandbox/pixapi``)
plus Efí's extensions.

It speaks plain HTTP. Real Efí requires mutual TLS on every call (the account's certificate);
in a PixWave deployment mTLS is terminated in front of the service, and the official ``efipay``
SDK sends its certificate path to ``requests``, which ignores it for ``http://`` URLs — so the
SDK, PixWave's connector and tests all talk to the simulator unchanged.

What the standard simulator keeps (OAuth tokens, cobs and their locations, received Pix and
their refunds, webhook registrations) and its rules are shared; Efí adds its own error dialect
(``errors.py``), its JSON token request, ``GET /v2/loc/{id}/qrcode``, sends under ``/gn`` with
their notifications, and its homologation's magic amounts.

Time-based outcomes (a send or refund settling, a magic-amount charge being paid) are scheduled
on the simulated clock ``settle_delay_seconds × time_scale`` ahead: a timer wakes the simulator
then, and advancing the clock past the due time settles them too (``tick``).
"""

from __future__ import annotations

import random
from typing import Any, Final, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from pixwave.pix import (
    PixFormatError,
    PixKeyType,
    generate_cpf,
    generate_end_to_end_id,
    parse_pix_key,
    validate_cnpj,
    validate_cpf,
)
from pixwave.sandbox.efi.api import build_provider_router
from pixwave.sandbox.efi.auth import SCOPE_SET, SCOPES, check_grant
from pixwave.sandbox.efi.config import EfiSimConfig
from pixwave.sandbox.efi.errors import WRONG_ACCOUNT_KEY, EfiError, EfiErrors, efi_error, problem
from pixwave.sandbox.efi.payer import build_sandbox_router
from pixwave.sandbox.efi.schemas import SendCreate, SendFavorecido
from pixwave.sandbox.efi.state import (
    Cob,
    EfiState,
    Payer,
    ReceivedPix,
    Refund,
    Send,
    SendError,
    Webhook,
)
from pixwave.sandbox.efi.webhooks import received_item, sent_item
from pixwave.sandbox.faults import Route, route
from pixwave.sandbox.pixapi.simulator import PIXAPI_ROUTES, PixSimulator

__all__ = ["EFI_ISPB", "EFI_ROUTES", "LOCATION_HOST", "WRONG_ACCOUNT_KEY", "EfiSimulator"]

#: Efí Pagamentos' ISPB: it creates the endToEndId of sends and the rtrId of refunds.
EFI_ISPB: Final = "09089356"
LOCATION_HOST: Final = "qrcodes-pix.gerencianet.com.br/v2/"

#: Homologation payer of auto-paid magic charges (Efí's own sample in its webhook docs).
HOMOLOGATION_PAYER = Payer(
    name="Consultoria Efi", document_kind="cnpj", document="09089356000118", ispb="00416968"
)
#: Why a send fails when nobody says otherwise (AC03: receiver account invalid, SPI catalog).
DEFAULT_SEND_ERROR = SendError(
    codigo="AC03",
    origem="PSP do usuário recebedor",
    motivo="Número da conta transacional do usuário recebedor inexistente ou inválido",
)

# Magic values of Efí's homologation, in centavos (see the reference, §2.2, §2.5, §2.6).
MAGIC_CONFIRMED_MAX = 10_00  # R$0.01–10.00: cob auto-paid; send REALIZADO via webhook
MAGIC_REJECTED_MAX = 20_00  # R$10.01–20.00: send NAO_REALIZADO via webhook
MAGIC_REFUND_REJECTED = 1  # a R$0.01 refund ends NAO_REALIZADO
# Left out on purpose: sends of R$4.00 / R$5.00 producing *received* refunds (PixWave has no
# use for refunds of its own sends) and homologation's rule that key sends only resolve for
# efipay@sejaefi.com.br (it would make every other test key useless).

#: The standard's routes, Efí's QR code route and its sends.
EFI_ROUTES: Final[tuple[Route, ...]] = (
    *PIXAPI_ROUTES,
    route("GET", "/v2/loc/{id}/qrcode", "loc.qrcode"),
    route("PUT", "/v3/gn/pix/{idEnvio}", "send.put"),
    route("PUT", "/v2/gn/pix/{idEnvio}", "send.put"),
    route("GET", "/v2/gn/pix/enviados/id-envio/{idEnvio}", "send.get"),
    route("GET", "/v2/gn/pix/enviados/{e2eId}", "send.get_e2e"),
)


class EfiSimulator(PixSimulator[EfiSimConfig, EfiState]):
    """Efí's Pix API for one account (see the module docstring)."""

    name = "efi"
    routes = EFI_ROUTES

    def __init__(self, config: EfiSimConfig | None = None) -> None:
        super().__init__(config if config is not None else EfiSimConfig(), EfiErrors())

    # --- the standard simulator's hooks ---------------------------------------------------
    def new_state(self) -> EfiState:
        return EfiState()

    @property
    def psp_ispb(self) -> str:
        return EFI_ISPB

    @property
    def location_host(self) -> str:
        return LOCATION_HOST

    def grant(self, raw: bytes, content_type: str) -> tuple[frozenset[str], str]:
        """Efí's SDK posts JSON and names no scope: the application's scopes, all of them."""
        check_grant(raw, self.errors)
        return SCOPE_SET, SCOPES

    def webhook_registered(self, webhook: Webhook, request: Request) -> Response:
        # Efí's extension header; the BCB spec answers 200 without a body, and the URL is
        # echoed so SDKs get JSON.
        webhook.skip_mtls = request.headers.get("x-skip-mtls-checking", "").lower() == "true"
        return JSONResponse({"webhookUrl": webhook.url})

    def received_item(self, pix: ReceivedPix) -> dict[str, Any]:
        return received_item(pix)

    def on_cob_created(self, cob: Cob) -> None:
        if self.config.magic_amounts and cob.amount <= MAGIC_CONFIRMED_MAX:
            txid = cob.txid
            self.schedule(lambda: self._magic_pay(txid))

    def records(self) -> list[dict[str, Any]]:
        """The standard's records plus every Pix sent."""
        sends = [
            {
                "kind": "send",
                "id": send.id_envio,
                "reference": send.id_envio,
                "parent": None,
                "amount": send.amount,
                "status": send.status,
                "done": send.final,
                "moved": send.status == "REALIZADO",
            }
            for send in self.state.sends.values()
        ]
        return [*super().records(), *sends]

    def refund_failure(self, refund: Refund) -> str | None:
        if self.config.magic_amounts and refund.amount == MAGIC_REFUND_REJECTED:
            return "Devolução não realizada: valor de teste R$ 0,01 é sempre recusado"
        return None

    def provider_router(self) -> APIRouter:
        return build_provider_router(self)

    def sandbox_router(self) -> APIRouter:
        return build_sandbox_router(self)

    # --- magic payments -------------------------------------------------------------------
    def _magic_pay(self, txid: str) -> None:
        cob = self.state.cobs.get(txid)
        if cob is None or cob.status != "ATIVA" or cob.expired(self.clock.now()):
            return
        self.receive(cob, HOMOLOGATION_PAYER, info=None)

    # --- sends ----------------------------------------------------------------------------
    def create_send(self, id_envio: str, body: SendCreate) -> Send:
        amount = self._positive_amount(body.valor, "send", "valor")
        if not self.owns_key(body.pagador.chave):
            raise self.errors.key_not_owned()
        try:
            key = parse_pix_key(body.favorecido.chave)
        except PixFormatError:
            raise efi_error(
                400, "chave_invalida", "A chave Pix informada em favorecido.chave é inválida"
            ) from None
        kind, document = _receiver_document(key.type, key.value, body.favorecido)
        if id_envio in self.state.sends:
            raise efi_error(
                409,
                "id_envio_duplicado",
                "O campo idEnvio informado já foi utilizado em outra solicitação de envio",
            )
        # Efí also requires a webhook on pagador.chave before it accepts a send; that rule is
        # not enforced, so a test may send first and look at the result by query.
        if self.config.magic_amounts and amount > MAGIC_REJECTED_MAX:
            # "Rejected already in the request, no webhook" read as a 422 pagamento_negado,
            # Efí's documented synchronous refusal; nothing is recorded.
            raise efi_error(422, "pagamento_negado", "Pagamento negado por análises")
        now = self.clock.now()
        send = Send(
            id_envio=id_envio,
            e2e_id=generate_end_to_end_id(EFI_ISPB, at=now),
            amount=amount,
            pagador_chave=self.config.pix_key,
            favorecido_chave=key.value,
            favorecido_document_kind=kind,
            favorecido_document=document,
            favorecido_name="FAVORECIDO SANDBOX",
            requested_at=now,
            info_pagador=body.pagador.infoPagador,
        )
        self.state.sends[id_envio] = send
        self.state.sends_by_e2e[send.e2e_id] = id_envio
        if self.config.magic_amounts:
            succeed = amount <= MAGIC_CONFIRMED_MAX
            self.schedule(lambda: self._auto_finish(id_envio, succeed))
        elif self.config.auto_settle_sends:
            self.schedule(lambda: self._auto_finish(id_envio, True))
        self.log.info("sandbox.efi.send.requested", id_envio=id_envio, amount=amount)
        return send

    def _auto_finish(self, id_envio: str, succeed: bool) -> None:
        send = self.state.sends.get(id_envio)
        if send is not None and not send.final:
            self.finish_send(send, succeed=succeed)

    def finish_send(self, send: Send, *, succeed: bool, reason: str | None = None) -> None:
        """Move a send to REALIZADO or NAO_REALIZADO and notify the account's webhook."""
        if succeed:
            send.status = "REALIZADO"
            send.settled_at = self.clock.now()
        else:
            send.status = "NAO_REALIZADO"
            send.error = (
                DEFAULT_SEND_ERROR
                if reason is None
                else SendError(DEFAULT_SEND_ERROR.codigo, DEFAULT_SEND_ERROR.origem, reason)
            )
        self.notify(send.pagador_chave, sent_item(send), "pix.sent")
        self.log.info("sandbox.efi.send.finished", id_envio=send.id_envio, status=send.status)

    def send_by_id(self, id_envio: str) -> Send:
        send = self.state.sends.get(id_envio)
        if send is None:
            raise _send_not_found(f"Nenhum Pix enviado encontrado para o idEnvio {id_envio}")
        return send

    def send_by_e2e(self, e2e_id: str) -> Send:
        id_envio = self.state.sends_by_e2e.get(e2e_id)
        if id_envio is None:
            raise _send_not_found(f"Nenhum Pix enviado encontrado para o e2eId {e2e_id}")
        return self.state.sends[id_envio]


def _send_not_found(detail: str) -> EfiError:
    return problem(404, "PixEnviadoNaoEncontrado", "Não Encontrado", detail)


def _receiver_document(
    key_type: PixKeyType, key: str, favorecido: SendFavorecido
) -> tuple[Literal["cpf", "cnpj"], str]:
    """The receiver's document: the one given (checked against a CPF/CNPJ key), the key itself
    when it is a document, else a stable made-up CPF so the masked identification has one."""
    given: tuple[Literal["cpf", "cnpj"], str] | None = None
    try:
        if favorecido.cpf is not None:
            given = ("cpf", validate_cpf(favorecido.cpf))
        elif favorecido.cnpj is not None:
            given = ("cnpj", validate_cnpj(favorecido.cnpj))
    except PixFormatError:
        field = "cpf" if favorecido.cpf is not None else "cnpj"
        raise efi_error(
            400,
            "valor_invalido",
            f"Documento {field.upper()} em favorecido.{field} é inválido",
        ) from None
    own: tuple[Literal["cpf", "cnpj"], str] | None = None
    if key_type is PixKeyType.CPF:
        own = ("cpf", key)
    elif key_type is PixKeyType.CNPJ:
        own = ("cnpj", key)
    if given is not None and own is not None and given != own:
        raise efi_error(
            400,
            "chave_nao_pertence_ao_documento",
            "A chave informada não pertence ao documento informado",
        )
    if given is not None:
        return given
    if own is not None:
        return own
    return "cpf", generate_cpf(random.Random(key))  # noqa: S311 - a stable fake, not a secret
