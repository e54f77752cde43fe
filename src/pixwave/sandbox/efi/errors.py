"""Efí's dialect of the API Pix errors: its own ``{"nome","mensagem"}`` shape where Efí uses it.

Efí answers most business errors in its own shape, ``{"nome", "mensagem"[, "erros"]}``, and
some "not found" cases in the BCB's RFC 7807 shape, ``{"type", "title", "status", "detail"}``
(``application/problem+json``). Clients must accept both, so the simulator uses each where the
real endpoint does (or, where the documentation is silent, where it most plausibly does — those
places say so). :class:`EfiErrors` overrides the standard's answers
(``sandbox/pixapi/errors.py``) exactly where Efí's differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from pydantic import ValidationError

from pixwave.sandbox.pixapi.errors import (
    BCB_ERROR_BASE,
    ApiError,
    ApiRoute,
    Errors,
    Violation,
    problem,
    violations_of,
)

__all__ = [
    "BCB_ERROR_BASE",
    "JSON_INVALIDO_MESSAGE",
    "WRONG_ACCOUNT_KEY",
    "EfiError",
    "EfiErrors",
    "EfiRoute",
    "efi_error",
    "from_validation_error",
    "problem",
    "schema_error",
    "violation",
]

#: Efí's error exception and route class are the standard's: only the bodies differ.
EfiError = ApiError
EfiRoute = ApiRoute

JSON_INVALIDO_MESSAGE: Final = "Valores ou tipos de campo inválidos"
WRONG_ACCOUNT_KEY: Final = "A chave informada não faz referência à conta Efí autenticada"

_SCHEMA_MESSAGES: Final[Mapping[str, str]] = {
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
    "format": "Formato inválido",
}


def efi_error(status: int, nome: str, mensagem: str, **extra: Any) -> ApiError:
    """Efí's own shape: ``{"nome": "<snake_code>", "mensagem": "<pt-BR text>"}``."""
    return ApiError(status, {"nome": nome, "mensagem": mensagem, **extra})


def schema_error(erros: Sequence[Mapping[str, str]]) -> ApiError:
    """400 ``json_invalido`` listing each violation as ``{chave, caminho, mensagem}``."""
    return efi_error(400, "json_invalido", JSON_INVALIDO_MESSAGE, erros=[dict(e) for e in erros])


def violation(keyword: str, path: str, message: str | None = None) -> dict[str, str]:
    """One ``erros[]`` item; ``path`` is Efí's dotted location such as ``.body.valor.original``."""
    return {"chave": keyword, "caminho": path, "mensagem": message or _SCHEMA_MESSAGES[keyword]}


def from_validation_error(exc: ValidationError, root: str = ".body") -> ApiError:
    """Translate pydantic's errors into Efí's ``json_invalido`` list."""
    return schema_error([violation(v.keyword, v.path, v.message) for v in violations_of(exc, root)])


class EfiErrors(Errors):
    """Efí's answers where they are not the standard's."""

    fault_media_type: ClassVar[str] = "application/json"

    def __init__(self) -> None:
        super().__init__("efi")

    def invalid_input(self, resource: str, violations: Sequence[Violation]) -> ApiError:
        return schema_error([violation(v.keyword, v.path, v.message) for v in violations])

    def unauthorised(self) -> ApiError:
        return efi_error(401, "nao_autorizado", "Token de acesso ausente, inválido ou expirado")

    def txid_in_use(self, status: str) -> ApiError | None:
        return efi_error(
            409, "txid_duplicado", "Campo txid informado já foi utilizado em outra cobrança"
        )

    def amount_not_positive(self, resource: str, field: str) -> ApiError:
        return efi_error(400, "valor_invalido", f"Campo {field} deve ser maior que zero")

    def key_not_owned(self) -> ApiError:
        return efi_error(400, "chave_invalida", WRONG_ACCOUNT_KEY)

    def invalid_document(self, field: str) -> ApiError:
        # Efí documents the message, not the ``nome``, of this error; valor_invalido is assumed.
        kind = field.rsplit(".", 1)[-1].upper()
        return efi_error(400, "valor_invalido", f"Documento {kind} em {field} é inválido")

    def loc_invalid(self) -> ApiError:
        return efi_error(400, "location_invalida", "A location informada não pode ser vinculada")

    def loc_not_found(self) -> ApiError:
        return efi_error(404, "location_nao_encontrada", "Location não encontrada")

    def pix_not_found(self, e2e_id: str) -> ApiError:
        return efi_error(
            404, "pix_nao_encontrado", "Nenhum pix encontrado para o identificador informado"
        )

    def refund_id_in_use(self) -> ApiError:
        return efi_error(
            409, "devolucao_id_duplicado", "O id informado já foi utilizado em outra devolução"
        )

    def refund_nature_unavailable(self) -> ApiError:
        return efi_error(
            400, "valor_invalido", "Natureza RETIRADA só se aplica a Pix Saque ou Pix Troco"
        )

    def refund_exceeds(self) -> ApiError:
        # The name and text of this error are not documented; valor_invalido is the closest
        # documented name.
        return efi_error(
            400,
            "valor_invalido",
            "Valor da devolução é maior que o valor disponível para devolução",
        )

    def webhook_key_not_owned(self) -> ApiError:
        return efi_error(400, "chave_invalida", "A chave informada não pertence a esta conta")

    def webhook_not_found(self) -> ApiError:
        # Efí's name for this case; the BCB would answer WebhookNaoEncontrado.
        return efi_error(
            404, "webhook_nao_encontrado", "Webhook não encontrado para a chave informada"
        )

    def webhook_url_invalid(self, https_required: bool) -> ApiError:
        if https_required:
            return efi_error(
                400, "webhook_invalido", "A URL do webhook deve usar o protocolo HTTPS"
            )
        return efi_error(400, "webhook_invalido", "A URL informada é inválida")

    def fault_body(self, status: int, reason: str) -> dict[str, Any]:
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
