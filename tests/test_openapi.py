"""The OpenAPI document tells the truth about errors, and the docs pages work offline.

`undocumented` walks every operation of a document, so an endpoint added without its problems
fails here whatever its path; the tests that call the app check a sample of documented codes
against what the app really answers, body shape included.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from pixwave.accounts.auth import AdminPrincipal, CurrentPrincipal
from pixwave.app import create_app
from pixwave.exceptions import PixWaveError
from pixwave.gateways.specs import SPECS
from pixwave.kit.idempotency import IDEMPOTENCY_ERRORS, Idempotent
from pixwave.kit.problems import PROBLEM_JSON, PROBLEM_REF, PixWaveRoute, add_problem_schemas
from pixwave.resources import Resources
from tests.conftest import make_settings
from tests.factories import Actor, create_actor

Document = dict[str, Any]
Operation = tuple[str, str, dict[str, Any]]


def operations(document: Document) -> Iterator[Operation]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def is_error(status: str) -> bool:
    return status == "default" or status[0] in "45"


def problem_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    """The response's schema if it is the shared Problem (or narrows it with `allOf`)."""
    schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    if schema.get("$ref") == PROBLEM_REF or schema.get("allOf", [{}])[0].get("$ref") == PROBLEM_REF:
        return dict(schema)
    return None


def codes(operation: dict[str, Any], status: str) -> set[str]:
    """The `code` values an operation documents for a status."""
    response = operation.get("responses", {}).get(status)
    schema = problem_schema(response) if response else None
    if schema is None:
        return set()
    narrowed = schema.get("allOf", [{}, {}])[1].get("properties", {})
    return set(narrowed.get("code", {}).get("enum", []))


def error_statuses() -> dict[str, set[int]]:
    """Every PixWaveError code and the statuses its classes carry (the source of truth)."""
    found: dict[str, set[int]] = {}
    pending: list[type[PixWaveError]] = [PixWaveError]
    while pending:
        error = pending.pop()
        found.setdefault(error.code, set()).add(error.status_code)
        pending.extend(error.__subclasses__())
    return found


def undocumented(document: Document) -> list[str]:
    """Every way the document's operations fall short of the error contract, one line each."""
    gaps = []
    if "HTTPValidationError" in json.dumps(document):
        gaps.append("FastAPI's HTTPValidationError is in the document")
    if "ValidationError" in document.get("components", {}).get("schemas", {}):
        gaps.append("FastAPI's ValidationError schema is in the document")
    known = error_statuses()
    for method, path, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses: dict[str, Any] = operation.get("responses", {})
        if "default" not in responses:
            gaps.append(f"{where}: no `default` problem response")
        for status, response in responses.items():
            if not is_error(status):
                continue
            if list(response.get("content", {})) != [PROBLEM_JSON] or not problem_schema(response):
                gaps.append(f"{where} {status}: not an {PROBLEM_JSON} Problem")
            for code in codes(operation, status):
                if code not in known:
                    gaps.append(f"{where} {status}: `{code}` is no error class's code")
                elif status != "default" and int(status) not in known[code]:
                    gaps.append(f"{where} {status}: `{code}` is a {sorted(known[code])} error")
        if operation.get("security") and "unauthenticated" not in codes(operation, "401"):
            gaps.append(f"{where}: authenticated, but no 401 `unauthenticated`")
        if "requestBody" in operation:
            if "payload_too_large" not in codes(operation, "413"):
                gaps.append(f"{where}: takes a body, but no 413 `payload_too_large`")
            # A webhook answers its provider 401 for an unreadable body, as for a bad signature.
            validated = "validation_error" in codes(operation, "422")
            if not validated and "webhook_rejected" not in codes(operation, "401"):
                gaps.append(f"{where}: takes a body, but no 422 `validation_error`")
        if method == "post" and operation.get("security"):
            keys = [
                p
                for p in operation.get("parameters", [])
                if p["in"] == "header" and p["name"].lower() == "idempotency-key"
            ]
            if not keys or keys[0].get("required") is not True:
                gaps.append(f"{where}: no required Idempotency-Key header")
            for error in IDEMPOTENCY_ERRORS:
                if error.code not in codes(operation, str(error.status_code)):
                    gaps.append(f"{where}: no {error.status_code} `{error.code}`")
    return gaps


class Thing(BaseModel):
    """The body of an endpoint made up for the walker's own tests."""

    name: str


@pytest.fixture(scope="module")
def document() -> Document:
    """The document of an app built like production's (no database needed to generate it)."""
    return create_app(make_settings()).openapi()


def validator(document: Document, schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for a schema of the document, its `#/components/...` references resolved."""
    return Draft202012Validator({**schema, "components": document["components"]})


class TestDocumentedProblems:
    def test_every_operation_documents_its_problems(self, document: Document) -> None:
        """No operation lacks its 401, 413, 422, idempotency errors or Problem content."""
        assert undocumented(document) == []

    def test_the_walker_catches_an_undeclared_endpoint(self) -> None:
        """A new endpoint on a plain router (no PixWaveRoute) is caught, whatever its path."""

        plain = APIRouter()

        @plain.post("/v1/things", status_code=201)
        async def create_thing(body: Thing, principal: CurrentPrincipal, call: Idempotent) -> None:
            """Not declared anywhere."""

        app = FastAPI()
        app.include_router(plain)
        gaps = undocumented(app.openapi())
        assert any("HTTPValidationError" in gap for gap in gaps)
        assert any("no 401" in gap for gap in gaps)
        assert any("Idempotency-Key" in gap for gap in gaps)
        assert any("413" in gap for gap in gaps)

    def test_the_same_endpoint_on_the_route_class_passes(self) -> None:
        """Declared through PixWaveRoute, the same endpoint needs nothing more to pass."""

        router = APIRouter(route_class=PixWaveRoute)

        @router.post("/v1/things", status_code=201)
        async def create_thing(body: Thing, principal: AdminPrincipal, call: Idempotent) -> None:
            """Automatic problems only."""

        app = FastAPI()
        add_problem_schemas(app)
        app.include_router(router)
        document = app.openapi()
        assert undocumented(document) == []
        operation = document["paths"]["/v1/things"]["post"]
        assert codes(operation, "403") == {"forbidden"}

    def test_every_example_fits_its_schema(self, document: Document) -> None:
        """Each code's example is a valid body of the response it illustrates."""
        for method, path, operation in operations(document):
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get(PROBLEM_JSON)
                if media is None:
                    continue
                check = validator(document, media["schema"])
                for code, example in media["examples"].items():
                    errors = [e.message for e in check.iter_errors(example["value"])]
                    assert errors == [], f"{method} {path} {status} {code}: {errors}"

    def test_codes_are_listed_in_each_description(self, document: Document) -> None:
        """A reader of the description sees every code the schema allows."""
        for _, _, operation in operations(document):
            for status, response in operation["responses"].items():
                for code in codes(operation, status):
                    assert f"`{code}`" in response["description"]


class TestDocumentedOperations:
    def test_transfer_lists_its_domain_errors(self, document: Document) -> None:
        """POST /v1/transfers: its service's errors next to the automatic ones."""
        operation = document["paths"]["/v1/transfers"]["post"]
        assert codes(operation, "400") == {
            "idempotency_key_missing",
            "idempotency_key_invalid",
            "same_wallet",
        }
        assert codes(operation, "402") == {"insufficient_funds"}
        assert codes(operation, "404") == {"wallet_not_found"}
        assert codes(operation, "409") == {"idempotency_key_in_use"}
        assert codes(operation, "422") == {
            "validation_error",
            "idempotency_key_reused",
            "invalid_text",
        }
        # No admin token needed: the only 403s are the payer's money limits.
        assert codes(operation, "403") == {
            "transaction_limit_exceeded",
            "nighttime_limit_exceeded",
            "daily_limit_exceeded",
        }

    def test_rate_limited_operations_document_429_and_exempt_ones_do_not(
        self, document: Document
    ) -> None:
        """The limiter answers 429 before any route it covers; probes, `/metrics` and gateway
        webhooks are exempt (kit/ratelimit.py) and say nothing of it."""
        assert codes(document["paths"]["/v1/transfers"]["post"], "429") == {"rate_limited"}
        assert codes(document["paths"]["/v1/me"]["get"], "429") == {"rate_limited"}
        for path in ("/healthz", "/readyz", "/webhooks/{gateway}", "/webhooks/{gateway}/{path}"):
            for operation in document["paths"][path].values():
                assert "429" not in operation["responses"], path

    def test_admin_operations_document_403(self, document: Document) -> None:
        """Operations behind an admin token say a user token is refused."""
        for method, path in (("post", "/v1/users"), ("post", "/v1/admin/adjustments")):
            assert codes(document["paths"][path][method], "403") == {"forbidden"}

    def test_plain_text_path_parameters_cannot_fail(self, document: Document) -> None:
        """A route whose only parameter is a plain id documents no 422 it cannot answer."""
        assert (
            "422" not in document["paths"]["/v1/transactions/{transaction_id}"]["get"]["responses"]
        )
        assert codes(document["paths"]["/v1/transactions"]["get"], "422") == {"validation_error"}

    @pytest.mark.parametrize(
        "path", ["/v1/deposits", "/v1/withdrawals", "/v1/transactions/{transaction_id}/refunds"]
    )
    def test_prefer_wait_documents_200_next_to_202(self, document: Document, path: str) -> None:
        """`Prefer: wait=N` can answer 200 with the moved-on payment; both are documented."""
        responses = document["paths"][path]["post"]["responses"]
        for status in ("200", "202"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/TransactionRead"}
        assert "Preference-Applied" in responses["200"]["headers"]
        assert "Idempotent-Replayed" in responses["202"]["headers"]

    @pytest.mark.parametrize("path", ["/webhooks/{gateway}", "/webhooks/{gateway}/{path}"])
    def test_webhooks_document_body_and_rejections(self, document: Document, path: str) -> None:
        """The one webhook route shows every family's body (each example valid against the
        schema), its 401 rejection and 404 unknown gateway."""
        operation = document["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]
        assert {example for example in body["examples"]} == {spec.family for spec in SPECS}
        for example in body["examples"].values():
            assert Draft202012Validator(body["schema"]).is_valid(example["value"])
        assert len(body["schema"]["anyOf"]) == len(SPECS)
        assert codes(operation, "401") == {"webhook_rejected"}
        assert codes(operation, "404") == {"gateway_not_found"}
        assert codes(operation, "413") == {"payload_too_large"}
        assert "security" not in operation

    def test_each_familys_parameters_are_documented(self, document: Document) -> None:
        """Every family's signed headers and query parameters are on the route, named with
        their family (each applies to one family, so none is required of all)."""
        parameters = {
            (p["in"], p["name"]): p
            for p in document["paths"]["/webhooks/{gateway}"]["post"]["parameters"]
        }
        for spec in SPECS:
            for parameter in spec.notification_doc.get("parameters", []):
                documented = parameters[parameter["in"], parameter["name"]]
                assert documented["required"] is False
                assert f"{spec.title}: " in documented["description"]

    def test_problem_schema_has_the_handlers_members(self, document: Document) -> None:
        """The shared Problem has every member the handlers send, `errors` as field errors."""
        problem = document["components"]["schemas"]["Problem"]
        assert set(problem["properties"]) == {
            "type",
            "title",
            "status",
            "detail",
            "code",
            "instance",
            "errors",
        }
        assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
        field_error = document["components"]["schemas"]["FieldError"]
        assert set(field_error["properties"]) == {"location", "message", "type"}


# --- what the app answers is what the document says ---------------------------------------


@pytest.fixture
async def served(client: httpx.AsyncClient) -> Document:
    document: Document = (await client.get("/openapi.json")).json()
    return document


def assert_documented(
    document: Document, method: str, path: str, response: httpx.Response, code: str
) -> None:
    """The answer is a documented status and code, and its body fits the documented schema."""
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    body = response.json()
    assert body["code"] == code, body
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert code in codes(operation, status), f"{method} {path} {status} does not list {code}"
    schema = operation["responses"][status]["content"][PROBLEM_JSON]["schema"]
    assert [e.message for e in validator(document, schema).iter_errors(body)] == []


@pytest.fixture
async def ana(resources: Resources) -> Actor:
    """A user with R$ 10,00."""
    return await create_actor(resources, balance=1_000)


class TestDocumentedCodesAreAnswered:
    async def test_missing_idempotency_key(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """A POST without Idempotency-Key is the documented 400, not FastAPI's 422."""
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": "wal_x", "amount": 1},
            headers={"Authorization": f"Bearer {ana.token}"},
        )
        assert response.status_code == 400
        assert_documented(served, "post", "/v1/transfers", response, "idempotency_key_missing")

    async def test_invalid_idempotency_key(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """A key with a space in it is the documented 400 `idempotency_key_invalid`."""
        response = await client.post(
            "/v1/deposits", json={"amount": 100}, headers=ana.headers("not a key")
        )
        assert_documented(served, "post", "/v1/deposits", response, "idempotency_key_invalid")

    async def test_reused_idempotency_key(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """The same key with another body is the documented 422 `idempotency_key_reused`."""
        key = str(uuid.uuid4())
        first = await client.post("/v1/deposits", json={"amount": 100}, headers=ana.headers(key))
        assert first.status_code == 202, first.text
        again = await client.post("/v1/deposits", json={"amount": 200}, headers=ana.headers(key))
        assert_documented(served, "post", "/v1/deposits", again, "idempotency_key_reused")

    async def test_no_token(self, client: httpx.AsyncClient, served: Document) -> None:
        """No bearer token is the documented 401."""
        response = await client.get("/v1/wallet")
        assert_documented(served, "get", "/v1/wallet", response, "unauthenticated")

    async def test_user_token_on_admin_route(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """A user's token on an operator's route is the documented 403."""
        response = await client.post(
            "/v1/admin/adjustments",
            json={
                "wallet_id": ana.wallet_id,
                "amount": 1,
                "direction": "credit",
                "reason": "test",
            },
            headers=ana.headers(),
        )
        assert_documented(served, "post", "/v1/admin/adjustments", response, "forbidden")

    async def test_insufficient_funds(
        self, client: httpx.AsyncClient, served: Document, resources: Resources, ana: Actor
    ) -> None:
        """More than the balance is the documented 402."""
        bia = await create_actor(resources)
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": bia.wallet_id, "amount": 1_001},
            headers=ana.headers(),
        )
        assert_documented(served, "post", "/v1/transfers", response, "insufficient_funds")

    async def test_same_wallet(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """Paying oneself is the documented 400 `same_wallet`."""
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": ana.wallet_id, "amount": 1},
            headers=ana.headers(),
        )
        assert_documented(served, "post", "/v1/transfers", response, "same_wallet")

    async def test_unknown_transaction(
        self, client: httpx.AsyncClient, served: Document, ana: Actor
    ) -> None:
        """An unknown id is the documented 404 `transaction_not_found`."""
        response = await client.get("/v1/transactions/txn_nope", headers=ana.headers())
        assert_documented(
            served, "get", "/v1/transactions/{transaction_id}", response, "transaction_not_found"
        )

    async def test_bad_body(self, client: httpx.AsyncClient, served: Document, ana: Actor) -> None:
        """A body that is not JSON is the documented 422 `validation_error`, with `errors`."""
        response = await client.post(
            "/v1/transfers",
            content=b'{"amount": 1, "amount": 2}',
            headers={**ana.headers(), "content-type": "application/json"},
        )
        assert_documented(served, "post", "/v1/transfers", response, "validation_error")

    async def test_bad_query(self, client: httpx.AsyncClient, served: Document, ana: Actor) -> None:
        """A limit out of range is the documented 422 of a GET."""
        response = await client.get("/v1/transactions?limit=0", headers=ana.headers())
        assert_documented(served, "get", "/v1/transactions", response, "validation_error")

    async def test_too_large(self, client: httpx.AsyncClient, served: Document, ana: Actor) -> None:
        """An oversized body is the documented 413."""
        response = await client.post(
            "/v1/transfers",
            json={"to_wallet_id": "wal_x", "amount": 1, "description": "x" * 100_000},
            headers=ana.headers(),
        )
        assert_documented(served, "post", "/v1/transfers", response, "payload_too_large")

    async def test_rejected_webhook(self, client: httpx.AsyncClient, served: Document) -> None:
        """An unsigned Mercado Pago notification is the documented 401 `webhook_rejected`."""
        response = await client.post("/webhooks/mercadopago", json={"id": 1})
        assert response.status_code in (401, 404), response.text
        code = "webhook_rejected" if response.status_code == 401 else "gateway_not_found"
        assert_documented(served, "post", "/webhooks/{gateway}", response, code)


# --- the docs pages load nothing from a CDN ------------------------------------------------

_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture(scope="module")
async def docs_client() -> AsyncIterator[httpx.AsyncClient]:
    """The production app over ASGI; the docs pages need no database."""
    transport = httpx.ASGITransport(app=create_app(make_settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as client:
        yield client


class TestOfflineDocs:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_page_loads_only_its_own_assets(
        self, docs_client: httpx.AsyncClient, page: str
    ) -> None:
        """Every script and stylesheet of the page is served by the app, none by a CDN."""
        response = await docs_client.get(page)
        assert response.status_code == 200
        assert not re.search(r"https?://", response.text), "an absolute URL is left in the page"
        assets = _ASSET.findall(response.text)
        assert any(asset.endswith(".js") for asset in assets)
        for asset in assets:
            assert asset.startswith("/"), asset
            served = await docs_client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1_000 or asset.endswith(".png"), asset

    async def test_docs_point_at_the_document(self, docs_client: httpx.AsyncClient) -> None:
        """Both pages read /openapi.json, which the app serves."""
        for page in ("/docs", "/redoc"):
            assert "/openapi.json" in (await docs_client.get(page)).text
        assert (await docs_client.get("/openapi.json")).status_code == 200
