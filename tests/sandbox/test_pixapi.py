"""The standard API Pix simulator over real HTTP: its rules, and every answer checked against the
Central Bank's OpenAPI (each API response passes ``tests/bcb_schema.ResponseChecker`` as it
arrives, so a test fails on any answer the specification does not describe)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from pixwave.pix import parse_brcode
from pixwave.sandbox.pixapi import PixApiSimConfig, PixApiSimulator
from tests.bcb_schema import WEBHOOK_BODY, ResponseChecker, Validate, validator
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink

PIX_KEY = "4b8e2c6a-0d1f-4a3b-9c5e-7f2a4c6e8b0d"
CLIENT_ID = "bancoa-client"
CLIENT_SECRET = "bancoa-secret"
CNPJ = "11444777000161"
ISPB = "12345678"
PROBLEM = "https://pix.bcb.gov.br/api/v2/error/"
BASELINE: dict[str, Any] = {
    "webhook_url": None,
    "time_scale": 0.001,
    "token_ttl_seconds": 3600,
    "settle_delay_seconds": 1.0,
    "require_https_webhook": False,
}


def new_txid() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[WebhookSink, ServerThread]]:
    receiver = WebhookSink()
    with run_sink(receiver) as thread:
        yield receiver, thread


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    config = PixApiSimConfig(
        gateway="bancoa",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        pix_key=PIX_KEY,
        cnpj=CNPJ,
        ispb=ISPB,
    )
    with run_simulator(PixApiSimulator(config)) as thread:
        yield thread


@pytest.fixture(scope="module")
def checker() -> ResponseChecker:
    return ResponseChecker()


@pytest.fixture(scope="module")
def validate() -> Validate:
    return validator()


class Bank:
    """A client of the simulated bank: ``api`` checks every answer against the spec."""

    def __init__(
        self, admin: httpx.Client, api: httpx.Client, sink: WebhookSink, sink_url: str
    ) -> None:
        self.admin = admin
        self.api = api
        self.sink = sink
        self.sink_url = sink_url

    def token(self, scope: str | None = None, *, secret: str = CLIENT_SECRET) -> httpx.Response:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        return self.admin.post("/oauth/token", auth=(CLIENT_ID, secret), data=form)

    def login(self, scope: str | None = None) -> None:
        response = self.token(scope)
        assert response.status_code == 200, response.text
        self.api.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def create_cob(self, valor: str = "37.00", txid: str | None = None) -> dict[str, Any]:
        body = {"calendario": {"expiracao": 3600}, "valor": {"original": valor}, "chave": PIX_KEY}
        response = self.api.put(f"/cob/{txid or new_txid()}", json=body)
        assert response.status_code == 201, response.text
        cob: dict[str, Any] = response.json()
        return cob

    def pay(self, cob: dict[str, Any]) -> str:
        response = self.admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]})
        assert response.status_code == 200, response.text
        e2e: str = response.json()["end_to_end_id"]
        return e2e

    def advance(self, seconds: float) -> None:
        assert self.admin.post("/_sandbox/clock/advance", json={"seconds": seconds}).is_success

    def notifications(self, count: int) -> list[dict[str, Any]]:
        return [r.json() for r in self.sink.wait_for(count)]


@pytest.fixture
def bank(
    served: ServerThread, sink: tuple[WebhookSink, ServerThread], checker: ResponseChecker
) -> Iterator[Bank]:
    receiver, sink_thread = sink

    def check(response: httpx.Response) -> None:
        response.read()
        path = urlsplit(str(response.request.url)).path.removeprefix("/v2")
        checker.check(
            response.request.method,
            path,
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )

    with (
        httpx.Client(base_url=served.base_url, timeout=10) as admin,
        httpx.Client(
            base_url=f"{served.base_url}/v2", timeout=10, event_hooks={"response": [check]}
        ) as api,
    ):
        assert admin.patch("/_sandbox/config", json=BASELINE).is_success
        assert admin.post("/_sandbox/reset").is_success
        receiver.received.clear()
        receiver.status = 200
        client = Bank(admin, api, receiver, f"{sink_thread.base_url}/bancoa")
        client.login()
        yield client


class TestToken:
    def test_form_request_gets_a_bearer_token_with_the_standard_scopes(self, bank: Bank) -> None:
        """RFC 6749's form body with Basic credentials gets a Bearer token and its scopes."""
        body = bank.token().json()
        assert body["token_type"] == "Bearer"
        assert {"cob.write", "cob.read", "pix.write", "pix.read", "webhook.write"} <= set(
            body["scope"].split()
        )

    def test_a_json_token_request_is_not_the_standard(self, bank: Bank) -> None:
        """Efí's JSON body is refused: the standard's token request is form-encoded."""
        response = bank.admin.post(
            "/oauth/token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            json={"grant_type": "client_credentials"},
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"

    def test_wrong_secret_is_invalid_client(self, bank: Bank) -> None:
        """Bad credentials: 401 invalid_client, with a Basic challenge naming the bank."""
        response = bank.token(secret="wrong")
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"] == 'Basic realm="bancoa"'

    def test_unknown_scope_is_invalid_scope(self, bank: Bank) -> None:
        """Asking for a scope the account cannot have is RFC 6749's invalid_scope."""
        response = bank.token("cob.read gn.pix.send")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"

    def test_a_route_needs_its_scope(self, bank: Bank) -> None:
        """A token without cob.write may read charges but not create them: 403 AcessoNegado."""
        bank.login("cob.read")
        assert bank.api.get(f"/cob/{new_txid()}").status_code == 404
        response = bank.api.put(
            f"/cob/{new_txid()}", json={"valor": {"original": "1.00"}, "chave": PIX_KEY}
        )
        assert response.status_code == 403
        assert response.json()["type"] == PROBLEM + "AcessoNegado"

    def test_no_token_is_401(self, bank: Bank) -> None:
        """Without a Bearer token the API answers 401 with a Bearer challenge."""
        del bank.api.headers["Authorization"]
        response = bank.api.get(f"/cob/{new_txid()}")
        assert response.status_code == 401
        assert "invalid_token" in response.headers["www-authenticate"]

    def test_a_token_expires_on_the_simulated_clock(self, bank: Bank) -> None:
        """Past its expires_in, the token is refused."""
        bank.advance(3601)
        assert bank.api.get(f"/cob/{new_txid()}").status_code == 401


class TestCob:
    def test_put_creates_an_active_charge_with_a_br_code(self, bank: Bank) -> None:
        """PUT /cob/{txid} → 201 ATIVA, revision 0, a BR Code pointing at its location."""
        cob = bank.create_cob("37.00")
        assert (cob["status"], cob["revisao"], cob["valor"]["original"]) == ("ATIVA", 0, "37.00")
        code = parse_brcode(cob["pixCopiaECola"])
        assert code.location_url == cob["location"]
        assert cob["location"].startswith("pix.example.com/qr/v2/")

    def test_the_same_put_again_changes_nothing(self, bank: Bank) -> None:
        """Repeating the PUT of an active charge answers it unchanged: PUT is idempotent."""
        txid = new_txid()
        first = bank.create_cob("37.00", txid)
        again = bank.create_cob("37.00", txid)
        assert again["revisao"] == 0
        assert again["calendario"]["criacao"] == first["calendario"]["criacao"]
        assert bank.admin.get("/_sandbox").json()["resources"]["cobs"] == 1

    def test_a_different_put_revises_an_active_charge(self, bank: Bank) -> None:
        """PUT with other values on an active charge replaces them and counts a revision."""
        txid = new_txid()
        bank.create_cob("37.00", txid)
        revised = bank.create_cob("40.00", txid)
        assert (revised["revisao"], revised["valor"]["original"]) == (1, "40.00")

    def test_put_on_a_paid_charge_is_cob_operacao_invalida(self, bank: Bank) -> None:
        """A charge no longer active cannot be put again (400 CobOperacaoInvalida)."""
        txid = new_txid()
        bank.pay(bank.create_cob("37.00", txid))
        response = bank.api.put(
            f"/cob/{txid}", json={"valor": {"original": "37.00"}, "chave": PIX_KEY}
        )
        assert response.status_code == 400
        assert response.json()["type"] == PROBLEM + "CobOperacaoInvalida"

    def test_a_key_of_another_account_is_refused(self, bank: Bank) -> None:
        """cob.chave must belong to the account: CobOperacaoInvalida naming cob.chave."""
        response = bank.api.put(
            f"/cob/{new_txid()}", json={"valor": {"original": "1.00"}, "chave": "x@example.com"}
        )
        assert response.status_code == 400
        assert response.json()["violacoes"][0]["propriedade"] == "cob.chave"

    def test_an_amount_as_a_number_names_the_property(self, bank: Bank) -> None:
        """A schema violation lists the property, prefixed by its resource."""
        response = bank.api.put(
            f"/cob/{new_txid()}", json={"valor": {"original": 1.5}, "chave": PIX_KEY}
        )
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == PROBLEM + "CobOperacaoInvalida"
        assert [v["propriedade"] for v in body["violacoes"]] == ["cob.valor.original"]

    def test_a_short_txid_is_refused(self, bank: Bank) -> None:
        """A txid outside [a-zA-Z0-9]{26,35} is a 400 naming txid."""
        response = bank.api.put(
            "/cob/short", json={"valor": {"original": "1.00"}, "chave": PIX_KEY}
        )
        assert response.status_code == 400
        assert response.json()["violacoes"][0]["propriedade"] == "txid"

    def test_patch_removes_and_then_it_cannot_be_paid(self, bank: Bank) -> None:
        """PATCH status REMOVIDA_PELO_USUARIO_RECEBEDOR → 200; paying it is refused."""
        cob = bank.create_cob()
        response = bank.api.patch(
            f"/cob/{cob['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        )
        assert (response.status_code, response.json()["revisao"]) == (200, 1)
        paid = bank.admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]})
        assert paid.status_code == 409

    def test_an_unknown_charge_is_cob_nao_encontrado(self, bank: Bank) -> None:
        """GET of a txid never used → 404 CobNaoEncontrado."""
        response = bank.api.get(f"/cob/{new_txid()}")
        assert response.json()["type"] == PROBLEM + "CobNaoEncontrado"

    def test_post_chooses_the_txid(self, bank: Bank) -> None:
        """POST /cob → 201 with a txid the PSP chose."""
        response = bank.api.post("/cob", json={"valor": {"original": "2.00"}, "chave": PIX_KEY})
        assert response.status_code == 201
        assert len(response.json()["txid"]) == 32

    def test_list_and_location(self, bank: Bank) -> None:
        """GET /cob lists by period; GET /loc/{id} shows the charge's location and txid."""
        cob = bank.create_cob()
        listed = bank.api.get(
            "/cob", params={"inicio": "2000-01-01T00:00:00Z", "fim": "2999-01-01T00:00:00Z"}
        ).json()
        assert [c["txid"] for c in listed["cobs"]] == [cob["txid"]]
        loc = bank.api.get(f"/loc/{cob['loc']['id']}").json()
        assert (loc["txid"], loc["location"]) == (cob["txid"], cob["location"])

    def test_an_expired_charge_stays_ativa_and_cannot_be_paid(self, bank: Bank) -> None:
        """Past criacao + expiracao the status is still ATIVA (BCB), but payment is refused."""
        cob = bank.create_cob()
        bank.advance(3601)
        bank.login()  # the first token expired too
        assert bank.api.get(f"/cob/{cob['txid']}").json()["status"] == "ATIVA"
        paid = bank.admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]})
        assert paid.json()["error"] == "charge_expired"


class TestNoExtensions:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v2/loc/1/qrcode"),
            ("PUT", "/v3/gn/pix/abc"),
            ("PUT", "/v2/gn/pix/abc"),
            ("GET", "/v2/gn/pix/enviados/id-envio/abc"),
        ],
    )
    def test_efi_extensions_are_not_there(self, bank: Bank, method: str, path: str) -> None:
        """Only the standard's paths answer: Efí's QR code and send routes do not exist."""
        token = bank.api.headers["Authorization"]
        response = bank.admin.request(method, path, headers={"Authorization": token}, json={})
        assert response.status_code in {404, 405}


class TestPix:
    def test_payment_reads_back_and_notifies(self, bank: Bank, validate: Validate) -> None:
        """A paid charge is CONCLUIDA with its Pix; the callback is the spec's body, at /pix."""
        bank.api.put(f"/webhook/{PIX_KEY}", json={"webhookUrl": bank.sink_url})
        cob = bank.create_cob("37.00")
        e2e = bank.pay(cob)
        read = bank.api.get(f"/cob/{cob['txid']}").json()
        assert read["status"] == "CONCLUIDA"
        assert read["pix"][0]["endToEndId"] == e2e
        (received,) = bank.sink.wait_for(1)
        assert received.path == "/bancoa/pix"
        validate(WEBHOOK_BODY, received.json())
        item = received.json()["pix"][0]
        assert (item["txid"], item["valor"]) == (cob["txid"], "37.00")
        assert "gnExtras" not in item

    def test_pix_by_e2e_and_by_txid(self, bank: Bank) -> None:
        """GET /pix/{e2eid} and GET /pix?txid= find the received Pix."""
        cob = bank.create_cob()
        e2e = bank.pay(cob)
        assert bank.api.get(f"/pix/{e2e}").json()["txid"] == cob["txid"]
        listed = bank.api.get(
            "/pix",
            params={
                "inicio": "2000-01-01T00:00:00Z",
                "fim": "2999-01-01T00:00:00Z",
                "txid": cob["txid"],
            },
        ).json()
        assert [p["endToEndId"] for p in listed["pix"]] == [e2e]

    def test_an_unknown_pix_is_pix_nao_encontrado(self, bank: Bank) -> None:
        """GET /pix/{e2eid} of an unknown id → 404 PixNaoEncontrado."""
        response = bank.api.get("/pix/E00000000202401011200abcdefghijk")
        assert response.json()["type"] == PROBLEM + "PixNaoEncontrado"


class TestDevolucao:
    def test_a_refund_settles_and_notifies(self, bank: Bank) -> None:
        """PUT devolução → 201 EM_PROCESSAMENTO with the PSP's rtrId; later DEVOLVIDO, notified."""
        bank.api.put(f"/webhook/{PIX_KEY}", json={"webhookUrl": bank.sink_url})
        e2e = bank.pay(bank.create_cob("37.00"))
        created = bank.api.put(f"/pix/{e2e}/devolucao/dev1", json={"valor": "7.00"})
        assert created.status_code == 201
        assert created.json()["status"] == "EM_PROCESSAMENTO"
        assert created.json()["rtrId"].startswith("D" + ISPB)
        bank.advance(2)
        settled = bank.api.get(f"/pix/{e2e}/devolucao/dev1").json()
        assert settled["status"] == "DEVOLVIDO"
        refund_notice = bank.notifications(2)[1]["pix"][0]
        assert refund_notice["devolucoes"][0]["status"] == "DEVOLVIDO"

    def test_a_used_id_is_pix_devolucao_invalida(self, bank: Bank) -> None:
        """The same devolução id twice → 400 PixDevolucaoInvalida."""
        e2e = bank.pay(bank.create_cob("37.00"))
        bank.api.put(f"/pix/{e2e}/devolucao/dev1", json={"valor": "1.00"})
        again = bank.api.put(f"/pix/{e2e}/devolucao/dev1", json={"valor": "1.00"})
        assert (again.status_code, again.json()["type"]) == (400, PROBLEM + "PixDevolucaoInvalida")

    def test_more_than_received_is_refused(self, bank: Bank) -> None:
        """Refunds above the Pix's value → 400 PixDevolucaoInvalida on devolucao.valor."""
        e2e = bank.pay(bank.create_cob("10.00"))
        response = bank.api.put(f"/pix/{e2e}/devolucao/dev1", json={"valor": "10.01"})
        assert response.json()["violacoes"][0]["propriedade"] == "devolucao.valor"

    def test_an_unknown_refund_is_not_found(self, bank: Bank) -> None:
        """GET of a devolução never asked → 404 PixDevolucaoNaoEncontrada."""
        e2e = bank.pay(bank.create_cob())
        response = bank.api.get(f"/pix/{e2e}/devolucao/nope")
        assert response.json()["type"] == PROBLEM + "PixDevolucaoNaoEncontrada"


class TestWebhook:
    def test_register_read_list_delete(self, bank: Bank) -> None:
        """PUT → 200 (no body); GET shows url, key, CNPJ; DELETE → 204; then 404."""
        put = bank.api.put(f"/webhook/{PIX_KEY}", json={"webhookUrl": "https://example.com/h"})
        assert (put.status_code, put.content) == (200, b"")
        shown = bank.api.get(f"/webhook/{PIX_KEY}").json()
        assert (shown["webhookUrl"], shown["chave"], shown["cnpj"]) == (
            "https://example.com/h",
            PIX_KEY,
            CNPJ,
        )
        assert len(bank.api.get("/webhook").json()["webhooks"]) == 1
        assert bank.api.delete(f"/webhook/{PIX_KEY}").status_code == 204
        gone = bank.api.get(f"/webhook/{PIX_KEY}")
        assert gone.json()["type"] == PROBLEM + "WebhookNaoEncontrado"

    def test_another_key_is_webhook_operacao_invalida(self, bank: Bank) -> None:
        """A key that is not the account's → 400 WebhookOperacaoInvalida."""
        response = bank.api.put(
            "/webhook/someone@example.com", json={"webhookUrl": "https://example.com/h"}
        )
        assert response.json()["type"] == PROBLEM + "WebhookOperacaoInvalida"

    def test_a_failed_delivery_is_retried(self, bank: Bank) -> None:
        """A callback answered 500 is delivered again on the schedule (scaled)."""
        bank.sink.status = 500
        bank.api.put(f"/webhook/{PIX_KEY}", json={"webhookUrl": bank.sink_url})
        bank.pay(bank.create_cob())
        first, second = bank.sink.wait_for(2)
        assert first.body == second.body


class TestSandboxAndFaults:
    def test_the_sandbox_names_the_gateway(self, bank: Bank) -> None:
        """The payment answer names the bank this simulator plays."""
        cob = bank.create_cob()
        paid = bank.admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]}).json()
        assert paid["gateway"] == "bancoa"
        summary = bank.admin.get("/_sandbox").json()
        assert (summary["name"], summary["config"]["gateway"]) == ("pixapi", "bancoa")

    def test_an_injected_5xx_is_the_standards_problem_and_creates_nothing(self, bank: Bank) -> None:
        """cob.put failing with 503 answers ServicoIndisponivel and no charge exists."""
        rule = {"error_rate": 1, "error_status": 503}
        assert bank.admin.put("/_sandbox/faults/cob.put", json=rule).is_success
        token = bank.api.headers["Authorization"]
        response = bank.admin.put(
            f"/v2/cob/{new_txid()}",
            headers={"Authorization": token},
            json={"valor": {"original": "1.00"}, "chave": PIX_KEY},
        )
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == PROBLEM + "ServicoIndisponivel"
        assert bank.admin.get("/_sandbox").json()["resources"]["cobs"] == 0
        assert bank.admin.delete("/_sandbox/faults").is_success


def test_scheduled_refunds_wake_on_their_own(served: ServerThread) -> None:
    """Without a clock advance, a refund settles once its (scaled) delay passes."""
    with httpx.Client(base_url=served.base_url, timeout=10) as http:
        assert http.patch("/_sandbox/config", json={**BASELINE, "time_scale": 0.01}).is_success
        assert http.post("/_sandbox/reset").is_success
        form = {"grant_type": "client_credentials"}
        token = http.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data=form).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        cob = http.put(
            f"/v2/cob/{new_txid()}",
            headers=auth,
            json={"valor": {"original": "3.00"}, "chave": PIX_KEY},
        ).json()
        e2e = http.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]}).json()
        http.put(
            f"/v2/pix/{e2e['end_to_end_id']}/devolucao/d1", headers=auth, json={"valor": "1.00"}
        )
        for _ in range(200):
            status = http.get(f"/v2/pix/{e2e['end_to_end_id']}/devolucao/d1", headers=auth).json()
            if status["status"] == "DEVOLVIDO":
                break
            threading.Event().wait(0.01)
        assert status["status"] == "DEVOLVIDO"
