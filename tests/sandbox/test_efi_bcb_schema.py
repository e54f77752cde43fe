"""The Efí simulator's BCB-standard responses validate against the Central Bank's own schemas.

The spec and its validator are ``tests/bcb_schema.py``'s. Efí adds fields (``gnExtras``,
``loc.location``); the BCB schemas allow additional properties, so they pass. Efí's
``GET /webhook/{chave}`` shows the key, as the spec's example does, not the schema's ``cnpj``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from pixwave.sandbox.efi import EfiSimConfig, EfiSimulator
from tests.bcb_schema import WEBHOOK_BODY, Validate, validator
from tests.servers import ServerThread, WebhookSink, run_simulator

PIX_KEY = "0b9d7f5e-3c1a-4e8b-a6d4-2f0e8c6a4b19"


@pytest.fixture(scope="module")
def validate() -> Validate:
    """``validate("schemas/CobGerada", body)`` raises ValidationError when the body breaks it."""
    return validator(webhook_shows_key=True)


@pytest.fixture(scope="module")
def http(sink_served: tuple[WebhookSink, ServerThread]) -> Iterator[httpx.Client]:
    """A client with a Bearer token on a simulator whose webhook goes to the sink."""
    _, sink_thread = sink_served
    config = EfiSimConfig(
        pix_key=PIX_KEY,
        time_scale=0.001,
        auto_settle_sends=False,
        webhook_url=f"{sink_thread.base_url}/efi",
    )
    with (
        run_simulator(EfiSimulator(config)) as thread,
        httpx.Client(base_url=thread.base_url, timeout=10) as client,
    ):
        token = client.post(
            "/oauth/token", auth=("id", "secret"), json={"grant_type": "client_credentials"}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def create_cob(http: httpx.Client, valor: str = "37.00") -> dict[str, Any]:
    body = {
        "calendario": {"expiracao": 3600},
        "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
        "valor": {"original": valor, "modalidadeAlteracao": 0},
        "chave": PIX_KEY,
        "solicitacaoPagador": "Serviço realizado.",
        "infoAdicionais": [{"nome": "Campo 1", "valor": "Informação adicional"}],
    }
    response = http.put(f"/v2/cob/{secrets.token_hex(16)}", json=body)
    assert response.status_code == 201, response.text
    cob: dict[str, Any] = response.json()
    return cob


def pay(http: httpx.Client, cob: dict[str, Any]) -> str:
    response = http.post(
        "/_sandbox/pay",
        json={
            "brcode": cob["pixCopiaECola"],
            "payer": {"name": "Maria", "document": "11222333000181"},
            "info": "pedido 42",
        },
    )
    assert response.status_code == 200, response.text
    e2e: str = response.json()["end_to_end_id"]
    return e2e


class TestCob:
    def test_put_cob_is_a_cob_gerada(self, http: httpx.Client, validate: Validate) -> None:
        """PUT /v2/cob/{txid} → 201 CobGerada."""
        validate("schemas/CobGerada", create_cob(http))

    def test_post_cob_is_a_cob_gerada(self, http: httpx.Client, validate: Validate) -> None:
        """POST /v2/cob → 201 CobGerada (PSP-chosen txid)."""
        response = http.post("/v2/cob", json={"valor": {"original": "1.00"}, "chave": PIX_KEY})
        validate("schemas/CobGerada", response.json())

    def test_get_paid_cob_is_a_cob_completa(self, http: httpx.Client, validate: Validate) -> None:
        """GET /v2/cob/{txid} of a paid, refunded cob → CobCompleta with pix[]."""
        cob = create_cob(http)
        e2e = pay(http, cob)
        http.put(f"/v2/pix/{e2e}/devolucao/dev1", json={"valor": "1.00"})
        body = http.get(f"/v2/cob/{cob['txid']}").json()
        assert body["pix"][0]["devolucoes"]
        validate("schemas/CobCompleta", body)

    def test_patched_cob_is_a_cob_gerada(self, http: httpx.Client, validate: Validate) -> None:
        """PATCH /v2/cob/{txid} → 200 CobGerada."""
        cob = create_cob(http)
        response = http.patch(
            f"/v2/cob/{cob['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        )
        validate("schemas/CobGerada", response.json())


class TestPix:
    def test_get_pix_is_a_pix(self, http: httpx.Client, validate: Validate) -> None:
        """GET /v2/pix/{e2eId} → Pix (with componentesValor)."""
        e2e = pay(http, create_cob(http))
        validate("schemas/Pix", http.get(f"/v2/pix/{e2e}").json())


class TestDevolucao:
    def test_put_devolucao_is_a_devolucao(self, http: httpx.Client, validate: Validate) -> None:
        """PUT /v2/pix/{e2eId}/devolucao/{id} → 201 Devolucao."""
        e2e = pay(http, create_cob(http))
        response = http.put(f"/v2/pix/{e2e}/devolucao/dev1", json={"valor": "7.89"})
        assert response.status_code == 201
        validate("schemas/Devolucao", response.json())

    def test_settled_devolucao_is_a_devolucao(self, http: httpx.Client, validate: Validate) -> None:
        """GET …/devolucao/{id} once DEVOLVIDO (with horario.liquidacao) → Devolucao."""
        e2e = pay(http, create_cob(http))
        http.put(f"/v2/pix/{e2e}/devolucao/dev1", json={"valor": "7.89"})
        http.post("/_sandbox/clock/advance", json={"seconds": 2})
        body = http.get(f"/v2/pix/{e2e}/devolucao/dev1").json()
        assert body["status"] == "DEVOLVIDO"
        validate("schemas/Devolucao", body)


class TestWebhook:
    def test_put_webhook_echoes_a_webhook_solicitado(
        self, http: httpx.Client, validate: Validate
    ) -> None:
        """PUT /v2/webhook/{chave} → 200; its body is the WebhookSolicitado it stored."""
        response = http.put(
            f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": "https://pix.example.com/api/webhook/"}
        )
        assert response.status_code == 200
        validate("schemas/WebhookSolicitado", response.json())

    def test_get_webhook_is_a_webhook_completo(
        self, http: httpx.Client, validate: Validate
    ) -> None:
        """GET /v2/webhook/{chave} → WebhookCompleto (as its example shows it)."""
        http.put(f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": "https://pix.example.com/hook"})
        validate("schemas/WebhookCompleto", http.get(f"/v2/webhook/{PIX_KEY}").json())

    def test_notification_is_a_webhook_pix_body(
        self,
        http: httpx.Client,
        sink_served: tuple[WebhookSink, ServerThread],
        validate: Validate,
    ) -> None:
        """The POST to {webhookUrl}/pix carries the callback body the spec defines."""
        sink, sink_thread = sink_served
        http.put(f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": f"{sink_thread.base_url}/efi"})
        already = len(sink.received)
        e2e = pay(http, create_cob(http))
        # Earlier tests' notifications may still be arriving: pick this payment's.
        for count in range(already + 1, already + 10):
            mine = [r for r in sink.wait_for(count) if e2e in r.body.decode()]
            if mine:
                break
        validate(WEBHOOK_BODY, mine[0].json())


class TestBrokenResponsesFail:
    """The validation is not vacuous: responses that break the schemas are caught."""

    def test_unknown_status_fails(self, http: httpx.Client, validate: Validate) -> None:
        """A cob status outside CobrancaStatus (e.g. EXPIRADA) is rejected."""
        cob = create_cob(http)
        cob["status"] = "EXPIRADA"
        with pytest.raises(jsonschema.ValidationError, match="EXPIRADA"):
            validate("schemas/CobGerada", cob)

    def test_amount_as_number_fails(self, http: httpx.Client, validate: Validate) -> None:
        """An amount sent as a JSON number instead of a decimal string is rejected."""
        e2e = pay(http, create_cob(http))
        pix = http.get(f"/v2/pix/{e2e}").json()
        pix["valor"] = 37.0
        with pytest.raises(jsonschema.ValidationError):
            validate("schemas/Pix", pix)

    def test_devolucao_without_rtr_id_fails(self, http: httpx.Client, validate: Validate) -> None:
        """A devolução missing its required rtrId is rejected."""
        e2e = pay(http, create_cob(http))
        refund = http.put(f"/v2/pix/{e2e}/devolucao/dev1", json={"valor": "1.00"}).json()
        del refund["rtrId"]
        with pytest.raises(jsonschema.ValidationError, match="rtrId"):
            validate("schemas/Devolucao", refund)

    def test_short_end_to_end_id_fails(self, validate: Validate) -> None:
        """An endToEndId shorter than 32 characters is rejected."""
        pix = {"endToEndId": "E123", "valor": "1.00", "horario": "2020-09-09T20:15:00.358Z"}
        with pytest.raises(jsonschema.ValidationError):
            validate("schemas/Pix", pix)
