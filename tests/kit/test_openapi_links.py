"""The links of the OpenAPI document: one table, applied when the document is built."""

from __future__ import annotations

from typing import Any

import pytest

from pixwave.app import create_app
from pixwave.kit.openapi_links import LINKS, Link, apply_links
from tests.conftest import make_settings

Document = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Document:
    return create_app(make_settings()).openapi()


def _operation(document: Document, method: str, path: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = document["paths"].get(path, {}).get(method.lower())
    return found


class TestLinks:
    def test_the_payment_chain_is_linked(self, document: Document) -> None:
        """User → token, deposit → transaction and refund, by the new resource's id."""
        users = document["paths"]["/v1/users"]["post"]["responses"]["201"]["links"]
        assert users["IssueToken"]["parameters"] == {"user_id": "$response.body#/id"}
        target = document["paths"]["/v1/users/{user_id}/tokens"]["post"]["operationId"]
        assert users["IssueToken"]["operationId"] == target
        for status in ("200", "202"):
            deposit = document["paths"]["/v1/deposits"]["post"]["responses"][status]["links"]
            assert deposit["RefundDeposit"]["parameters"] == {
                "transaction_id": "$response.body#/id"
            }

    def test_every_link_names_its_targets_parameters(self, document: Document) -> None:
        """A link only sets parameters its target operation has, in its path."""
        applied = 0
        for link in LINKS:
            source = _operation(document, *link.source)
            target = _operation(document, *link.target)
            if source is None or target is None:
                continue
            names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
            assert set(link.parameters) <= names, link.name
            applied += 1
        assert applied >= 15

    def test_an_absent_operation_is_left_out(self) -> None:
        """A row naming an operation the app does not serve adds nothing and breaks nothing."""
        document: Document = {
            "paths": {"/v1/users": {"post": {"responses": {"201": {"description": "ok"}}}}}
        }
        link = Link("Gone", ("POST", "/v1/users"), ("201",), ("GET", "/v1/nowhere/{id}"))
        assert apply_links(document, (link,)) == document
        assert "links" not in document["paths"]["/v1/users"]["post"]["responses"]["201"]

    def test_applying_twice_changes_nothing(self, document: Document) -> None:
        """The document FastAPI caches is built once; applying the table again is a no-op."""
        before = repr(document)
        apply_links(document)
        assert repr(document) == before
