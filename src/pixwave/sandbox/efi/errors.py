"""Efí's two error shapes, raised as one exception and rendered by the route class.

Efí answers most business errors in its own shape, ``{"nome", "mensagem"[, "erros"]}``, and
some "not found" cases in the BCB's RFC 7807 shape, ``{"type", "title", "status", "detail"}``
(``application/problem+json``). Clients must accept both, so the simulator uses each where the
real endpoint does (or, where the documentation is silent, where it most plausibly does — those
places say so).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

BCB_ERROR_BASE = "https://pix.bcb.gov.br/api/v2/error/"
JSON_INVALIDO_MESSAGE = "Valores ou tipos de campo inválidos"

#: pydantic error types → the JSON-schema keyword Efí reports in ``erros[].chave``.
_SCHEMA_KEYWORDS: Mapping[str, str] = {
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

_SCHEMA_MESSAGES: Mapping[str, str] = {
    "required": "Campo obrigatório não informado",
    "additionalProperties": "Campo não permitido",
    "pattern": "Valor não corresponde ao formato esperado",
    "maxLength": "Valor excede o tamanho máximo permitido",
    "minLength": "Valor menor que o tamanho mínimo permitido",
    "maxItems": "Lista excede a quantidade máxima de itens",
    "minItems": "Lista tem menos itens que o mínimo",
    "exclusiveMinimum": "Valor deve ser maior que o mínimo permitido",
    "minimum": "Valor menor que o mínimo permitido",
    "exclusiveMaximum": "Valor deve ser menor que o máximo permitido",
    "maximum": "Valor maior que o máximo permitido",
    "enum": "Valor não está entre os permitidos",
    "oneOf": "Informe exatamente uma das alternativas",
    "type": "Tipo de campo inválido",
}


class EfiError(Exception):
    """An error answer in one of Efí's shapes; the route class turns it into the response."""

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


def efi_error(status: int, nome: str, mensagem: str, **extra: Any) -> EfiError:
    """Efí's own shape: ``{"nome": "<snake_code>", "mensagem": "<pt-BR text>"}``."""
    return EfiError(status, {"nome": nome, "mensagem": mensagem, **extra})


def problem(status: int, kind: str, title: str, detail: str) -> EfiError:
    """The BCB's RFC 7807 shape, with the type URI the API Pix specification defines."""
    return EfiError(
        status,
        {"type": BCB_ERROR_BASE + kind, "title": title, "status": status, "detail": detail},
        problem=True,
    )


def schema_error(erros: Sequence[Mapping[str, str]]) -> EfiError:
    """400 ``json_invalido`` listing each violation as ``{chave, caminho, mensagem}``."""
    return efi_error(400, "json_invalido", JSON_INVALIDO_MESSAGE, erros=[dict(e) for e in erros])


def violation(keyword: str, path: str, message: str | None = None) -> dict[str, str]:
    """One ``erros[]`` item; ``path`` is Efí's dotted location such as ``.body.valor.original``."""
    return {"chave": keyword, "caminho": path, "mensagem": message or _SCHEMA_MESSAGES[keyword]}


def _dotted(root: str, loc: Sequence[int | str]) -> str:
    parts = [root]
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts)


def from_validation_error(exc: ValidationError, root: str = ".body") -> EfiError:
    """Translate pydantic's errors into Efí's ``json_invalido`` list."""
    erros = []
    for error in exc.errors(include_url=False):
        error_type = str(error["type"])
        keyword = _SCHEMA_KEYWORDS.get(error_type, "type")
        erros.append(violation(keyword, _dotted(root, error["loc"]), _SCHEMA_MESSAGES[keyword]))
    return schema_error(erros)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class EfiRoute(APIRoute):
    """Renders :class:`EfiError` raised by a handler (or a dependency) in Efí's shape."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except EfiError as exc:
                return exc.response()

        return handler
