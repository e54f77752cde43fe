"""The standard's status and error tables, row by row."""

from __future__ import annotations

import httpx
import pytest

from pixwave.gateways.base import ChargeStatus, RefundStatus
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pixwave.gateways.pixapi.mapping import (
    CHARGE_STATUS,
    ERROR_RULES,
    REFUND_STATUS,
    charge_status,
    error_mapper,
    refund_status,
)
from tests.gateways.pixapi import problem

MAP = error_mapper("bancoa")

#: (type name, HTTP status, moves money) → (class, our code). One row per table entry.
ROWS: list[tuple[str, int, bool, type[GatewayError], str]] = [
    ("NaoEncontrado", 404, False, GatewayNotFound, "not_found"),
    ("CobNaoEncontrado", 404, False, GatewayNotFound, "not_found"),
    ("CobVNaoEncontrada", 404, False, GatewayNotFound, "not_found"),
    ("PixNaoEncontrado", 404, True, GatewayNotFound, "not_found"),
    ("PixDevolucaoNaoEncontrada", 404, False, GatewayNotFound, "not_found"),
    ("PixEnviadoNaoEncontrado", 404, False, GatewayNotFound, "not_found"),
    ("PayloadLocationNaoEncontrado", 404, False, GatewayNotFound, "not_found"),
    ("WebhookNaoEncontrado", 404, False, GatewayNotFound, "not_found"),
    ("PermanentementeRemovido", 410, False, GatewayNotFound, "not_found"),
    ("AcessoNegado", 403, True, GatewayUnavailable, "access_denied"),
    ("RequisicaoInvalida", 400, False, GatewayRejected, "invalid_request"),
    ("CobOperacaoInvalida", 400, False, GatewayRejected, "invalid_request"),
    ("CobConsultaInvalida", 400, False, GatewayRejected, "invalid_request"),
    ("PixDevolucaoInvalida", 400, True, GatewayRejected, "invalid_request"),
    ("PixConsultaInvalida", 400, False, GatewayRejected, "invalid_request"),
    ("WebhookOperacaoInvalida", 400, False, GatewayRejected, "invalid_webhook"),
    ("ServicoIndisponivel", 503, True, GatewayUnavailable, "provider_unavailable"),
    ("IndisponibilidadePorTempoEsgotado", 504, True, GatewayAmbiguous, "provider_error"),
    ("ErroInternoDoServidor", 500, True, GatewayAmbiguous, "provider_error"),
]


class TestStatuses:
    @pytest.mark.parametrize(("provider", "expected"), sorted(CHARGE_STATUS.items()))
    def test_cob_status(self, provider: str, expected: ChargeStatus) -> None:
        """Each standard cob status maps as the table says."""
        assert charge_status(provider) is expected

    @pytest.mark.parametrize(("provider", "expected"), sorted(REFUND_STATUS.items()))
    def test_devolucao_status(self, provider: str, expected: RefundStatus) -> None:
        """Each devolução status maps as the table says."""
        assert refund_status(provider) is expected

    def test_unknown_statuses_are_pending(self) -> None:
        """A status the tables do not know is the pending state, never success."""
        assert charge_status("PAGA") is ChargeStatus.ACTIVE
        assert refund_status("ESTORNADO") is RefundStatus.PROCESSING


class TestErrors:
    @pytest.mark.parametrize(
        ("name", "status", "money", "error_class", "code"), ROWS, ids=[r[0] for r in ROWS]
    )
    def test_row(
        self, name: str, status: int, money: bool, error_class: type[GatewayError], code: str
    ) -> None:
        """An RFC 7807 body maps by its type's last segment, keeping detail and violations."""
        response = problem(
            status,
            name,
            "Título",
            "Detalhe",
            violacoes=[{"razao": "não respeita", "propriedade": "cob.valor.original"}],
        )
        error = MAP("op", response, money, 12)
        assert (type(error), error.code, error.provider_code) == (error_class, code, name)
        assert error.message == "Detalhe (cob.valor.original: não respeita)"
        assert (error.gateway, error.http_status, error.latency_ms) == ("bancoa", status, 12)

    def test_every_table_row_is_tested(self) -> None:
        """The table cannot drift from its tests."""
        assert {row[0] for row in ROWS} == set(ERROR_RULES)

    def test_429_carries_retry_after(self) -> None:
        """A 429 is unavailable with the Retry-After it gave."""
        response = httpx.Response(429, headers={"retry-after": "7"})
        error = MAP("op", response, True, 0)
        assert (type(error), error.code, error.retry_after) == (
            GatewayUnavailable,
            "rate_limited",
            7,
        )

    def test_an_unreadable_body_falls_back_to_the_status(self) -> None:
        """An HTML 502 on a refund: by status, ambiguous."""
        error = MAP("pix.refund", httpx.Response(502, content=b"<html>"), True, 0)
        assert (type(error), error.code, error.provider_code) == (
            GatewayAmbiguous,
            "provider_error",
            None,
        )
        assert "bancoa" in error.message

    def test_an_unknown_type_falls_back_to_the_status(self) -> None:
        """A type the table lacks (a bank's own) classifies by status: 409 rejected."""
        error = MAP("op", problem(409, "CobDuplicada", "Conflito", "já existe"), False, 0)
        assert (type(error), error.code, error.provider_code) == (
            GatewayRejected,
            "conflict",
            "CobDuplicada",
        )
