"""A stateful simulator of a PSP's standard API Pix (the Central Bank's, v2.9.0).

It answers only the standard's paths and shapes, under ``/v2`` as PSPs publish them, plus the
OAuth2 token route at ``/oauth/token``: immediate charges (``cob``) and their locations, the Pix
that pay them and their refunds (``devolucao``), and webhook registrations — every error in the
standard's RFC 7807 shape. It speaks plain HTTP: real PSPs require mutual TLS on every call;
in a PixWave deployment mTLS is terminated in front of the service.

:class:`PixSimulator` holds what every API Pix simulator does — the records, the scheduling on
the simulated clock, the rules of charges, payments and refunds, notifications — and asks its
:class:`~pixwave.sandbox.pixapi.errors.Errors` for every error answer. :class:`PixApiSimulator`
is the standard itself; Efí's simulator (``sandbox/efi``) extends the base with its own
dialect and routes.

Money is int centavos inside; the standard's ``"123.45"`` strings exist only on the wire.
Time-based outcomes (a refund settling) are scheduled on the simulated clock
``settle_delay_seconds × time_scale`` ahead: a timer wakes the simulator then, and advancing
the clock past the due time settles them too (``tick``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, Generic, TypeVar

import structlog
from fastapi import APIRouter, Request, Response

from pixwave.kit.money import from_decimal_string
from pixwave.pix import (
    PixFormatError,
    build_dynamic_brcode,
    generate_end_to_end_id,
    generate_return_id,
    parse_pix_key,
    validate_cnpj,
    validate_cpf,
)
from pixwave.sandbox.core import Simulator
from pixwave.sandbox.faults import Route, route
from pixwave.sandbox.pixapi.api import build_provider_router
from pixwave.sandbox.pixapi.auth import STANDARD_SCOPES, TokenStore, form_grant
from pixwave.sandbox.pixapi.config import PixAccountConfig, PixApiSimConfig
from pixwave.sandbox.pixapi.errors import ApiError, Errors, InvalidInput, problem
from pixwave.sandbox.pixapi.payer import build_sandbox_router
from pixwave.sandbox.pixapi.schemas import CobCreate, CobRevision, Devedor, RefundCreate
from pixwave.sandbox.pixapi.state import Cob, Payer, PixState, ReceivedPix, Refund, Webhook
from pixwave.sandbox.pixapi.webhooks import notify, received_item, refund_item

#: The standard's paths, as PSPs publish them (under ``/v2``), with their fault operations.
PIXAPI_ROUTES: Final[tuple[Route, ...]] = (
    route("POST", "/oauth/token", "oauth.token"),
    route("POST", "/v2/cob", "cob.post"),
    route("GET", "/v2/cob", "cob.list"),
    route("PUT", "/v2/cob/{txid}", "cob.put"),
    route("PATCH", "/v2/cob/{txid}", "cob.patch"),
    route("GET", "/v2/cob/{txid}", "cob.get"),
    route("GET", "/v2/loc/{id}", "loc.get"),
    route("GET", "/v2/pix", "pix.list"),
    route("GET", "/v2/pix/{e2eId}", "pix.get"),
    route("PUT", "/v2/pix/{e2eId}/devolucao/{id}", "devolucao.put"),
    route("GET", "/v2/pix/{e2eId}/devolucao/{id}", "devolucao.get"),
    route("GET", "/v2/webhook", "webhook.list"),
    route("PUT", "/v2/webhook/{chave}", "webhook.put"),
    route("GET", "/v2/webhook/{chave}", "webhook.get"),
    route("DELETE", "/v2/webhook/{chave}", "webhook.delete"),
)

ConfigT = TypeVar("ConfigT", bound=PixAccountConfig)
StateT = TypeVar("StateT", bound=PixState)


#: Seconds between notification attempts: the standard sets no schedule, so its simulator keeps
#: the one a PSP publishes (5, 10, 20 … 1280 minutes, then 36.5 days).
WEBHOOK_SCHEDULE: tuple[float, ...] = tuple(
    m * 60 for m in (5, 10, 20, 40, 80, 160, 320, 640, 1280, 52560)
)


class PixSimulator(Simulator[ConfigT], Generic[ConfigT, StateT]):
    """What every API Pix simulator shares; subclasses name their dialect and routes."""

    webhook_schedule: ClassVar[tuple[float, ...]] = WEBHOOK_SCHEDULE
    webhook_timeout: ClassVar[float] = 60.0

    state: StateT
    errors: Errors

    def __init__(self, config: ConfigT, errors: Errors) -> None:
        super().__init__(config)
        self.errors = errors
        self.state = self.new_state()
        self.tokens = TokenStore()
        self.log = structlog.get_logger(f"pixwave.sandbox.{self.name}")
        #: (due time, sequence, action) — a heap, so a wake-up looks only at what is due.
        self._due: list[tuple[datetime, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._apply_configured_webhook(previous_url=None)

    # --- what a PSP decides ---------------------------------------------------------------
    def new_state(self) -> StateT:
        raise NotImplementedError

    @property
    def gateway(self) -> str:
        """The gateway this simulator plays, as the sandbox routes report it."""
        return self.name

    @property
    def psp_ispb(self) -> str:
        """The PSP's ISPB, which opens the rtrId of its refunds."""
        raise NotImplementedError

    @property
    def location_host(self) -> str:
        raise NotImplementedError

    def grant(self, raw: bytes, content_type: str) -> tuple[frozenset[str], str]:
        """The scopes a token request is granted, and how the answer's ``scope`` says them."""
        requested = form_grant(raw, content_type, self.errors)
        if requested is None:
            granted = STANDARD_SCOPES
        else:
            unknown = requested - STANDARD_SCOPES
            if unknown:
                raise self.errors.oauth(
                    400, "invalid_scope", f"Escopos desconhecidos: {' '.join(sorted(unknown))}"
                )
            granted = requested
        return granted, " ".join(sorted(granted))

    def webhook_registered(self, webhook: Webhook, request: Request) -> Response:
        """The answer to ``PUT /webhook/{chave}``: 200 without a body (the standard)."""
        return Response(status_code=200)

    def webhook_wire(self, webhook: Webhook) -> dict[str, Any]:
        return webhook.wire()

    def received_item(self, pix: ReceivedPix) -> dict[str, Any]:
        return received_item(pix)

    def on_cob_created(self, cob: Cob) -> None:
        """Called once a cob exists (Efí's homologation pays some by itself)."""

    def refund_failure(self, refund: Refund) -> str | None:
        """Why a refund will end NAO_REALIZADO, or None: it is DEVOLVIDO."""
        return None

    # --- Simulator hooks ------------------------------------------------------------------
    def error_body(self, status: int, reason: str) -> dict[str, Any]:
        return self.errors.fault_body(status, reason)

    def error_media_type(self) -> str:
        return self.errors.fault_media_type

    def clear_state(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        self.state = self.new_state()
        self.tokens.revoke_all()
        self._apply_configured_webhook(previous_url=None)

    def counts(self) -> dict[str, int]:
        return {**self.state.counts(), "tokens": self.tokens.live(self.clock.now())}

    def records(self) -> list[dict[str, Any]]:
        """Cobs (paid once a Pix with their txid arrived) and the devoluções of each Pix."""
        paid: dict[str, int] = {}
        found: list[dict[str, Any]] = []
        for pix in self.state.pix.values():
            if pix.txid is not None:
                paid[pix.txid] = paid.get(pix.txid, 0) + 1
            found.extend(
                {
                    "kind": "refund",
                    "id": refund.id,
                    "reference": refund.id,
                    "parent": pix.txid,
                    "amount": refund.amount,
                    "status": refund.status,
                    "done": refund.status != "EM_PROCESSAMENTO",
                    "moved": refund.status == "DEVOLVIDO",
                }
                for refund in pix.refunds.values()
            )
        for cob in self.state.cobs.values():
            found.append(
                {
                    "kind": "charge",
                    "id": cob.txid,
                    "reference": cob.txid,
                    "parent": None,
                    "amount": cob.amount,
                    "status": cob.status,
                    "done": cob.status != "ATIVA",
                    "moved": cob.txid in paid,
                    "payments": paid.get(cob.txid, 0),
                }
            )
        return found

    async def tick(self) -> None:
        """Run whatever is due on the simulated clock (settlements)."""
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

    # --- input ----------------------------------------------------------------------------
    @contextmanager
    def reading(self, resource: str) -> Iterator[None]:
        """Turn input violations met in the block into the dialect's answer for ``resource``."""
        try:
            yield
        except InvalidInput as exc:
            raise self.errors.invalid_input(resource, exc.violations) from None

    # --- scheduling -----------------------------------------------------------------------
    def settle_delay(self) -> float:
        """Seconds until a scheduled outcome (a refund settling) happens."""
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
                self.log.exception(f"sandbox.{self.name}.scheduled_action_failed")

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

    def notify(self, chave: str, item: dict[str, Any], topic: str) -> bool:
        return notify(self.webhooks, self.state, chave=chave, item=item, topic=topic)

    # --- charges --------------------------------------------------------------------------
    def new_location(self) -> tuple[int, str]:
        loc_id = self.state.allocate_loc_id()
        return loc_id, self.location_host + secrets.token_hex(16)

    def create_cob(self, txid: str, body: CobCreate) -> Cob:
        existing = self.state.cobs.get(txid)
        if existing is not None:
            refusal = self.errors.txid_in_use(existing.status)
            if refusal is not None:
                raise refusal
            return self._replace_cob(existing, body)
        amount = self._positive_amount(body.valor.original, "cob", "valor.original")
        if not self.owns_key(body.chave):
            raise self.errors.key_not_owned()
        devedor = self._devedor(body.devedor) if body.devedor is not None else None
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
        self.on_cob_created(cob)
        self.log.info(f"sandbox.{self.name}.cob.created", txid=txid, amount=amount)
        return cob

    def _replace_cob(self, cob: Cob, body: CobCreate) -> Cob:
        """``PUT`` on an active cob: its fields become the body's (``revisao`` grows on a
        change; the same body again changes nothing, which makes the PUT idempotent)."""
        amount = self._positive_amount(body.valor.original, "cob", "valor.original")
        if not self.owns_key(body.chave):
            raise self.errors.key_not_owned()
        devedor = self._devedor(body.devedor) if body.devedor is not None else None
        info = (
            [i.model_dump() for i in body.infoAdicionais]
            if body.infoAdicionais is not None
            else None
        )
        new = (
            body.calendario.expiracao,
            amount,
            body.valor.modalidadeAlteracao,
            devedor,
            body.solicitacaoPagador,
            info,
        )
        old = (
            cob.expires_in,
            cob.amount,
            cob.modalidade_alteracao,
            cob.devedor,
            cob.solicitacao_pagador,
            cob.info_adicionais,
        )
        if new != old:
            (
                cob.expires_in,
                cob.amount,
                cob.modalidade_alteracao,
                cob.devedor,
                cob.solicitacao_pagador,
                cob.info_adicionais,
            ) = new
            cob.revisao += 1
        return cob

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
            raise problem(
                400,
                "CobOperacaoInvalida",
                "Cobrança inválida.",
                f"A cobrança não pode ser alterada: seu status é {cob.status}.",
            )
        if body.chave is not None and not self.owns_key(body.chave):
            raise self.errors.key_not_owned()
        amount = (
            self._positive_amount(body.valor.original, "cob", "valor.original")
            if body.valor is not None
            else None
        )
        devedor = self._devedor(body.devedor) if body.devedor is not None else None
        if body.loc is not None and body.loc.id != cob.loc_id:
            raise self.errors.loc_invalid()
        if _revise(cob, body, amount, devedor):  # BCB: revisao grows on every change except
            cob.revisao += 1  # a loc-only one
        return cob

    def cob_by_loc(self, loc_id: int) -> Cob:
        txid = self.state.locs.get(loc_id)
        if txid is None:
            raise self.errors.loc_not_found()
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
        self.notify(pix.chave, self.received_item(pix), "pix.received")
        self.log.info(f"sandbox.{self.name}.pix.received", txid=cob.txid, e2e_id=pix.e2e_id)
        return pix

    def get_pix(self, e2e_id: str) -> ReceivedPix:
        pix = self.state.pix.get(e2e_id)
        if pix is None:
            raise self.errors.pix_not_found(e2e_id)
        return pix

    # --- refunds --------------------------------------------------------------------------
    def create_refund(self, e2e_id: str, refund_id: str, body: RefundCreate) -> Refund:
        pix = self.get_pix(e2e_id)
        if refund_id in pix.refunds:
            raise self.errors.refund_id_in_use()
        amount = self._positive_amount(body.valor, "devolucao", "valor")
        if body.natureza != "ORIGINAL":
            # RETIRADA refers to Pix Saque/Troco, which the simulator never receives.
            raise self.errors.refund_nature_unavailable()
        if amount > pix.amount - pix.refunded_amount():
            raise self.errors.refund_exceeds()
        # The BCB's 90-day refund window is not enforced: tests would need a year of clock.
        now = self.clock.now()
        refund = Refund(
            id=refund_id,
            rtr_id=generate_return_id(self.psp_ispb, at=now),
            e2e_id=e2e_id,
            amount=amount,
            natureza=body.natureza,
            requested_at=now,
            descricao=body.descricao,
        )
        pix.refunds[refund_id] = refund
        self.schedule(lambda: self._settle_refund(e2e_id, refund_id))
        self.log.info(
            f"sandbox.{self.name}.refund.requested", e2e_id=e2e_id, id=refund_id, amount=amount
        )
        return refund

    def _settle_refund(self, e2e_id: str, refund_id: str) -> None:
        pix = self.state.pix.get(e2e_id)
        refund = pix.refunds.get(refund_id) if pix is not None else None
        if pix is None or refund is None or refund.final:
            return
        failure = self.refund_failure(refund)
        if failure is not None:
            refund.status = "NAO_REALIZADO"
            refund.motivo = failure
        else:
            refund.status = "DEVOLVIDO"
            refund.settled_at = self.clock.now()
        self.notify(pix.chave, refund_item(pix, refund), "pix.refund")

    def get_refund(self, e2e_id: str, refund_id: str) -> Refund:
        refund = self.get_pix(e2e_id).refunds.get(refund_id)
        if refund is None:
            raise problem(
                404,
                "PixDevolucaoNaoEncontrada",
                "Devolução não encontrada.",
                f"Nenhuma devolução {refund_id} encontrada para o Pix {e2e_id}.",
            )
        return refund

    # --- helpers --------------------------------------------------------------------------
    def _positive_amount(self, text: str, resource: str, field: str) -> int:
        amount = from_decimal_string(text)
        if amount <= 0:
            raise self.errors.amount_not_positive(resource, field)
        return amount

    def _devedor(self, devedor: Devedor) -> dict[str, str]:
        """Check the document's check digits (the schema checked only its shape)."""
        if devedor.cpf is not None:
            try:
                return {"cpf": validate_cpf(devedor.cpf), "nome": devedor.nome}
            except PixFormatError:
                raise self.errors.invalid_document("devedor.cpf") from None
        cnpj = devedor.cnpj or ""  # the schema guarantees one of the two
        try:
            return {"cnpj": validate_cnpj(cnpj), "nome": devedor.nome}
        except PixFormatError:
            raise self.errors.invalid_document("devedor.cnpj") from None


class PixApiSimulator(PixSimulator[PixApiSimConfig, PixState]):
    """One bank account behind the standard API Pix (see the module docstring)."""

    name = "pixapi"
    routes = PIXAPI_ROUTES

    def __init__(self, config: PixApiSimConfig | None = None) -> None:
        config = config if config is not None else PixApiSimConfig()
        super().__init__(config, Errors(config.gateway))

    def new_state(self) -> PixState:
        return PixState()

    @property
    def gateway(self) -> str:
        return self.config.gateway

    @property
    def psp_ispb(self) -> str:
        return self.config.ispb

    @property
    def location_host(self) -> str:
        return self.config.location_host

    def webhook_wire(self, webhook: Webhook) -> dict[str, Any]:
        return webhook.wire(cnpj=self.config.cnpj)

    def provider_router(self) -> APIRouter:
        return build_provider_router(self)

    def sandbox_router(self) -> APIRouter:
        return build_sandbox_router(self)


__all__ = ["PIXAPI_ROUTES", "ApiError", "PixApiSimulator", "PixSimulator"]


def _revise(cob: Cob, body: CobRevision, amount: int | None, devedor: Any) -> bool:
    """Apply the fields ``body`` carries (already checked); True when any changed."""
    changes: dict[str, Any] = {}
    if body.calendario is not None:
        changes["expires_in"] = body.calendario.expiracao
    if devedor is not None:
        changes["devedor"] = devedor
    if amount is not None and body.valor is not None:
        changes["amount"] = amount
        changes["modalidade_alteracao"] = body.valor.modalidadeAlteracao
    if body.solicitacaoPagador is not None:
        changes["solicitacao_pagador"] = body.solicitacaoPagador
    if body.infoAdicionais is not None:
        changes["info_adicionais"] = [i.model_dump() for i in body.infoAdicionais]
    if body.status is not None:
        changes["status"] = body.status
    for name, value in changes.items():
        setattr(cob, name, value)
    return bool(changes)
