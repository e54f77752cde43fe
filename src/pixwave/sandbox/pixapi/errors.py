"""Error answers of an API Pix simulator: one exception, and each situation in the standard's words.

The Central Bank's API Pix answers every error as RFC 7807 (``application/problem+json``):
``{"type": "https://pix.bcb.gov.br/api/v2/error/<Name>", "title", "status", "detail",
"violacoes"?}`` with the type names the specification lists. The simulator's logic never builds
a body itself: it asks its :class:`Errors` for the situation (``cob_not_found``,
``refund_id_in_use`` …), so a PSP that answers some of them its own way (Efí's
``{"nome","mensagem"}``) overrides just those methods.

Input problems (a malformed body, a bad path or query parameter) are collected as neutral
:class:`Violation` values and raised as :class:`InvalidInput`; the route turns them into the
dialect's answer for the resource at hand.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

BCB_ERROR_BASE: Final = "https://pix.bcb.gov.br/api/v2/error/"


class ApiError(Exception):
    """An error answer in the provider's shape; the route class turns it into the response."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any],
        *,
        problem: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(body.get("mensagem") or body.get("detail") or body)
        self.status = status
        self.body = body
        self.problem = problem
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        media_type = "application/problem+json" if self.problem else "application/json"
        return JSONResponse(
            self.body, status_code=self.status, media_type=media_type, headers=self.headers
        )


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    violacoes: Sequence[Mapping[str, str]] | None = None,
) -> ApiError:
    """The BCB's RFC 7807 shape, with the type URI the API Pix specification defines."""
    body: dict[str, Any] = {
        "type": BCB_ERROR_BASE + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if violacoes:
        body["violacoes"] = [dict(v) for v in violacoes]
    return ApiError(status, body, problem=True)


@dataclass(frozen=True, slots=True)
class Violation:
    """One input problem. ``path`` is dotted from its origin: ``.body.valor.original``,
    ``.params.txid``, ``.query.inicio``; ``keyword`` the JSON-schema keyword it breaks;
    ``message`` None lets the dialect word it."""

    keyword: str
    path: str
    message: str | None = None


class InvalidInput(Exception):
    """The request's body, path or query breaks the schema; nothing was done."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(f"{v.path}: {v.keyword}" for v in violations))
        self.violations = list(violations)


#: pydantic error types → the JSON-schema keyword they break.
SCHEMA_KEYWORDS: Final[Mapping[str, str]] = {
    "missing": "required",
    "extra_forbidden": "additionalProperties",
    "string_pattern_mismatch": "pattern",
    "string_too_long": "maxLength",
    "string_too_short": "minLength",
    "too_long": "maxItems",
    "too_short": "minItems",
    "greater_than": "exclusiveMinimum",
    "greater_than_equal": "minimum",
    "less_than": "exclusiveMaximum",
    "less_than_equal": "maximum",
    "literal_error": "enum",
    "enum": "enum",
    "one_of": "oneOf",
}


def _dotted(root: str, loc: Sequence[int | str]) -> str:
    parts = [root]
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts)


def violations_of(exc: ValidationError, root: str = ".body") -> list[Violation]:
    """pydantic's errors as neutral violations."""
    return [
        Violation(SCHEMA_KEYWORDS.get(str(error["type"]), "type"), _dotted(root, error["loc"]))
        for error in exc.errors(include_url=False)
    ]


#: What each resource's invalid input is called, and the prefix its properties carry.
_INVALID: Final[Mapping[str, tuple[str, str, str | None]]] = {
    "cob": ("CobOperacaoInvalida", "Cobrança inválida.", "cob"),
    "cobs": ("CobConsultaInvalida", "Consulta inválida.", None),
    "devolucao": ("PixDevolucaoInvalida", "Devolução inválida.", "devolucao"),
    "pix": ("PixConsultaInvalida", "Consulta inválida.", None),
    "webhook": ("WebhookOperacaoInvalida", "Webhook inválido.", "webhook"),
    "webhooks": ("WebhookConsultaInvalida", "Consulta inválida.", None),
}


_REQUEST_INVALID: Final = ("RequisicaoInvalida", "Requisição inválida.", None)


class Errors:
    """The standard's answer to each situation (a PSP's dialect overrides some)."""

    #: How an injected fault's body is labelled (the standard: RFC 7807).
    fault_media_type: ClassVar[str] = "application/problem+json"

    def __init__(self, realm: str) -> None:
        #: Named in ``WWW-Authenticate`` (the gateway's name).
        self.realm = realm

    # --- input -----------------------------------------------------------------------------
    def invalid_input(self, resource: str, violations: Sequence[Violation]) -> ApiError:
        kind, title, prefix = _INVALID.get(
            resource, ("RequisicaoInvalida", "Requisição inválida.", None)
        )
        violacoes = []
        for v in violations:
            where, _, rest = v.path.lstrip(".").partition(".")
            if where == "body":
                prop = f"{prefix}.{rest}" if prefix and rest else (rest or prefix or "corpo")
            else:
                prop = rest or where
            razao = v.message or f"O campo {prop} não respeita o _schema_."
            violacoes.append({"razao": razao, "propriedade": prop})
        return problem(400, kind, title, "A requisição não respeita o _schema_.", violacoes)

    def _violation(self, resource: str, prop: str, razao: str) -> ApiError:
        kind, title, _ = _INVALID[resource]
        return problem(400, kind, title, razao, [{"razao": razao, "propriedade": prop}])

    # --- OAuth and access ------------------------------------------------------------------
    def oauth(self, status: int, error: str, description: str) -> ApiError:
        """RFC 6749 §5.2's body, on the token route."""
        headers = {"www-authenticate": f'Basic realm="{self.realm}"'} if status == 401 else None
        return ApiError(status, {"error": error, "error_description": description}, headers=headers)

    def unauthorised(self) -> ApiError:
        """No live Bearer token (RFC 6750 §3.1). The standard names no error type for it, so
        RFC 7807's ``about:blank`` stands for "nothing beyond the status"."""
        body = {
            "type": "about:blank",
            "title": "Não autorizado.",
            "status": 401,
            "detail": "Token de acesso ausente, inválido ou expirado.",
        }
        error = ApiError(401, body, problem=True)
        error.headers["www-authenticate"] = f'Bearer realm="{self.realm}", error="invalid_token"'
        return error

    def scope_missing(self, scope: str) -> ApiError:
        return problem(
            403,
            "AcessoNegado",
            "Acesso Negado",
            f"O token de acesso não tem o escopo {scope}, exigido por este recurso.",
        )

    # --- cob -------------------------------------------------------------------------------
    def txid_in_use(self, status: str) -> ApiError | None:
        """``PUT /cob/{txid}`` on an existing cob: None revises an active one (the standard)."""
        if status == "ATIVA":
            return None
        return self._violation(
            "cob",
            "txid",
            f"A cobrança já existe, não está no status ATIVA ({status}), e a presente "
            "requisição busca alterá-la.",
        )

    def amount_not_positive(self, resource: str, field: str) -> ApiError:
        prop = f"{resource}.{field}"
        return self._violation(resource, prop, f"O campo {prop} é zero.")

    def key_not_owned(self) -> ApiError:
        return self._violation(
            "cob",
            "cob.chave",
            "O campo cob.chave corresponde a uma conta que não pertence a este usuário recebedor.",
        )

    def invalid_document(self, field: str) -> ApiError:
        return self._violation(
            "cob", "cob.devedor", "O objeto cob.devedor não respeita o _schema_."
        )

    def loc_invalid(self) -> ApiError:
        return self._violation(
            "cob", "cob.loc.id", "O location referenciado por cob.loc.id inexiste."
        )

    def loc_not_found(self) -> ApiError:
        return problem(
            404,
            "PayloadLocationNaoEncontrado",
            "Location não encontrada.",
            "Location não encontrada para o id informado.",
        )

    # --- Pix and devoluções ----------------------------------------------------------------
    def pix_not_found(self, e2e_id: str) -> ApiError:
        return problem(
            404,
            "PixNaoEncontrado",
            "Pix não encontrado.",
            f"Nenhum Pix encontrado para o e2eid {e2e_id}.",
        )

    def refund_id_in_use(self) -> ApiError:
        return self._violation(
            "devolucao",
            "id",
            "A presente requisição de devolução apresenta um id já utilizado por outra "
            "requisição de devolução para o e2eid em questão.",
        )

    def refund_nature_unavailable(self) -> ApiError:
        return self._violation(
            "devolucao",
            "devolucao.natureza",
            "A natureza RETIRADA só se aplica a um Pix Saque ou Pix Troco.",
        )

    def refund_exceeds(self) -> ApiError:
        return self._violation(
            "devolucao",
            "devolucao.valor",
            "A presente requisição de devolução, em conjunto com as demais prévias devoluções, "
            "excederia o valor do pix originário.",
        )

    # --- webhooks --------------------------------------------------------------------------
    def webhook_key_not_owned(self) -> ApiError:
        return self._violation(
            "webhook",
            "chave",
            "O parâmetro chave não corresponde a uma chave DICT pertencente a este usuário "
            "recebedor.",
        )

    def webhook_not_found(self) -> ApiError:
        return problem(
            404,
            "WebhookNaoEncontrado",
            "Webhook não encontrado.",
            "Nenhum webhook está estabelecido para a chave informada.",
        )

    def webhook_url_invalid(self, https_required: bool) -> ApiError:
        reason = (
            "O campo webhook.webhookUrl deve usar https."
            if https_required
            else "O campo webhook.webhookUrl não respeita o _schema_."
        )
        return self._violation("webhook", "webhook.webhookUrl", reason)

    # --- injected faults -------------------------------------------------------------------
    def fault_body(self, status: int, reason: str) -> dict[str, Any]:
        """The body of an injected 5xx or 429 (the standard names the 5xx; a 429 it does not,
        so RFC 7807's ``about:blank`` stands for "nothing beyond the status")."""
        if status == 429:
            return {
                "type": "about:blank",
                "title": "Too Many Requests",
                "status": 429,
                "detail": "Limite de requisições excedido, tente novamente em instantes.",
            }
        if status == 503 or reason == "outage":
            name, title = "ServicoIndisponivel", "Serviço Indisponível"
        elif status == 504:
            name, title = "IndisponibilidadePorTempoEsgotado", "Tempo Esgotado"
        else:
            name, title = "ErroInternoDoServidor", "Erro Interno do Servidor"
        return {
            "type": BCB_ERROR_BASE + name,
            "title": title,
            "status": status,
            "detail": "Ocorreu um erro ao processar a requisição.",
        }


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ApiRoute(APIRoute):
    """Renders :class:`ApiError` raised by a handler (or a dependency) in the provider's shape."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except ApiError as exc:
                return exc.response()

        return handler
