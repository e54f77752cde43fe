"""Efí status tables and the provider error table, row by row, in both error shapes."""

from __future__ import annotations

import httpx
import pytest

from pixwave.gateways.base import ChargeStatus, RefundStatus, SendStatus
from pixwave.gateways.efi.mapping import (
    CHARGE_STATUS,
    ERROR_RULES,
    REFUND_STATUS,
    SEND_STATUS,
    charge_status,
    map_error,
    refund_status,
    send_status,
)
from pixwave.gateways.errors import (
    GatewayAmbiguous,
    GatewayError,
    GatewayNotFound,
    GatewayRejected,
    GatewayUnavailable,
)
from pixwave.gateways.pixapi.mapping import ERROR_RULES as STANDARD_RULES
from tests.gateways.efi import efi_error, problem


class TestStatusTables:
    @pytest.mark.parametrize(
        ("provider", "expected"),
        [
            ("ATIVA", ChargeStatus.ACTIVE),
            ("CONCLUIDA", ChargeStatus.PAID),
            ("REMOVIDA_PELO_USUARIO_RECEBEDOR", ChargeStatus.CANCELLED),
            ("REMOVIDA_PELO_PSP", ChargeStatus.CANCELLED),
            ("EXPIRADA_NOVO_STATUS", ChargeStatus.ACTIVE),
        ],
    )
    def test_charge_status(self, provider: str, expected: ChargeStatus) -> None:
        """Each cob status maps to our charge status; an unknown one stays ACTIVE."""
        assert charge_status(provider) is expected

    @pytest.mark.parametrize(
        ("provider", "expected"),
        [
            ("EM_PROCESSAMENTO", SendStatus.PROCESSING),
            ("REALIZADO", SendStatus.SUCCEEDED),
            ("NAO_REALIZADO", SendStatus.FAILED),
            ("AGENDADO", SendStatus.PROCESSING),
        ],
    )
    def test_send_status(self, provider: str, expected: SendStatus) -> None:
        """Each sent-Pix status maps to our send status; an unknown one stays PROCESSING."""
        assert send_status(provider) is expected

    @pytest.mark.parametrize(
        ("provider", "expected"),
        [
            ("EM_PROCESSAMENTO", RefundStatus.PROCESSING),
            ("DEVOLVIDO", RefundStatus.SUCCEEDED),
            ("NAO_REALIZADO", RefundStatus.FAILED),
            ("EM_ANALISE", RefundStatus.PROCESSING),
        ],
    )
    def test_refund_status(self, provider: str, expected: RefundStatus) -> None:
        """Each devolução status maps to our refund status; an unknown one stays PROCESSING."""
        assert refund_status(provider) is expected

    def test_tables_are_exhaustive_for_the_documented_statuses(self) -> None:
        """The tables hold exactly the statuses Efí documents, nothing guessed."""
        assert set(CHARGE_STATUS) == {
            "ATIVA",
            "CONCLUIDA",
            "REMOVIDA_PELO_USUARIO_RECEBEDOR",
            "REMOVIDA_PELO_PSP",
        }
        assert set(SEND_STATUS) == {"EM_PROCESSAMENTO", "REALIZADO", "NAO_REALIZADO"}
        assert set(REFUND_STATUS) == {"EM_PROCESSAMENTO", "DEVOLVIDO", "NAO_REALIZADO"}


#: (provider code, response, moves_money, expected class, expected code)
EFI_ROWS: list[tuple[str, httpx.Response, bool, type[GatewayError], str]] = [
    (
        "chave_invalida",
        efi_error(
            400,
            "chave_invalida",
            "A chave informada não faz referência à conta Efí autenticada",
        ),
        True,
        GatewayRejected,
        "invalid_pix_key",
    ),
    (
        "chave_nao_pertence_ao_documento",
        efi_error(
            400, "chave_nao_pertence_ao_documento", "A chave não pertence ao documento informado"
        ),
        True,
        GatewayRejected,
        "key_document_mismatch",
    ),
    (
        "documento_bloqueado",
        efi_error(400, "documento_bloqueado", "O documento informado está bloqueado"),
        False,
        GatewayRejected,
        "document_blocked",
    ),
    (
        "valor_invalido",
        efi_error(400, "valor_invalido", "Campo valor.original deve ser maior que zero"),
        False,
        GatewayRejected,
        "invalid_amount",
    ),
    (
        "json_invalido",
        efi_error(400, "json_invalido", "Valores ou tipos de campo inválidos"),
        False,
        GatewayRejected,
        "invalid_request",
    ),
    (
        "pagamento_negado",
        efi_error(422, "pagamento_negado", "Pagamento negado por análises"),
        True,
        GatewayRejected,
        "payment_denied",
    ),
    (
        "saldo_insuficiente",
        efi_error(422, "saldo_insuficiente", "Saldo insuficiente para realizar o pagamento"),
        True,
        GatewayRejected,
        "insufficient_balance",
    ),
    (
        "txid_duplicado",
        efi_error(409, "txid_duplicado", "Campo txid informado já foi utilizado em outra cobrança"),
        False,
        GatewayRejected,
        "duplicate_reference",
    ),
    (
        "id_envio_duplicado",
        efi_error(409, "id_envio_duplicado", "O idEnvio informado já foi utilizado"),
        True,
        GatewayRejected,
        "duplicate_reference",
    ),
    (
        "devolucao_id_duplicado",
        efi_error(
            409, "devolucao_id_duplicado", "O id informado já foi utilizado em outra devolução"
        ),
        True,
        GatewayRejected,
        "duplicate_reference",
    ),
    (
        "pix_nao_encontrado",
        efi_error(
            404, "pix_nao_encontrado", "Nenhum pix encontrado para o identificador informado"
        ),
        True,
        GatewayNotFound,
        "not_found",
    ),
    (
        "location_nao_encontrada",
        efi_error(404, "location_nao_encontrada", "Nenhuma location encontrada"),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "cobranca_nao_encontrada",
        efi_error(404, "cobranca_nao_encontrada", "Nenhuma cobrança encontrada"),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "webhook_invalido",
        efi_error(
            400,
            "webhook_invalido",
            "A autenticação de TLS mútuo não está configurada na URL informada",
        ),
        False,
        GatewayRejected,
        "invalid_webhook",
    ),
    (
        "erro_aplicacao",
        efi_error(500, "erro_aplicacao", "Ocorreu um erro ao processar a requisição"),
        False,
        GatewayUnavailable,
        "provider_error",
    ),
]

#: RFC 7807 rows: (type name, response, moves_money, expected class, expected code)
PROBLEM_ROWS: list[tuple[str, httpx.Response, bool, type[GatewayError], str]] = [
    (
        "NaoEncontrado",
        problem(404, "NaoEncontrado", "Não Encontrado", "Recurso não encontrado."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "CobNaoEncontrado",
        problem(404, "CobNaoEncontrado", "Cobrança não encontrada.", "Cob inexistente."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "CobVNaoEncontrada",
        problem(404, "CobVNaoEncontrada", "Cobrança não encontrada.", "CobV inexistente."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "PixNaoEncontrado",
        problem(404, "PixNaoEncontrado", "Pix não encontrado.", "Pix inexistente."),
        True,
        GatewayNotFound,
        "not_found",
    ),
    (
        "PixDevolucaoNaoEncontrada",
        problem(404, "PixDevolucaoNaoEncontrada", "Devolução não encontrada.", "Inexistente."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "PixEnviadoNaoEncontrado",
        problem(404, "PixEnviadoNaoEncontrado", "Não Encontrado", "Pix enviado inexistente."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "WebhookNaoEncontrado",
        problem(404, "WebhookNaoEncontrado", "Webhook não encontrado.", "Sem webhook."),
        False,
        GatewayNotFound,
        "not_found",
    ),
    (
        "AcessoNegado",
        problem(403, "AcessoNegado", "Acesso Negado", "Escopo pix.send não autorizado."),
        True,
        GatewayUnavailable,
        "access_denied",
    ),
    (
        "RequisicaoInvalida",
        problem(400, "RequisicaoInvalida", "Requisição inválida.", "Parâmetros inválidos."),
        False,
        GatewayRejected,
        "invalid_request",
    ),
    (
        "CobOperacaoInvalida",
        problem(
            400,
            "CobOperacaoInvalida",
            "Cobrança inválida.",
            "A requisição que busca alterar ou criar uma cobrança não respeita o schema.",
        ),
        False,
        GatewayRejected,
        "invalid_request",
    ),
    (
        "PixDevolucaoInvalida",
        problem(400, "PixDevolucaoInvalida", "Devolução inválida.", "Valor acima do permitido."),
        True,
        GatewayRejected,
        "invalid_request",
    ),
    (
        "ServicoIndisponivel",
        problem(503, "ServicoIndisponivel", "Serviço Indisponível", "Em manutenção."),
        True,
        GatewayUnavailable,
        "provider_unavailable",
    ),
    (
        "IndisponibilidadePorTempoEsgotado",
        problem(
            504, "IndisponibilidadePorTempoEsgotado", "Tempo esgotado", "Sem resposta a tempo."
        ),
        True,
        GatewayAmbiguous,
        "provider_error",
    ),
    (
        "ErroInternoDoServidor",
        problem(500, "ErroInternoDoServidor", "Erro interno", "Falha inesperada."),
        True,
        GatewayAmbiguous,
        "provider_error",
    ),
]


def _map(
    response: httpx.Response, *, moves_money: bool, operation: str = "pix.send"
) -> GatewayError:
    return map_error(operation, response, moves_money, 12)


class TestErrorTable:
    @pytest.mark.parametrize(
        ("name", "response", "moves_money", "error_class", "code"),
        EFI_ROWS,
        ids=[row[0] for row in EFI_ROWS],
    )
    def test_efi_shape_row(
        self,
        name: str,
        response: httpx.Response,
        moves_money: bool,
        error_class: type[GatewayError],
        code: str,
    ) -> None:
        """An Efí {"nome","mensagem"} body maps by its nome, keeping code, status and text."""
        error = _map(response, moves_money=moves_money)
        assert type(error) is error_class
        assert error.code == code
        assert error.provider_code == name
        assert error.http_status == response.status_code
        assert error.message == response.json()["mensagem"]
        assert (error.gateway, error.operation, error.latency_ms) == ("efi", "pix.send", 12)

    @pytest.mark.parametrize(
        ("name", "response", "moves_money", "error_class", "code"),
        PROBLEM_ROWS,
        ids=[row[0] for row in PROBLEM_ROWS],
    )
    def test_rfc7807_shape_row(
        self,
        name: str,
        response: httpx.Response,
        moves_money: bool,
        error_class: type[GatewayError],
        code: str,
    ) -> None:
        """An RFC 7807 body maps by the last segment of its type, keeping the detail."""
        error = _map(response, moves_money=moves_money)
        assert type(error) is error_class
        assert error.code == code
        assert error.provider_code == name
        assert error.http_status == response.status_code
        assert error.message == response.json()["detail"]

    def test_every_table_row_is_tested(self) -> None:
        """Every code Efí adds has a row above; the standard's rows are tested with the
        standard's table (tests/gateways/pixapi) and hold here unchanged."""
        assert {row[0] for row in EFI_ROWS} == set(ERROR_RULES) - set(STANDARD_RULES)
        assert {row[0] for row in PROBLEM_ROWS} <= set(STANDARD_RULES)
        assert all(ERROR_RULES[code] == rule for code, rule in STANDARD_RULES.items())


class TestStatusDrivenRows:
    def test_erro_aplicacao_on_a_money_call_is_ambiguous(self) -> None:
        """erro_aplicacao (500) on a send may have moved money: ambiguous."""
        response = efi_error(500, "erro_aplicacao", "Ocorreu um erro")
        error = _map(response, moves_money=True)
        assert (type(error), error.code) == (GatewayAmbiguous, "provider_error")

    def test_erro_aplicacao_on_a_503_query_is_unavailable(self) -> None:
        """erro_aplicacao follows the response status: a 503 query is provider_unavailable."""
        response = efi_error(503, "erro_aplicacao", "Ocorreu um erro")
        error = _map(response, moves_money=False, operation="cob.get")
        assert (type(error), error.code) == (GatewayUnavailable, "provider_unavailable")

    @pytest.mark.parametrize("operation", ["send.put", "devolucao.put"])
    def test_a_503_on_a_money_call_is_unavailable(self, operation: str) -> None:
        """503 says the request was not taken (maintenance, overload): the engine may retry
        and then fall back, as for a refused connection — unlike a 500 on the same call."""
        response = efi_error(503, "erro_aplicacao", "Serviço indisponível")
        error = _map(response, moves_money=True, operation=operation)
        assert (type(error), error.code) == (GatewayUnavailable, "provider_unavailable")

    def test_timeout_problem_is_classified_as_504_whatever_the_status(self) -> None:
        """IndisponibilidadePorTempoEsgotado is a 504 even when sent with another status."""
        response = problem(500, "IndisponibilidadePorTempoEsgotado", "Tempo esgotado", "…")
        error = _map(response, moves_money=False, operation="cob.get")
        assert (type(error), error.code) == (GatewayUnavailable, "provider_unavailable")

    def test_timeout_problem_on_a_query_is_unavailable(self) -> None:
        """A 504 IndisponibilidadePorTempoEsgotado on a query is only unavailable."""
        response = problem(504, "IndisponibilidadePorTempoEsgotado", "Tempo esgotado", "…")
        error = _map(response, moves_money=False, operation="cob.get")
        assert (type(error), error.code) == (GatewayUnavailable, "provider_unavailable")


class TestRateLimit:
    def test_429_is_rate_limited_with_retry_after(self) -> None:
        """A 429 is Unavailable rate_limited and carries Retry-After in seconds."""
        response = httpx.Response(
            429,
            json={"nome": "limite_requisicoes", "mensagem": "Muitas requisições"},
            headers={"Retry-After": "7"},
        )
        error = _map(response, moves_money=True)
        assert (type(error), error.code) == (GatewayUnavailable, "rate_limited")
        assert error.retry_after == 7.0
        assert error.provider_code == "limite_requisicoes"

    def test_429_without_retry_after(self) -> None:
        """A 429 with no Retry-After is still rate_limited, with retry_after None."""
        error = _map(httpx.Response(429, text="slow down"), moves_money=False)
        assert (error.code, error.retry_after) == ("rate_limited", None)


class TestFallbacks:
    @pytest.mark.parametrize(
        ("status", "moves_money", "error_class", "code"),
        [
            (400, False, GatewayRejected, "invalid_request"),
            (403, False, GatewayRejected, "forbidden"),
            (404, False, GatewayNotFound, "not_found"),
            (500, False, GatewayUnavailable, "provider_error"),
            (500, True, GatewayAmbiguous, "provider_error"),
            (502, False, GatewayUnavailable, "provider_unavailable"),
            (502, True, GatewayAmbiguous, "provider_error"),
        ],
    )
    def test_unknown_nome_falls_back_to_the_status(
        self, status: int, moves_money: bool, error_class: type[GatewayError], code: str
    ) -> None:
        """An Efí code not in the table is classified by HTTP status, keeping the code."""
        response = efi_error(status, "erro_desconhecido_novo", "Algo novo")
        error = _map(response, moves_money=moves_money)
        assert (type(error), error.code) == (error_class, code)
        assert error.provider_code == "erro_desconhecido_novo"

    def test_unknown_problem_type_falls_back_to_the_status(self) -> None:
        """An RFC 7807 type not in the table is classified by HTTP status."""
        response = problem(400, "CobConsultaInvalida", "Consulta inválida", "Período inválido.")
        error = _map(response, moves_money=False)
        assert (type(error), error.code, error.provider_code) == (
            GatewayRejected,
            "invalid_request",
            "CobConsultaInvalida",
        )

    def test_html_body_falls_back_to_the_status(self) -> None:
        """An unparseable body (a proxy's HTML page) is classified by status alone."""
        response = httpx.Response(502, text="<html><body>Bad Gateway</body></html>")
        error = _map(response, moves_money=True)
        assert (type(error), error.code, error.provider_code) == (
            GatewayAmbiguous,
            "provider_error",
            None,
        )
        assert "502" in error.message

    def test_json_without_either_shape_falls_back_to_the_status(self) -> None:
        """JSON in neither error shape is classified by status, with no provider code."""
        response = httpx.Response(400, json={"error": "bad"})
        error = _map(response, moves_money=False)
        assert (error.code, error.provider_code) == ("invalid_request", None)

    def test_non_error_status_on_a_money_call_is_ambiguous(self) -> None:
        """A stray 3xx on a send proves nothing either way: ambiguous unexpected_status."""
        error = _map(httpx.Response(302, headers={"location": "/x"}), moves_money=True)
        assert (type(error), error.code) == (GatewayAmbiguous, "unexpected_status")


class TestErrorDetails:
    def test_efi_erros_list_is_appended_to_the_message(self) -> None:
        """The erros[] of a json_invalido body are kept in the message for support."""
        response = efi_error(
            400,
            "json_invalido",
            "Valores ou tipos de campo inválidos",
            erros=[{"chave": "enum", "caminho": ".body.tipoCob", "mensagem": "valor inválido"}],
        )
        error = _map(response, moves_money=False)
        assert error.message == (
            "Valores ou tipos de campo inválidos (.body.tipoCob: valor inválido)"
        )

    def test_violacoes_are_appended_to_the_message(self) -> None:
        """The violacoes[] of an RFC 7807 body are kept in the message for support."""
        response = problem(
            400,
            "CobOperacaoInvalida",
            "Cobrança inválida.",
            "A requisição não respeita o schema.",
            violacoes=[
                {
                    "razao": "O campo cob.valor.original não respeita o _schema_.",
                    "propriedade": "cob.valor.original",
                }
            ],
        )
        error = _map(response, moves_money=False)
        assert error.message == (
            "A requisição não respeita o schema. "
            "(cob.valor.original: O campo cob.valor.original não respeita o _schema_.)"
        )
