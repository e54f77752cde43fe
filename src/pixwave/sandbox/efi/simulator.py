"""A stateful simulator of Efí's Pix API: the BCB "API Pix" plus Efí's ``/v2/gn`` extensions.

It speaks plain HTTP. Real Efí requires mutual TLS on every call (the account's certificate);
in a PixWave deployment mTLS is terminated in front of the service, and the official ``efipay``
SDK sends its certificate path to ``requests``, which ignores it for ``http://`` URLs — so the
SDK, PixWave's connector and tests all talk to the simulator unchanged.

What it keeps: OAuth tokens on the simulated clock, immediate charges (``cob``) and their
locations, received Pix and their refunds (devoluções), sent Pix, and webhook registrations.
Money is int centavos inside; Efí's ``"123.45"`` strings exist only on the wire.

Time-based outcomes (a send or refund settling, a magic-amount charge being paid) are scheduled
on the simulated clock ``settle_delay_seconds × time_scale`` ahead: a timer wakes the simulator
then, and advancing the clock past the due time settles them too (``tick``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from fastapi import APIRouter

from pixwave.kit.money import from_decimal_string
from pixwave.pix import (
    PixFormatError,
    PixKeyType,
    build_dynamic_brcode,
    generate_cpf,
    generate_end_to_end_id,
    generate_return_id,
    parse_pix_key,
    validate_cnpj,
    validate_cpf,
)
from pixwave.sandbox.callbacks import EFI_SCHEDULE
from pixwave.sandbox.core import Simulator
from pixwave.sandbox.efi.api import build_provider_router
from pixwave.sandbox.efi.auth import TokenStore
from pixwave.sandbox.efi.config import EfiSimConfig
from pixwave.sandbox.efi.errors import EfiError, efi_error, problem
from pixwave.sandbox.efi.payer import build_sandbox_router
from pixwave.sandbox.efi.schemas import (
    CobCreate,
    CobRevision,
    Devedor,
    RefundCreate,
    SendCreate,
    SendFavorecido,
)
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
from pixwave.sandbox.efi.webhooks import notify, received_item, refund_item, sent_item
from pixwave.sandbox.faults import Route, route

log = structlog.get_logger("pixwave.sandbox.efi")

#: Efí Pagamentos' ISPB: it creates the endToEndId of sends and the rtrId of refunds.
EFI_ISPB = "09089356"
LOCATION_HOST = "qrcodes-pix.gerencianet.com.br/v2/"
WRONG_ACCOUNT_KEY = "A chave informada não faz referência à conta Efí autenticada"

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

EFI_ROUTES: tuple[Route, ...] = (
    route("POST", "/oauth/token", "oauth.token"),
    route("POST", "/v2/cob", "cob.post"),
    route("GET", "/v2/cob", "cob.list"),
    route("PUT", "/v2/cob/{txid}", "cob.put"),
    route("PATCH", "/v2/cob/{txid}", "cob.patch"),
    route("GET", "/v2/cob/{txid}", "cob.get"),
    route("GET", "/v2/loc/{id}/qrcode", "loc.qrcode"),
    route("GET", "/v2/loc/{id}", "loc.get"),
    route("GET", "/v2/pix", "pix.list"),
    route("GET", "/v2/pix/{e2eId}", "pix.get"),
    route("PUT", "/v2/pix/{e2eId}/devolucao/{id}", "devolucao.put"),
    route("GET", "/v2/pix/{e2eId}/devolucao/{id}", "devolucao.get"),
    route("PUT", "/v3/gn/pix/{idEnvio}", "send.put"),
    route("PUT", "/v2/gn/pix/{idEnvio}", "send.put"),
    route("GET", "/v2/gn/pix/enviados/id-envio/{idEnvio}", "send.get"),
    route("GET", "/v2/gn/pix/enviados/{e2eId}", "send.get_e2e"),
    route("PUT", "/v2/webhook/{chave}", "webhook.put"),
    route("GET", "/v2/webhook/{chave}", "webhook.get"),
    route("DELETE", "/v2/webhook/{chave}", "webhook.delete"),
)


class EfiSimulator(Simulator[EfiSimConfig]):
    """Efí's Pix API for one account (see the module docstring)."""

    name = "efi"
    routes = EFI_ROUTES
    webhook_schedule = EFI_SCHEDULE
    webhook_timeout = 60.0

    def __init__(self, config: EfiSimConfig | None = None) -> None:
        super().__init__(config if config is not None else EfiSimConfig())
        self.state = EfiState()
        self.tokens = TokenStore()
        #: (due time, sequence, action) — a heap, so a wake-up looks only at what is due.
        self._due: list[tuple[datetime, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._apply_configured_webhook(previous_url=None)

    # --- Simulator hooks ------------------------------------------------------------------
    def provider_router(self) -> APIRouter:
        return build_provider_router(self)

    def sandbox_router(self) -> APIRouter:
        return build_sandbox_router(self)

    def error_body(self, status: int, reason: str) -> dict[str, Any]:
        """Efí's shape for injected faults.

        5xx is Efí's documented ``erro_aplicacao``. Efí documents the 500-requests/second limit
        but not the body of its 429; ``limite_requisicoes`` in the same shape is our assumption.
        """
        if status == 429:
            return {
                "nome": "limite_requisicoes",
                "mensagem": "Limite de requisições excedido, tente novamente em instantes",
            }
        mensagem = (
            "Serviço temporariamente indisponível"
            if reason == "outage"
            else "Ocorreu um erro interno ao processar a requisição"
        )
        return {"nome": "erro_aplicacao", "mensagem": mensagem}

    def clear_state(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        self.state = EfiState()
        self.tokens.revoke_all()
        self._apply_configured_webhook(previous_url=None)

    def counts(self) -> dict[str, int]:
        return {**self.state.counts(), "tokens": self.tokens.live(self.clock.now())}

    async def tick(self) -> None:
        """Run whatever is due on the simulated clock (settlements, magic payments)."""
        self.run_due()

    def update_config(self, changes: dict[str, Any]) -> None:
        previous_url = self.config.webhook_url
        super().update_config(changes)
        if self.config.webhook_url != previous_url:
            self._apply_configured_webhook(previous_url=previous_url)

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await super().aclose()

    # --- scheduling -----------------------------------------------------------------------
    def settle_delay(self) -> float:
        """Seconds until a send, refund or magic payment resolves."""
        return self.config.settle_delay_seconds * self.config.time_scale

    def schedule(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the settle delay has passed on the simulated clock."""
        delay = self.settle_delay()
        sequence = next(self._sequence)
        heapq.heappush(self._due, (self.clock.now() + timedelta(seconds=delay), sequence, action))
        self._timers[sequence] = asyncio.get_running_loop().call_later(delay, self._wake, sequence)

    def _wake(self, sequence: int) -> None:
        self._timers.pop(sequence, None)
        self.run_due()

    def run_due(self) -> None:
        """Run, in due order, every action the simulated clock has reached."""
        now = self.clock.now()
        while self._due and self._due[0][0] <= now:
            _, _, action = heapq.heappop(self._due)
            try:
                action()
            except Exception:  # one broken action must not stop the others
                log.exception("sandbox.efi.scheduled_action_failed")

    # --- webhooks registry ----------------------------------------------------------------
    def _apply_configured_webhook(self, previous_url: str | None) -> None:
        """``webhook_url`` in the configuration is registered for the account's key."""
        key = self.config.pix_key
        url = self.config.webhook_url
        if url is not None:
            self.state.webhooks[key] = Webhook(key, url, self.clock.now())
            return
        current = self.state.webhooks.get(key)
        if current is not None and previous_url is not None and current.url == previous_url:
            del self.state.webhooks[key]

    def owns_key(self, chave: str) -> bool:
        """Whether ``chave`` is the account's key (compared in canonical form)."""
        try:
            return parse_pix_key(chave).value == self.config.pix_key
        except PixFormatError:
            return False

    # --- charges --------------------------------------------------------------------------
    def new_location(self) -> tuple[int, str]:
        loc_id = self.state.allocate_loc_id()
        return loc_id, LOCATION_HOST + secrets.token_hex(16)

    def create_cob(self, txid: str, body: CobCreate) -> Cob:
        if txid in self.state.cobs:
            raise efi_error(
                409, "txid_duplicado", "Campo txid informado já foi utilizado em outra cobrança"
            )
        amount = self._positive_amount(body.valor.original, "valor.original")
        if not self.owns_key(body.chave):
            raise efi_error(400, "chave_invalida", WRONG_ACCOUNT_KEY)
        devedor = _devedor(body.devedor) if body.devedor is not None else None
        now = self.clock.now()
        loc_id, location = self.new_location()
        cob = Cob(
            txid=txid,
            created_at=now,
            expires_in=body.calendario.expiracao,
            amount=amount,
            chave=self.config.pix_key,
            loc_id=loc_id,
            location=location,
            loc_created_at=now,
            pix_copia_e_cola=build_dynamic_brcode(
                location_url=location,
                merchant_name=self.config.merchant_name,
                merchant_city=self.config.merchant_city,
            ),
            devedor=devedor,
            solicitacao_pagador=body.solicitacaoPagador,
            info_adicionais=(
                [i.model_dump() for i in body.infoAdicionais]
                if body.infoAdicionais is not None
                else None
            ),
            modalidade_alteracao=body.valor.modalidadeAlteracao,
        )
        self.state.cobs[txid] = cob
        self.state.locs[loc_id] = txid
        self.state.locations[location] = txid
        if self.config.magic_amounts and amount <= MAGIC_CONFIRMED_MAX:
            self.schedule(lambda: self._magic_pay(txid))
        log.info("sandbox.efi.cob.created", txid=txid, amount=amount)
        return cob

    def _magic_pay(self, txid: str) -> None:
        cob = self.state.cobs.get(txid)
        if cob is None or cob.status != "ATIVA" or cob.expired(self.clock.now()):
            return
        self.receive(cob, HOMOLOGATION_PAYER, info=None)

    def get_cob(self, txid: str) -> Cob:
        cob = self.state.cobs.get(txid)
        if cob is None:
            raise problem(
                404,
                "CobNaoEncontrado",
                "Cobrança não encontrada.",
                f"Nenhuma cobrança encontrada para o txid {txid}.",
            )
        return cob

    def cob_wire(self, cob: Cob) -> dict[str, Any]:
        pix = []
        for e2e_id in cob.pix:
            received = self.state.pix[e2e_id]
            item = received.wire()
            del item["componentesValor"]
            pix.append(item)
        return cob.wire(pix)

    def revise_cob(self, txid: str, body: CobRevision) -> Cob:
        cob = self.get_cob(txid)
        if cob.status != "ATIVA":
            # Efí's exact answer is not documented; the BCB's problem type for this case is.
            raise problem(
                400,
                "CobOperacaoInvalida",
                "Cobrança inválida.",
                f"A cobrança não pode ser alterada: seu status é {cob.status}.",
            )
        if body.chave is not None and not self.owns_key(body.chave):
            raise efi_error(400, "chave_invalida", WRONG_ACCOUNT_KEY)
        amount = (
            self._positive_amount(body.valor.original, "valor.original")
            if body.valor is not None
            else None
        )
        devedor = _devedor(body.devedor) if body.devedor is not None else None
        if body.loc is not None and body.loc.id != cob.loc_id:
            raise efi_error(400, "location_invalida", "A location informada não pode ser vinculada")
        changed = False
        if body.calendario is not None:
            cob.expires_in = body.calendario.expiracao
            changed = True
        if devedor is not None:
            cob.devedor = devedor
            changed = True
        if amount is not None and body.valor is not None:
            cob.amount = amount
            cob.modalidade_alteracao = body.valor.modalidadeAlteracao
            changed = True
        if body.solicitacaoPagador is not None:
            cob.solicitacao_pagador = body.solicitacaoPagador
            changed = True
        if body.infoAdicionais is not None:
            cob.info_adicionais = [i.model_dump() for i in body.infoAdicionais]
            changed = True
        if body.status is not None:
            cob.status = body.status
            changed = True
        if changed:  # BCB: revisao grows on every change except a loc-only one
            cob.revisao += 1
        return cob

    def cob_by_loc(self, loc_id: int) -> Cob:
        txid = self.state.locs.get(loc_id)
        if txid is None:
            raise efi_error(404, "location_nao_encontrada", "Location não encontrada")
        return self.state.cobs[txid]

    def cob_for_payment(self, *, location: str | None, txid: str | None) -> Cob | None:
        """The cob a BR Code points at: by its location (26-25), else by its txid (62-05)."""
        if location is not None:
            found = self.state.locations.get(location.removeprefix("https://"))
            if found is not None:
                return self.state.cobs[found]
        if txid is not None:
            return self.state.cobs.get(txid)
        return None

    # --- received Pix ---------------------------------------------------------------------
    def receive(self, cob: Cob, payer: Payer, info: str | None) -> ReceivedPix:
        """A payer's bank settles a Pix for ``cob``: record it, conclude the cob, notify."""
        now = self.clock.now()
        pix = ReceivedPix(
            e2e_id=generate_end_to_end_id(payer.ispb, at=now),
            txid=cob.txid,
            amount=cob.amount,
            chave=cob.chave,
            paid_at=now,
            payer=payer,
            info_pagador=info,
        )
        self.state.pix[pix.e2e_id] = pix
        cob.status = "CONCLUIDA"
        cob.pix.append(pix.e2e_id)
        notify(
            self.webhooks,
            self.state,
            chave=pix.chave,
            item=received_item(pix),
            topic="pix.received",
        )
        log.info("sandbox.efi.pix.received", txid=cob.txid, e2e_id=pix.e2e_id)
        return pix

    def get_pix(self, e2e_id: str) -> ReceivedPix:
        pix = self.state.pix.get(e2e_id)
        if pix is None:
            raise efi_error(
                404, "pix_nao_encontrado", "Nenhum pix encontrado para o identificador informado"
            )
        return pix

    # --- refunds --------------------------------------------------------------------------
    def create_refund(self, e2e_id: str, refund_id: str, body: RefundCreate) -> Refund:
        pix = self.get_pix(e2e_id)
        if refund_id in pix.refunds:
            raise efi_error(
                409, "devolucao_id_duplicado", "O id informado já foi utilizado em outra devolução"
            )
        amount = self._positive_amount(body.valor, "valor")
        if body.natureza != "ORIGINAL":
            # RETIRADA refers to Pix Saque/Troco, which the simulator never receives.
            raise efi_error(
                400, "valor_invalido", "Natureza RETIRADA só se aplica a Pix Saque ou Pix Troco"
            )
        available = pix.amount - pix.refunded_amount()
        if amount > available:
            # The name and text of this error are not documented; valor_invalido is the
            # closest documented name.
            raise efi_error(
                400,
                "valor_invalido",
                "Valor da devolução é maior que o valor disponível para devolução",
            )
        # The BCB's 90-day refund window is not enforced: tests would need a year of clock.
        now = self.clock.now()
        refund = Refund(
            id=refund_id,
            rtr_id=generate_return_id(EFI_ISPB, at=now),
            e2e_id=e2e_id,
            amount=amount,
            natureza=body.natureza,
            requested_at=now,
            descricao=body.descricao,
        )
        pix.refunds[refund_id] = refund
        self.schedule(lambda: self._settle_refund(e2e_id, refund_id))
        log.info("sandbox.efi.refund.requested", e2e_id=e2e_id, id=refund_id, amount=amount)
        return refund

    def _settle_refund(self, e2e_id: str, refund_id: str) -> None:
        pix = self.state.pix.get(e2e_id)
        refund = pix.refunds.get(refund_id) if pix is not None else None
        if pix is None or refund is None or refund.final:
            return
        if self.config.magic_amounts and refund.amount == MAGIC_REFUND_REJECTED:
            refund.status = "NAO_REALIZADO"
            refund.motivo = "Devolução não realizada: valor de teste R$ 0,01 é sempre recusado"
        else:
            refund.status = "DEVOLVIDO"
            refund.settled_at = self.clock.now()
        notify(
            self.webhooks,
            self.state,
            chave=pix.chave,
            item=refund_item(pix, refund),
            topic="pix.refund",
        )

    def get_refund(self, e2e_id: str, refund_id: str) -> Refund:
        refund = self.get_pix(e2e_id).refunds.get(refund_id)
        if refund is None:
            # Efí does not document this case; the BCB problem type for it is used.
            raise problem(
                404,
                "PixDevolucaoNaoEncontrada",
                "Devolução não encontrada.",
                f"Nenhuma devolução {refund_id} encontrada para o Pix {e2e_id}.",
            )
        return refund

    # --- sends ----------------------------------------------------------------------------
    def create_send(self, id_envio: str, body: SendCreate) -> Send:
        amount = self._positive_amount(body.valor, "valor")
        if not self.owns_key(body.pagador.chave):
            raise efi_error(400, "chave_invalida", WRONG_ACCOUNT_KEY)
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
        log.info("sandbox.efi.send.requested", id_envio=id_envio, amount=amount)
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
        notify(
            self.webhooks,
            self.state,
            chave=send.pagador_chave,
            item=sent_item(send),
            topic="pix.sent",
        )
        log.info("sandbox.efi.send.finished", id_envio=send.id_envio, status=send.status)

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

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _positive_amount(text: str, field: str) -> int:
        amount = from_decimal_string(text)
        if amount <= 0:
            raise efi_error(400, "valor_invalido", f"Campo {field} deve ser maior que zero")
        return amount


def _send_not_found(detail: str) -> EfiError:
    return problem(404, "PixEnviadoNaoEncontrado", "Não Encontrado", detail)


def _devedor(devedor: Devedor) -> dict[str, str]:
    """Check the document's digits; Efí answers 400 naming the field when they are wrong."""
    # Efí documents the message, not the ``nome``, of this error; valor_invalido is assumed.
    if devedor.cpf is not None:
        try:
            return {"cpf": validate_cpf(devedor.cpf), "nome": devedor.nome}
        except PixFormatError:
            raise efi_error(
                400, "valor_invalido", "Documento CPF em devedor.cpf é inválido"
            ) from None
    assert devedor.cnpj is not None
    try:
        return {"cnpj": validate_cnpj(devedor.cnpj), "nome": devedor.nome}
    except PixFormatError:
        raise efi_error(
            400, "valor_invalido", "Documento CNPJ em devedor.cnpj é inválido"
        ) from None


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
