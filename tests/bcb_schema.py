"""The Central Bank's API Pix 2.9.0 OpenAPI, loaded for validating simulators' answers.

Schemas come from the file in ``tests/data`` and are checked with ``openapi_schema_validator``'s
OAS 3.0 read validator (responses: ``readOnly`` fields allowed); ``$ref`` resolves inside the
loaded YAML through a ``referencing`` registry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).parent / "data" / "bcb-pix-api-2.9.0.openapi.yaml"
SPEC_URI = "urn:bcb:pix-api:2.9.0"
#: ``WebhookPixBody``'s schema (the ``/`` of ``application/json`` escaped as JSON pointer ``~1``).
WEBHOOK_BODY = "requestBodies/WebhookPixBody/content/application~1json/schema"
#: How the spec writes a CPF pattern: a JavaScript regex literal (see ``load_spec``).
JS_CPF_PATTERN = "/^\\d{11}$/"

#: ``validate("schemas/CobGerada", body)`` raises jsonschema.ValidationError when it breaks it.
Validate = Callable[[str, Any], None]


def _fix_patterns(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("pattern") == JS_CPF_PATTERN:
            node["pattern"] = "^\\d{11}$"
        for value in node.values():
            _fix_patterns(value)
    elif isinstance(node, list):
        for value in node:
            _fix_patterns(value)


@cache
def load_spec(*, webhook_shows_key: bool = False) -> dict[str, Any]:
    """The spec, with the defects of the published 2.9.0 file corrected.

    Always fixed, as they make valid answers fail:

    1. CPF patterns are JavaScript regex literals (``/^\\d{11}$/``): as a JSON-schema pattern
       the slashes are literal characters, so no CPF could ever match ``PessoaFisica``.
    2. ``CobsConsultadas`` (and ``CobsVConsultadas``) require each item to have ``idCob``, a
       field defined nowhere in the spec: the requirement is dropped.
    3. ``PixConsultados`` requires ``cobs`` (a copy of ``CobsConsultadas``), while its list is
       ``pix``: it requires ``pix``.

    ``webhook_shows_key``: ``WebhookCompleto`` requires ``cnpj``, while the spec's own example
    for ``GET /webhook/{chave}`` (``webhookResponse1``) has ``chave`` and no ``cnpj`` — as Efí
    answers. With this flag the example is taken as the truth: ``chave`` is required instead.

    Parsed once per flag and shared: callers read it, never change it.
    """
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    _fix_patterns(spec)
    schemas = spec["components"]["schemas"]
    for listing in ("CobsConsultadas", "CobsVConsultadas"):
        for part in schemas[listing]["properties"]["cobs"]["items"]["allOf"]:
            if "idCob" in part.get("required", []):
                part["required"] = [name for name in part["required"] if name != "idCob"]
    schemas["PixConsultados"]["required"] = ["parametros", "pix"]
    if webhook_shows_key:
        schemas["WebhookCompleto"]["required"] = [
            "webhookUrl",
            "chave",
            "criacao",
        ]
    return spec


@cache
def validator(*, webhook_shows_key: bool = False) -> Validate:
    """A checker of instances against the spec's components (``schemas/Pix``, …)."""
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI,
        Resource.from_contents(
            load_spec(webhook_shows_key=webhook_shows_key), default_specification=DRAFT4
        ),
    )

    def check(pointer: str, instance: Any) -> None:
        OAS30ReadValidator(
            {"$ref": f"{SPEC_URI}#/components/{pointer}"},
            registry=registry,
            format_checker=oas30_format_checker,
        ).validate(instance)

    return check


class UndocumentedAnswer(AssertionError):
    """An answer the specification does not describe (a path, method or status it lacks)."""


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$")


class ResponseChecker:
    """Checks an answer against what the spec declares for its operation and status.

    ``check(method, path, status, content_type, body)``: ``path`` is the API path without the
    PSP's version prefix (``/cob/…``). The declared response may name a schema (the body must
    be JSON of that schema, in the declared media type) or none (the body must be empty).
    Statuses the spec does not list for the operation raise :class:`UndocumentedAnswer` — except
    401, which the spec leaves to OAuth (RFC 6750), checked as a ``Problema`` when it has a body.
    """

    def __init__(self, *, webhook_shows_key: bool = False) -> None:
        self.spec = load_spec(webhook_shows_key=webhook_shows_key)
        self.validate = validator(webhook_shows_key=webhook_shows_key)
        self.paths = [(_template(p), p) for p in self.spec["paths"]]
        #: (method, template, status) of every answer checked, for coverage assertions.
        self.seen: set[tuple[str, str, int]] = set()

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        # Literal segments win over parameters (``/cob`` over ``/{pixUrlAccessToken}``).
        matches = [t for pattern, t in self.paths if pattern.match(path)]
        for template in sorted(matches, key=lambda t: t.count("{")):
            operation = self.spec["paths"][template].get(method.lower())
            if operation is not None:
                return template, operation
        raise UndocumentedAnswer(f"the spec has no {method} {path}")

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node and node["$ref"].startswith("#/components/responses/"):
            node = self.spec["components"]["responses"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        template, operation = self._operation(method, path)
        declared = operation.get("responses", {}).get(str(status))
        if declared is None and status == 401:
            problem = {"schema": {"$ref": "#/components/schemas/Problema"}}
            declared = {"content": {"application/problem+json": problem}}
        if declared is None:
            raise UndocumentedAnswer(f"{method} {template} does not answer {status}")
        content = self._resolve(declared).get("content")
        self.seen.add((method.upper(), template, status))
        if not content:
            if body.strip():
                raise UndocumentedAnswer(f"{method} {template} {status} has no body: {body!r}")
            return
        media = content_type.split(";")[0].strip()
        if media not in content:
            raise UndocumentedAnswer(
                f"{method} {template} {status} answers {sorted(content)}, not {media!r}"
            )
        ref = content[media]["schema"].get("$ref", "")
        if not ref.startswith("#/components/"):
            raise UndocumentedAnswer(f"{method} {template} {status}: inline schema unsupported")
        self.validate(ref.removeprefix("#/components/"), json.loads(body))
