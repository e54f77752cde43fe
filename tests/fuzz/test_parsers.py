"""Fuzzing the parsers that read what strangers send: BR Codes, Pix keys, documents, and the
gateways' webhook bodies.

Each parser may answer only with its documented error (``PixFormatError``, or
``WebhookRejected`` for a notification) — never another exception, never a hang (every example
has a deadline). Inputs are generated (arbitrary text, arbitrary JSON) and mutated from valid
ones (characters flipped, inserted, deleted; CRCs recomputed so the mutation reaches past the
checksum). A webhook body is fuzzed *behind* a valid credential: the signature or secret
passes, so the body parser is what is exercised.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixwave.gateways.base import InboundWebhook, PixGateway, WebhookEvent
from pixwave.gateways.efi import EfiConnector, EfiWebhookAuth
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.mercadopago import MercadoPagoConnector
from pixwave.gateways.pixapi import PixApiConnector, WebhookAuth
from pixwave.pix import (
    PixFormatError,
    build_dynamic_brcode,
    build_static_brcode,
    crc16_hex,
    parse_brcode,
    parse_pix_key,
    validate_document,
)

FUZZ = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])

VALID_CODES = [
    build_static_brcode(
        key="pix@bcb.gov.br", merchant_name="Ana", merchant_city="Sao Paulo", amount_centavos=1
    ),
    build_dynamic_brcode(
        location_url="pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd441",
        merchant_name="PixWave",
        merchant_city="Rio",
        amount_centavos=12_345,
    ),
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """A valid input with a few characters flipped, inserted or deleted; for a BR Code, its
    CRC often recomputed so the parser looks past the checksum."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        char = draw(st.characters(codec="utf-8"))
        if action == "flip":
            text = text[:at] + char + text[at + 1 :]
        elif action == "insert":
            text = text[:at] + char + text[at:]
        else:
            text = text[:at] + text[at + 1 :]
    if draw(st.booleans()) and len(text) > 4:
        body = text[:-4]
        text = body + crc16_hex(body)
    return text


class TestPixParsers:
    @FUZZ
    @given(st.text() | mutated(VALID_CODES))
    def test_a_br_code_parses_or_says_why(self, text: str) -> None:
        with contextlib.suppress(PixFormatError):  # the documented refusal; anything else fails
            parse_brcode(text)

    @FUZZ
    @given(st.text(max_size=120) | mutated(["pix@bcb.gov.br", "+5511987654321", "52998224725"]))
    def test_a_pix_key_parses_or_says_why(self, text: str) -> None:
        with contextlib.suppress(PixFormatError):  # the documented refusal; anything else fails
            parse_pix_key(text)

    @FUZZ
    @given(st.text(max_size=40) | mutated(["52998224725", "12ABC34501DE35", "11222333000181"]))
    def test_a_document_validates_or_says_why(self, text: str) -> None:
        with contextlib.suppress(PixFormatError):  # the documented refusal; anything else fails
            validate_document(text)


# --- webhook bodies behind a valid credential ---------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)

MP_SECRET = "fuzz-secret"
HMAC = "fuzz-hmac"
PIX_ITEM = {
    "endToEndId": "E12345678202405011215abcdef12345",
    "txid": "txn01JD3Q2ZV8K9M4N6P7R8S9T0VW",
    "valor": "10.00",
    "horario": "2024-05-01T12:15:42.000Z",
    "devolucoes": [{"id": "D1", "rtrId": "D9", "valor": "1.00", "status": "DEVOLVIDO"}],
}
MP_BODY = {"id": 1, "type": "payment", "action": "payment.updated", "data": {"id": "123"}}


def _bodies(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Arbitrary JSON, the valid body with any one field replaced by arbitrary JSON, and raw
    byte noise."""
    replaced = st.builds(
        lambda key, value: json.dumps({**valid, key: value}, default=str).encode(),
        st.sampled_from(sorted(valid)),
        json_values,
    )
    return (
        json_values.map(lambda v: json.dumps(v, default=str).encode())
        | replaced
        | st.binary(max_size=200)
        | mutated([json.dumps(valid)]).map(lambda s: s.encode("utf-8", "replace"))
    )


def _only_documented(gateway: PixGateway, request: InboundWebhook) -> None:
    try:
        events = gateway.verify_webhook(request)
    except WebhookRejected:
        return
    assert all(isinstance(event, WebhookEvent) for event in events)


class TestWebhookBodies:
    @FUZZ
    @given(_bodies(MP_BODY))
    def test_mercado_pago(self, body: bytes) -> None:
        _only_documented(*_mercado_pago(body))

    @FUZZ
    @given(_bodies({"pix": [PIX_ITEM]}))
    def test_efi(self, body: bytes) -> None:
        _only_documented(*_efi(body))

    @FUZZ
    @given(_bodies({"pix": [PIX_ITEM]}))
    def test_a_bank_on_the_standard(self, body: bytes) -> None:
        _only_documented(*_bank(body))

    def test_the_credentials_pass_so_the_bodies_reach_the_parsers(self) -> None:
        """The fuzzing above is only worth something if a valid body is accepted."""
        for gateway, request in (
            _mercado_pago(json.dumps(MP_BODY).encode()),
            _efi(json.dumps({"pix": [PIX_ITEM]}).encode()),
            _bank(json.dumps({"pix": [PIX_ITEM]}).encode()),
        ):
            assert gateway.verify_webhook(request), gateway.name


MP_TS = "1704908010"


@functools.cache
def _connectors() -> dict[str, PixGateway]:
    """Built once: verifying a webhook is stateless, and building an HTTP client per example
    would be most of the run."""
    return {
        "mercadopago": MercadoPagoConnector(
            access_token="APP_USR-x",
            webhook_secret=MP_SECRET,
            clock=lambda: datetime.fromtimestamp(int(MP_TS), UTC),  # the signature's time
        ),
        "efi": EfiConnector(
            client_id="c",
            client_secret="s",
            pix_key="pix@bcb.gov.br",
            base_url="http://127.0.0.1:9",
            webhook_auth=EfiWebhookAuth(hmac_secret=HMAC, allowed_ips=frozenset()),
        ),
        "bancoa": PixApiConnector(
            name="bancoa",
            client_id="c",
            client_secret="s",
            pix_key="pix@bcb.gov.br",
            base_url="http://127.0.0.1:9/v2",
            token_url="http://127.0.0.1:9/oauth/token",
            webhook_auth=WebhookAuth(hmac_secret=HMAC),
        ),
    }


def _mercado_pago(body: bytes) -> tuple[PixGateway, InboundWebhook]:
    ts = MP_TS
    connector = _connectors()["mercadopago"]
    manifest = f"id:123;request-id:r1;ts:{ts};".encode()
    signature = hmac.new(MP_SECRET.encode(), manifest, hashlib.sha256).hexdigest()
    return connector, InboundWebhook(
        body=body,
        headers={"x-signature": f"ts={ts},v1={signature}", "x-request-id": "r1"},
        query={"data.id": "123", "type": "payment"},
        client_ip="127.0.0.1",
    )


def _efi(body: bytes) -> tuple[PixGateway, InboundWebhook]:
    return _connectors()["efi"], InboundWebhook(
        body=body, headers={}, query={"hmac": HMAC}, client_ip="1.2.3.4"
    )


def _bank(body: bytes) -> tuple[PixGateway, InboundWebhook]:
    return _connectors()["bancoa"], InboundWebhook(
        body=body, headers={}, query={"hmac": HMAC}, client_ip="1.2.3.4"
    )
