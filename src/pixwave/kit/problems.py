"""Problem responses in the OpenAPI document, derived from the error classes an endpoint raises.

Every error PixWave answers on purpose is a `PixWaveError` subclass with a `status_code`, a
stable `code` and a `title` (`exceptions.py`), rendered once as `application/problem+json` in
`app.py`. This module makes the OpenAPI document say the same thing, from the same classes.

**Declaring.** A route lists the errors its service call can raise, and nothing else::

    router = APIRouter(prefix="/v1", tags=["wallet"], route_class=PixWaveRoute)

    @router.post(
        "/transfers", status_code=201, response_model=TransactionRead,
        responses=problems(SameWallet, AccountNotFound, InsufficientFunds),
    )

Find them by reading the service the endpoint calls (grep its `raise`s and the domain's
`errors.py`); a 5xx that means a bug (`UnbalancedPosting`) is not declared.

**Automatic.** :class:`PixWaveRoute` adds what the request itself can answer, read from the
route's signature:

* a dependency listed in :data:`DEPENDENCY_CONTRACTS` brings its errors and parameters:
  `CurrentPrincipal` → 401 `unauthenticated` (and 503: the token lookup reads the database),
  `AdminPrincipal` → 403 `forbidden` too, `Idempotent` → 400 `idempotency_key_missing` /
  `idempotency_key_invalid`, 409 `idempotency_key_in_use`, 422 `idempotency_key_reused`, 503,
  the required `Idempotency-Key` header and the `Idempotent-Replayed` response header;
* a JSON body model → 413 `payload_too_large` and 422 `validation_error`; a body the endpoint
  reads raw (documented with ``openapi_extra={"requestBody": ...}``) → 413;
* a query, header or path parameter that can fail validation (a number, an enum, a length
  limit, a required query) → 422 `validation_error`;
* every operation → `default`: any other status is a Problem too (500 `internal_error`).

Codes that share a status are listed together: the response's description names each with its
title, its schema narrows `code` to an `enum` of them, and each has an example. The route class
also parses JSON bodies strictly (`kit/body.py`). Use it on every router: `tests/test_openapi.py`
walks the whole document and fails on an operation without its problems, and FastAPI's own 422
(`HTTPValidationError`) shows up there for any route that bypasses it.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pixwave.accounts.auth import admin_principal, current_principal
from pixwave.exceptions import (
    Forbidden,
    InternalError,
    PayloadTooLarge,
    PixWaveError,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from pixwave.kit.body import StrictJsonRequest
from pixwave.kit.idempotency import (
    IDEMPOTENCY_ERRORS,
    IDEMPOTENCY_KEY_PARAMETER,
    REPLAYED_HEADER,
    REPLAYED_HEADER_DOC,
    idempotent_request,
)
from pixwave.kit.openapi_links import apply_links
from pixwave.kit.ratelimit import exempt

PROBLEM_JSON: Final = "application/problem+json"
PROBLEM_SCHEMA: Final = "Problem"
PROBLEM_REF: Final = f"#/components/schemas/{PROBLEM_SCHEMA}"

ErrorClass = type[PixWaveError]


def _absent_when_unset(schema: dict[str, Any]) -> None:
    """An optional member is left out of the body, never `null`: no `default: null` either."""
    schema.pop("default", None)


class FieldError(BaseModel):
    """One invalid input of a 422 `validation_error` (`invalid_document`, `invalid_pix_key`)."""

    location: str = Field(
        description="Where: `body.amount`, `query.limit`, `header.Prefer`; `body` alone when "
        "the body is not JSON at all.",
        examples=["body.amount"],
    )
    message: str = Field(description="What is wrong, for a human.")
    type: str = Field(
        description="The kind of error: pydantic's (`missing`, `greater_than`, "
        "`extra_forbidden`, …), ours (`invalid_document`, `invalid_pix_key`), or `json_invalid` "
        "when the body is not one JSON document: malformed, not UTF-8, nested deeper than 1024 "
        "levels, or repeating a key inside an object (the message names the key)."
    )


class Problem(BaseModel):
    """RFC 9457 problem details. `code` is the contract to branch on; `title` and `detail`
    are for humans and may change. Some codes add members of their own (`reason` on
    `webhook_rejected`, `remaining` on `refund_exceeds_remaining`, `wallet_id` on
    `insufficient_funds`)."""

    model_config = ConfigDict(extra="allow", title=PROBLEM_SCHEMA)

    type: str = Field(
        description="`urn:pixwave:error:<code>`.", examples=["urn:pixwave:error:not_found"]
    )
    title: str = Field(description="A short summary of the kind of error.")
    status: int = Field(description="The HTTP status, repeated.", examples=[404])
    detail: str = Field(description="What happened to this request, for a human.")
    code: str = Field(description="The stable error code.", examples=["not_found"])
    instance: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The request path.",
        examples=["/v1/wallet"],
        json_schema_extra=_absent_when_unset,
    )
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None,
        description="Every invalid input, on a 422 validation error.",
        json_schema_extra=_absent_when_unset,
    )


@dataclass(frozen=True)
class Contract:
    """What a shared dependency adds to the document of every route that depends on it."""

    errors: tuple[ErrorClass, ...]
    parameters: tuple[dict[str, Any], ...] = ()
    success_headers: dict[str, dict[str, Any]] = field(default_factory=dict)


#: The shared dependencies, by the function FastAPI calls; the walk finds them at any depth
#: (`admin_principal` itself depends on `current_principal`).
DEPENDENCY_CONTRACTS: Final[dict[Callable[..., Any], Contract]] = {
    current_principal: Contract((Unauthenticated, ServiceUnavailable)),
    admin_principal: Contract((Forbidden,)),
    idempotent_request: Contract(
        IDEMPOTENCY_ERRORS,
        parameters=(IDEMPOTENCY_KEY_PARAMETER,),
        success_headers={REPLAYED_HEADER: REPLAYED_HEADER_DOC},
    ),
}

#: Any status an operation does not list.
UNLISTED: Final[tuple[ErrorClass, ...]] = (InternalError,)


class ProblemResponse(dict[str, Any]):
    """An OpenAPI response object that remembers the error classes it was rendered from, so
    the route class can merge them with its automatic ones into one response per status."""

    def __init__(self, errors: Sequence[ErrorClass], rendered: dict[str, Any]) -> None:
        super().__init__(rendered)
        self.errors = tuple(errors)


def problems(*errors: ErrorClass) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: one problem+json response per status of `errors`."""
    by_status: dict[int, list[ErrorClass]] = {}
    for error in errors:
        same_status = by_status.setdefault(error.status_code, [])
        if all(known.code != error.code for known in same_status):
            same_status.append(error)
    return {
        status: ProblemResponse(group, _response(group, status))
        for status, group in sorted(by_status.items())
    }


def _response(errors: Sequence[ErrorClass], status: int | None) -> dict[str, Any]:
    codes = [error.code for error in errors]
    narrowed: dict[str, Any] = {"code": {"enum": codes}}
    if status is None:
        summary = "Any other status."
        listing = "\n".join(f"- `{e.code}` ({e.status_code}): {e.title}" for e in errors)
    else:
        summary = f"{http.HTTPStatus(status).phrase}."
        narrowed["status"] = {"const": status}
        listing = "\n".join(f"- `{e.code}`: {e.title}" for e in errors)
    return {
        "description": f"{summary} `code` is one of:\n\n{listing}",
        "content": {
            PROBLEM_JSON: {
                "schema": {"allOf": [{"$ref": PROBLEM_REF}, {"properties": narrowed}]},
                "examples": {
                    error.code: {"summary": error.title, "value": _example(error)}
                    for error in errors
                },
            }
        },
    }


def _example(error: ErrorClass) -> dict[str, Any]:
    return {
        "type": f"urn:pixwave:error:{error.code}",
        "title": error.title,
        "status": error.status_code,
        "detail": error.title,
        "code": error.code,
        **vars(error).get("example", {}),
    }


class PixWaveRoute(APIRoute):
    """Every PixWave API route: strict JSON bodies, and its problems in the document."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        # Once each: `idempotent_request` and the endpoint may both depend on the principal.
        calls = dict.fromkeys(_calls(self.dependant))
        contracts = [DEPENDENCY_CONTRACTS[call] for call in calls if call in DEPENDENCY_CONTRACTS]
        errors: list[ErrorClass] = []
        if self.body_field is not None or "requestBody" in (self.openapi_extra or {}):
            errors.append(PayloadTooLarge)
        if self.body_field is not None or _validates_parameters(self.dependant):
            errors.append(ValidationFailed)
        errors.extend(error for contract in contracts for error in contract.errors)
        if not exempt(self.path):  # the rate limiter answers before the route (kit/ratelimit)
            errors.append(RateLimited)
        kept: dict[int | str, dict[str, Any]] = {}
        for status, response in self.responses.items():
            if isinstance(response, ProblemResponse):
                errors.extend(response.errors)
            else:
                kept[status] = response
        headers = {k: v for contract in contracts for k, v in contract.success_headers.items()}
        if headers:
            status = self.status_code or 200  # FastAPI's default, as it documents it
            success = kept.get(status, {})
            kept[status] = {**success, "headers": {**success.get("headers", {}), **headers}}
        self.responses = {
            **kept,
            **problems(*errors),
            "default": ProblemResponse(UNLISTED, _response(UNLISTED, None)),
        }
        parameters = [parameter for contract in contracts for parameter in contract.parameters]
        if parameters:
            extra = dict(self.openapi_extra or {})
            extra["parameters"] = [*extra.get("parameters", []), *parameters]
            self.openapi_extra = extra

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A method this path does not take is 405 with `Allow` naming **every** method the
        path takes: Starlette would name only this route's, though each method of a path is a
        route of its own (`GET` and `POST /v1/users`)."""
        if self.methods and scope["method"] not in self.methods:
            allowed = set(self.methods)
            for route in _routes(getattr(scope.get("router"), "routes", [])):
                if route.path_format == self.path_format and route.methods:
                    allowed |= route.methods
            raise StarletteHTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def strict_json(request: Request) -> Response:
            return await handle(StrictJsonRequest(request.scope, request.receive))

        return strict_json


def _routes(routes: Sequence[Any]) -> Iterator[Route]:
    """Every route, those of included routers too (FastAPI nests an included router as one
    entry holding the `original_router`; a mount holds `routes`)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        inner = getattr(route, "routes", None)
        if inner is None:
            inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner:
            yield from _routes(inner)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for each in _dependants(dependant):
        if each.call is not None:
            yield each.call


#: Parameter types that accept any text, so only a missing required one can fail.
_ANY_TEXT: Final = (str, str | None)


def _validates_parameters(dependant: Dependant) -> bool:
    """Whether some query, header, cookie or path parameter can fail validation (FastAPI would
    document a 422 for any parameter at all, even a plain text one that cannot)."""
    for each in _dependants(dependant):
        for in_path, fields in (
            (True, each.path_params),
            (False, [*each.query_params, *each.header_params, *each.cookie_params]),
        ):
            for param in fields:
                info = param.field_info
                if info.metadata or info.annotation not in _ANY_TEXT:
                    return True
                if info.is_required() and not in_path:
                    return True
    return False


def add_problem_schemas(app: FastAPI) -> None:
    """Put `Problem` (and `FieldError`) in the document's components, where every problem
    response points. They are not any route's model, so FastAPI would not add them itself.
    The document's links (`kit/openapi_links.py`) are added here too, in the same pass."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, cached on the app after the first call
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if PROBLEM_SCHEMA not in schemas:
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(problem.pop("$defs", {}))
            schemas[PROBLEM_SCHEMA] = problem
        return apply_links(document)

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point
