"""The Efí simulator over real HTTP: OAuth, cob, BR Code, pay, refunds, sends, magic amounts,
webhooks — each as a client of the real API would see it.

One simulator and one webhook sink serve the module; each test resets the simulator and puts
its configuration back to the baseline below. Time-based outcomes are reached by advancing the
simulated clock, never by sleeping.
"""

from __future__ import annotations

import base64
import io
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import PIL.Image
import pytest
import zxingcpp

from pixwave.pix import parse_brcode
from pixwave.sandbox.efi import EfiSimConfig, EfiSimulator
from tests.pix.vectors import RECURRENCE_VECTOR
from tests.servers import Received, ServerThread, WebhookSink, run_simulator

PIX_KEY = "2f4c6a8e-1b3d-4f5a-9c7e-0d2b4f6a8c1e"
CLIENT_ID = "Client_Id_pixwave"
CLIENT_SECRET = "Client_Secret_pixwave"
PROBLEM_BASE = "https://pix.bcb.gov.br/api/v2/error/"

#: What every test starts from (PATCHed before the reset, since a reset keeps the config).
BASELINE: dict[str, Any] = {
    "webhook_url": None,
    "time_scale": 0.001,
    "token_ttl_seconds": 10_000_000,
    "magic_amounts": False,
    "auto_settle_sends": True,
    "settle_delay_seconds": 1.0,
    "require_https_webhook": False,
}
#: Clock advance that passes any settle delay of the baseline (1 s of simulated time).
PAST_SETTLE_DELAY = 2


def new_txid() -> str:
    return secrets.token_hex(16)


def new_id() -> str:
    return secrets.token_hex(8)


class EfiApi:
    """A small client of the simulator: the Efí API with a token, plus the sandbox routes."""

    def __init__(self, http: httpx.Client, sink: WebhookSink, sink_url: str) -> None:
        self.http = http
        self.sink = sink
        self.sink_url = sink_url
        self.token: str | None = None

    # --- sandbox --------------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        response = self.http.patch("/_sandbox/config", json=changes)
        assert response.status_code == 200, response.text

    def reset(self) -> None:
        self.configure(**BASELINE)
        assert self.http.post("/_sandbox/reset").status_code == 200
        self.token = None

    def advance(self, seconds: float) -> None:
        response = self.http.post("/_sandbox/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    def pay(self, brcode: str, **extra: Any) -> httpx.Response:
        return self.http.post("/_sandbox/pay", json={"brcode": brcode, **extra})

    def resources(self) -> dict[str, int]:
        result: dict[str, int] = self.http.get("/_sandbox").json()["resources"]
        return result

    # --- Efí API --------------------------------------------------------------------------
    def authenticate(self) -> str:
        response = self.http.post(
            "/oauth/token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            json={"grant_type": "client_credentials"},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        self.token = token
        return token

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self.token or self.authenticate()
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def create_cob(self, valor: str = "12.34", **extra: Any) -> dict[str, Any]:
        body = {"valor": {"original": valor}, "chave": PIX_KEY, **extra}
        response = self.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 201, response.text
        cob: dict[str, Any] = response.json()
        return cob

    def paid_pix(self, valor: str = "100.00") -> str:
        """Create a cob, pay it, return the received Pix's endToEndId."""
        cob = self.create_cob(valor)
        response = self.pay(cob["pixCopiaECola"])
        assert response.status_code == 200, response.text
        e2e: str = response.json()["end_to_end_id"]
        return e2e

    def refund(self, e2e: str, refund_id: str, valor: str) -> httpx.Response:
        return self.call("PUT", f"/v2/pix/{e2e}/devolucao/{refund_id}", json={"valor": valor})

    def send(self, id_envio: str, valor: str = "5.00", **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "valor": valor,
            "pagador": {"chave": PIX_KEY, "infoPagador": "Saque PixWave"},
            "favorecido": {"chave": "pix@bcb.gov.br"},
            **overrides,
        }
        return self.call("PUT", f"/v3/gn/pix/{id_envio}", json=body)

    def register_webhook(self, url: str) -> None:
        response = self.call("PUT", f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": url})
        assert response.status_code == 200, response.text

    def webhooks(self, count: int) -> list[Received]:
        return self.sink.wait_for(count)

    def delivered(self) -> dict[str, Any]:
        """The only outbound delivery, once the simulator has recorded its 2xx."""
        for _ in range(200):
            (delivery,) = self.http.get("/_sandbox/webhooks").json()
            if delivery["delivered"]:
                result: dict[str, Any] = delivery
                return result
            threading.Event().wait(0.01)
        raise AssertionError("the delivery was never marked delivered")


@pytest.fixture(scope="module")
def efi_served() -> Iterator[ServerThread]:
    config = EfiSimConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, pix_key=PIX_KEY)
    with run_simulator(EfiSimulator(config)) as thread:
        yield thread


@pytest.fixture(scope="module")
def efi_http(efi_served: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=efi_served.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def efi(efi_http: httpx.Client, sink_served: tuple[WebhookSink, ServerThread]) -> Iterator[EfiApi]:
    sink, sink_thread = sink_served
    api = EfiApi(efi_http, sink, f"{sink_thread.base_url}/hook")
    api.reset()
    sink.received.clear()
    sink.status = 200
    yield api
    api.reset()


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json")
    kind: str = response.json()["type"]
    return kind.removeprefix(PROBLEM_BASE)


# --- OAuth -----------------------------------------------------------------------------------


class TestOAuthToken:
    def test_client_credentials_issue_a_bearer_token(self, efi: EfiApi) -> None:
        """Basic credentials and the client_credentials grant yield a Bearer token."""
        response = efi.http.post(
            "/oauth/token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            json={"grant_type": "client_credentials"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == BASELINE["token_ttl_seconds"]
        assert "cob.write" in body["scope"].split()
        assert body["access_token"]

    def test_wrong_secret_is_401(self, efi: EfiApi) -> None:
        """Credentials that do not match the configured ones are refused."""
        response = efi.http.post(
            "/oauth/token", auth=(CLIENT_ID, "wrong"), json={"grant_type": "client_credentials"}
        )
        assert response.status_code == 401

    def test_missing_basic_credentials_is_401(self, efi: EfiApi) -> None:
        """The token route needs HTTP Basic credentials."""
        response = efi.http.post("/oauth/token", json={"grant_type": "client_credentials"})
        assert response.status_code == 401

    def test_other_grant_type_is_400(self, efi: EfiApi) -> None:
        """Only the client_credentials grant exists."""
        response = efi.http.post(
            "/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), json={"grant_type": "password"}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"

    def test_token_expires_on_the_simulated_clock(self, efi: EfiApi) -> None:
        """A token stops working once the clock passes its expires_in."""
        efi.configure(token_ttl_seconds=60)
        efi.authenticate()
        assert efi.call("GET", f"/v2/webhook/{PIX_KEY}").status_code == 404
        efi.advance(61)
        assert efi.call("GET", f"/v2/webhook/{PIX_KEY}").status_code == 401


class TestBearerRequired:
    def test_call_without_token_is_401(self, efi: EfiApi) -> None:
        """API routes refuse a request without Authorization."""
        response = efi.http.get(f"/v2/cob/{new_txid()}")
        assert response.status_code == 401
        assert response.json()["nome"] == "nao_autorizado"

    def test_unknown_token_is_401(self, efi: EfiApi) -> None:
        """A token the simulator never issued is refused."""
        response = efi.http.get(
            f"/v2/cob/{new_txid()}", headers={"Authorization": "Bearer not-a-token"}
        )
        assert response.status_code == 401

    def test_revoked_token_is_401_and_a_new_one_works(self, efi: EfiApi) -> None:
        """After /_sandbox/tokens/revoke the old token fails and a fresh one succeeds."""
        cob = efi.create_cob()
        assert efi.http.post("/_sandbox/tokens/revoke").json() == {"revoked": 1}
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").status_code == 401
        efi.authenticate()
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").status_code == 200


# --- charges ---------------------------------------------------------------------------------


class TestCreateCob:
    def test_put_creates_an_active_cob(self, efi: EfiApi) -> None:
        """PUT /v2/cob/{txid} answers 201 with the charge, its location and BR Code."""
        txid = new_txid()
        body = {
            "calendario": {"expiracao": 3600},
            "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
            "valor": {"original": "123.45"},
            "chave": PIX_KEY,
            "solicitacaoPagador": "Depósito",
        }
        response = efi.call("PUT", f"/v2/cob/{txid}", json=body)
        assert response.status_code == 201
        cob = response.json()
        assert cob["txid"] == txid
        assert cob["status"] == "ATIVA"
        assert cob["revisao"] == 0
        assert cob["calendario"]["expiracao"] == 3600
        assert cob["calendario"]["criacao"].endswith("Z")
        assert cob["valor"] == {"original": "123.45"}
        assert cob["chave"] == PIX_KEY
        assert cob["devedor"] == {"cpf": "12345678909", "nome": "Francisco da Silva"}
        assert cob["solicitacaoPagador"] == "Depósito"
        assert cob["location"].startswith("qrcodes-pix.gerencianet.com.br/v2/")
        assert cob["loc"]["location"] == cob["location"]
        assert cob["loc"]["tipoCob"] == "cob"
        assert isinstance(cob["loc"]["id"], int)

    def test_expiracao_defaults_to_one_day(self, efi: EfiApi) -> None:
        """Without calendario the BCB default of 86400 seconds applies."""
        assert efi.create_cob()["calendario"]["expiracao"] == 86400

    def test_post_generates_a_32_character_txid(self, efi: EfiApi) -> None:
        """POST /v2/cob lets the PSP choose the txid: 32 hex characters."""
        response = efi.call(
            "POST", "/v2/cob", json={"valor": {"original": "1.00"}, "chave": PIX_KEY}
        )
        assert response.status_code == 201
        txid = response.json()["txid"]
        assert len(txid) == 32
        assert all(c in "0123456789abcdef" for c in txid)

    def test_reused_txid_is_409(self, efi: EfiApi) -> None:
        """A txid already used answers txid_duplicado."""
        txid = new_txid()
        body = {"valor": {"original": "1.00"}, "chave": PIX_KEY}
        assert efi.call("PUT", f"/v2/cob/{txid}", json=body).status_code == 201
        response = efi.call("PUT", f"/v2/cob/{txid}", json=body)
        assert response.status_code == 409
        assert response.json() == {
            "nome": "txid_duplicado",
            "mensagem": "Campo txid informado já foi utilizado em outra cobrança",
        }

    def test_key_of_another_account_is_chave_invalida(self, efi: EfiApi) -> None:
        """The chave must be the account's own key."""
        body = {"valor": {"original": "1.00"}, "chave": "pix@bcb.gov.br"}
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 400
        assert response.json()["nome"] == "chave_invalida"

    def test_zero_amount_is_valor_invalido(self, efi: EfiApi) -> None:
        """valor.original must be greater than zero."""
        body = {"valor": {"original": "0.00"}, "chave": PIX_KEY}
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 400
        assert response.json()["nome"] == "valor_invalido"

    def test_invalid_cpf_check_digits_is_400(self, efi: EfiApi) -> None:
        """A devedor CPF with wrong check digits is refused in Efí's shape."""
        body = {
            "valor": {"original": "1.00"},
            "chave": PIX_KEY,
            "devedor": {"cpf": "12345678900", "nome": "Fulano"},
        }
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 400
        assert response.json() == {
            "nome": "valor_invalido",
            "mensagem": "Documento CPF em devedor.cpf é inválido",
        }

    def test_amount_as_json_number_is_json_invalido(self, efi: EfiApi) -> None:
        """A schema violation lists each error with chave, caminho and mensagem."""
        body = {"valor": {"original": 12.5}, "chave": PIX_KEY, "extra": True}
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 400
        error = response.json()
        assert error["nome"] == "json_invalido"
        assert error["mensagem"] == "Valores ou tipos de campo inválidos"
        paths = {(e["chave"], e["caminho"]) for e in error["erros"]}
        assert paths == {("type", ".body.valor.original"), ("additionalProperties", ".body.extra")}

    def test_amount_pattern_is_enforced(self, efi: EfiApi) -> None:
        """valor.original must match \\d{1,10}\\.\\d{2}."""
        body = {"valor": {"original": "10.5"}, "chave": PIX_KEY}
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 400
        assert response.json()["erros"][0]["chave"] == "pattern"

    def test_malformed_json_is_json_invalido(self, efi: EfiApi) -> None:
        """A body that is not JSON is a 400 json_invalido, never a 500."""
        response = efi.call(
            "PUT",
            f"/v2/cob/{new_txid()}",
            content=b'{"valor": ',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["nome"] == "json_invalido"

    def test_short_txid_is_refused(self, efi: EfiApi) -> None:
        """A txid outside [a-zA-Z0-9]{26,35} is a schema error on the path."""
        body = {"valor": {"original": "1.00"}, "chave": PIX_KEY}
        response = efi.call("PUT", "/v2/cob/short", json=body)
        assert response.status_code == 400
        assert response.json()["erros"][0]["caminho"] == ".params.txid"


class TestBrCode:
    def test_pix_copia_e_cola_is_a_valid_dynamic_code_for_the_location(self, efi: EfiApi) -> None:
        """The BR Code parses (CRC checked), is single-use and points at the cob's location."""
        cob = efi.create_cob()
        code = parse_brcode(cob["pixCopiaECola"])
        assert code.point_of_initiation == "dynamic"
        assert code.location_url == cob["location"]
        assert code.merchant_name == "PIXWAVE SANDBOX"
        assert code.txid is None

    def test_qrcode_route_returns_the_code_and_an_image_of_it(self, efi: EfiApi) -> None:
        """GET /v2/loc/{id}/qrcode: the PNG scans back to the same BR Code."""
        cob = efi.create_cob()
        response = efi.call("GET", f"/v2/loc/{cob['loc']['id']}/qrcode")
        assert response.status_code == 200
        body = response.json()
        assert body["qrcode"] == cob["pixCopiaECola"]
        assert body["linkVisualizacao"].startswith("https://pix.sejaefi.com.br/cob/pagar/")
        prefix = "data:image/png;base64,"
        assert body["imagemQrcode"].startswith(prefix)
        png = base64.b64decode(body["imagemQrcode"][len(prefix) :])
        decoded = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(png)))
        assert [d.text for d in decoded] == [cob["pixCopiaECola"]]

    def test_location_names_its_txid(self, efi: EfiApi) -> None:
        """GET /v2/loc/{id} returns the location linked to the cob."""
        cob = efi.create_cob()
        response = efi.call("GET", f"/v2/loc/{cob['loc']['id']}")
        assert response.status_code == 200
        assert response.json()["txid"] == cob["txid"]
        assert response.json()["location"] == cob["location"]

    def test_unknown_location_is_404(self, efi: EfiApi) -> None:
        """A location id that does not exist answers location_nao_encontrada."""
        response = efi.call("GET", "/v2/loc/999999/qrcode")
        assert response.status_code == 404
        assert response.json()["nome"] == "location_nao_encontrada"


class TestGetCob:
    def test_returns_the_cob(self, efi: EfiApi) -> None:
        """GET /v2/cob/{txid} returns what PUT created."""
        cob = efi.create_cob("7.00")
        response = efi.call("GET", f"/v2/cob/{cob['txid']}")
        assert response.status_code == 200
        assert response.json() == cob

    def test_unknown_txid_is_rfc7807_cob_nao_encontrado(self, efi: EfiApi) -> None:
        """Not found answers the BCB problem type CobNaoEncontrado."""
        response = efi.call("GET", f"/v2/cob/{new_txid()}")
        assert response.status_code == 404
        assert problem_type(response) == "CobNaoEncontrado"
        assert response.json()["status"] == 404

    def test_expiry_does_not_change_the_status(self, efi: EfiApi) -> None:
        """An expired, unpaid cob is still ATIVA (BCB: status is the record's)."""
        cob = efi.create_cob(calendario={"expiracao": 60})
        efi.advance(120)
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").json()["status"] == "ATIVA"


class TestPatchCob:
    def test_removal_bumps_the_revision(self, efi: EfiApi) -> None:
        """PATCH status REMOVIDA_PELO_USUARIO_RECEBEDOR removes an ATIVA cob, revisao + 1."""
        cob = efi.create_cob()
        response = efi.call(
            "PATCH", f"/v2/cob/{cob['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        )
        assert response.status_code == 200
        assert response.json()["status"] == "REMOVIDA_PELO_USUARIO_RECEBEDOR"
        assert response.json()["revisao"] == 1

    def test_removing_a_paid_cob_is_400(self, efi: EfiApi) -> None:
        """Only an ATIVA cob can be changed: a CONCLUIDA one answers CobOperacaoInvalida."""
        cob = efi.create_cob()
        assert efi.pay(cob["pixCopiaECola"]).status_code == 200
        response = efi.call(
            "PATCH", f"/v2/cob/{cob['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        )
        assert response.status_code == 400
        assert problem_type(response) == "CobOperacaoInvalida"

    def test_other_status_is_a_schema_error(self, efi: EfiApi) -> None:
        """The only status a client may set is REMOVIDA_PELO_USUARIO_RECEBEDOR."""
        cob = efi.create_cob()
        response = efi.call("PATCH", f"/v2/cob/{cob['txid']}", json={"status": "CONCLUIDA"})
        assert response.status_code == 400
        assert response.json()["erros"][0]["chave"] == "enum"

    def test_revising_the_amount(self, efi: EfiApi) -> None:
        """A revised valor is kept and counts as a revision."""
        cob = efi.create_cob("10.00")
        response = efi.call(
            "PATCH", f"/v2/cob/{cob['txid']}", json={"valor": {"original": "11.00"}}
        )
        assert response.json()["valor"]["original"] == "11.00"
        assert response.json()["revisao"] == 1


class TestListCobs:
    def test_lists_cobs_created_in_the_period(self, efi: EfiApi) -> None:
        """GET /v2/cob?inicio&fim answers {parametros, cobs} with BCB pagination."""
        first = efi.create_cob()
        efi.create_cob()
        response = efi.call(
            "GET",
            "/v2/cob",
            params={
                "inicio": "2000-01-01T00:00:00Z",
                "fim": "2999-01-01T00:00:00Z",
                "paginacao.itensPorPagina": "1",
            },
        )
        assert response.status_code == 200
        body = response.json()
        assert body["parametros"]["paginacao"]["quantidadeTotalDeItens"] == 2
        assert body["parametros"]["paginacao"]["quantidadeDePaginas"] == 2
        assert [c["txid"] for c in body["cobs"]] == [first["txid"]]

    def test_inicio_is_required(self, efi: EfiApi) -> None:
        """The period is mandatory on list endpoints."""
        response = efi.call("GET", "/v2/cob", params={"fim": "2999-01-01T00:00:00Z"})
        assert response.status_code == 400
        assert response.json()["erros"][0]["caminho"] == ".query.inicio"


# --- paying ----------------------------------------------------------------------------------


class TestPay:
    def test_paying_concludes_the_cob_with_its_pix(self, efi: EfiApi) -> None:
        """/_sandbox/pay settles a Pix: the cob becomes CONCLUIDA and lists it in pix[]."""
        cob = efi.create_cob("25.50")
        response = efi.pay(
            cob["pixCopiaECola"],
            payer={"name": "Maria", "document": "11144477735"},
            info="pedido 42",
        )
        assert response.status_code == 200
        paid = response.json()
        assert paid["gateway"] == "efi"
        assert paid["charge_id"] == cob["txid"]
        assert paid["status"] == "CONCLUIDA"
        assert paid["amount"] == 25_50
        after = efi.call("GET", f"/v2/cob/{cob['txid']}").json()
        assert after["status"] == "CONCLUIDA"
        (pix,) = after["pix"]
        assert pix["endToEndId"] == paid["end_to_end_id"]
        assert pix["txid"] == cob["txid"]
        assert pix["valor"] == "25.50"
        assert pix["chave"] == PIX_KEY
        assert pix["infoPagador"] == "pedido 42"
        assert pix["devolucoes"] == []

    def test_end_to_end_id_is_32_characters_from_the_payer_bank(self, efi: EfiApi) -> None:
        """The e2eId follows E + ISPB + UTC minute + 11 alphanumerics."""
        e2e = efi.paid_pix()
        assert len(e2e) == 32
        assert e2e.startswith("E00000000")

    def test_paying_twice_is_409(self, efi: EfiApi) -> None:
        """A concluded cob cannot take a second payment."""
        cob = efi.create_cob()
        assert efi.pay(cob["pixCopiaECola"]).status_code == 200
        response = efi.pay(cob["pixCopiaECola"])
        assert response.status_code == 409
        assert response.json()["error"] == "charge_not_active"

    def test_paying_an_expired_cob_is_409(self, efi: EfiApi) -> None:
        """After calendario.expiracao the code can no longer be paid."""
        cob = efi.create_cob(calendario={"expiracao": 60})
        efi.advance(61)
        response = efi.pay(cob["pixCopiaECola"])
        assert response.status_code == 409
        assert response.json()["error"] == "charge_expired"

    def test_paying_a_removed_cob_is_409(self, efi: EfiApi) -> None:
        """A removed cob cannot be paid."""
        cob = efi.create_cob()
        efi.call(
            "PATCH", f"/v2/cob/{cob['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
        )
        assert efi.pay(cob["pixCopiaECola"]).status_code == 409

    def test_a_recurrence_only_code_pays_nothing(self, efi: EfiApi) -> None:
        """A Pix Automático authorisation code (Jornada 2) is not a payment: 422, no cob paid."""
        cob = efi.create_cob()
        response = efi.pay(RECURRENCE_VECTOR)
        assert response.status_code == 422
        assert response.json()["error"] == "nothing_to_pay"
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").json()["status"] == "ATIVA"

    def test_invalid_brcode_is_422(self, efi: EfiApi) -> None:
        """A code whose CRC does not match is refused like a bank app would."""
        cob = efi.create_cob()
        broken = cob["pixCopiaECola"][:-4] + "0000"
        response = efi.pay(broken)
        assert response.status_code == 422
        assert response.json()["error"] == "brcode_crc_mismatch"


class TestReceivedPix:
    def test_get_pix_returns_the_received_pix(self, efi: EfiApi) -> None:
        """GET /v2/pix/{e2eId} returns the Pix with its value and txid."""
        e2e = efi.paid_pix("42.00")
        response = efi.call("GET", f"/v2/pix/{e2e}")
        assert response.status_code == 200
        pix = response.json()
        assert pix["endToEndId"] == e2e
        assert pix["valor"] == "42.00"
        assert pix["componentesValor"] == {"original": {"valor": "42.00"}}

    def test_unknown_e2e_is_pix_nao_encontrado(self, efi: EfiApi) -> None:
        """A Pix that never arrived answers Efí's pix_nao_encontrado."""
        response = efi.call("GET", "/v2/pix/E12345678202009091221abcdef12345")
        assert response.status_code == 404
        assert response.json()["nome"] == "pix_nao_encontrado"

    def test_list_returns_pix_in_the_period(self, efi: EfiApi) -> None:
        """GET /v2/pix?inicio&fim answers {parametros, pix}."""
        e2e = efi.paid_pix()
        response = efi.call(
            "GET",
            "/v2/pix",
            params={"inicio": "2000-01-01T00:00:00Z", "fim": "2999-01-01T00:00:00Z"},
        )
        assert response.status_code == 200
        assert [p["endToEndId"] for p in response.json()["pix"]] == [e2e]


# --- refunds ---------------------------------------------------------------------------------


class TestRefunds:
    def test_partial_refund_starts_em_processamento(self, efi: EfiApi) -> None:
        """PUT devolucao answers 201 EM_PROCESSAMENTO with an Efí rtrId."""
        e2e = efi.paid_pix("100.00")
        response = efi.refund(e2e, "dev1", "30.00")
        assert response.status_code == 201
        refund = response.json()
        assert refund["id"] == "dev1"
        assert refund["valor"] == "30.00"
        assert refund["natureza"] == "ORIGINAL"
        assert refund["status"] == "EM_PROCESSAMENTO"
        assert refund["rtrId"].startswith("D09089356")
        assert len(refund["rtrId"]) == 32
        assert "liquidacao" not in refund["horario"]

    def test_refund_settles_as_devolvido(self, efi: EfiApi) -> None:
        """After the settle delay the refund is DEVOLVIDO with horario.liquidacao."""
        e2e = efi.paid_pix("100.00")
        efi.refund(e2e, "dev1", "30.00")
        efi.advance(PAST_SETTLE_DELAY)
        refund = efi.call("GET", f"/v2/pix/{e2e}/devolucao/dev1").json()
        assert refund["status"] == "DEVOLVIDO"
        assert "liquidacao" in refund["horario"]

    def test_full_refund_after_a_partial_one(self, efi: EfiApi) -> None:
        """Refunds may add up to exactly the Pix value."""
        e2e = efi.paid_pix("100.00")
        assert efi.refund(e2e, "dev1", "30.00").status_code == 201
        assert efi.refund(e2e, "dev2", "70.00").status_code == 201
        devolucoes = efi.call("GET", f"/v2/pix/{e2e}").json()["devolucoes"]
        assert [d["valor"] for d in devolucoes] == ["30.00", "70.00"]

    def test_refunds_over_the_pix_value_are_400(self, efi: EfiApi) -> None:
        """The sum of refunds may not exceed the Pix value."""
        e2e = efi.paid_pix("100.00")
        efi.refund(e2e, "dev1", "60.00")
        response = efi.refund(e2e, "dev2", "40.01")
        assert response.status_code == 400
        assert response.json()["nome"] == "valor_invalido"

    def test_reused_refund_id_is_409(self, efi: EfiApi) -> None:
        """A devolução id is unique per Pix."""
        e2e = efi.paid_pix("100.00")
        efi.refund(e2e, "dev1", "1.00")
        response = efi.refund(e2e, "dev1", "1.00")
        assert response.status_code == 409
        assert response.json()["nome"] == "devolucao_id_duplicado"

    def test_refund_of_an_unknown_pix_is_404(self, efi: EfiApi) -> None:
        """Refunding a Pix that never arrived answers pix_nao_encontrado."""
        response = efi.refund("E12345678202009091221abcdef12345", "dev1", "1.00")
        assert response.status_code == 404
        assert response.json()["nome"] == "pix_nao_encontrado"

    def test_cob_shows_the_refund(self, efi: EfiApi) -> None:
        """GET /v2/cob lists the refund under pix[].devolucoes."""
        cob = efi.create_cob("50.00")
        e2e = efi.pay(cob["pixCopiaECola"]).json()["end_to_end_id"]
        efi.refund(e2e, "dev1", "5.00")
        (pix,) = efi.call("GET", f"/v2/cob/{cob['txid']}").json()["pix"]
        assert [d["id"] for d in pix["devolucoes"]] == ["dev1"]


# --- sends -----------------------------------------------------------------------------------


class TestSends:
    def test_send_is_accepted_em_processamento(self, efi: EfiApi) -> None:
        """PUT /v3/gn/pix/{idEnvio} answers 201 with an Efí e2eId."""
        response = efi.send("envio1", "12.34")
        assert response.status_code == 201
        body = response.json()
        assert body["idEnvio"] == "envio1"
        assert body["valor"] == "12.34"
        assert body["status"] == "EM_PROCESSAMENTO"
        assert body["e2eId"].startswith("E09089356")
        assert len(body["e2eId"]) == 32
        assert "solicitacao" in body["horario"]

    def test_send_can_be_read_by_id_envio_and_by_e2e(self, efi: EfiApi) -> None:
        """Both query routes return the same send, with the receiver's masked CPF."""
        efi.configure(auto_settle_sends=False)
        e2e = efi.send(
            "envio1", favorecido={"chave": "+5511987654321", "cpf": "12345678909"}
        ).json()["e2eId"]
        by_id = efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").json()
        by_e2e = efi.call("GET", f"/v2/gn/pix/enviados/{e2e}").json()
        assert by_id == by_e2e
        assert by_id["status"] == "EM_PROCESSAMENTO"
        assert by_id["chave"] == PIX_KEY
        assert by_id["infoPagador"] == "Saque PixWave"
        assert by_id["favorecido"]["chave"] == "+5511987654321"
        assert by_id["favorecido"]["identificacao"]["cpf"] == "***.456.789-**"

    def test_settle_makes_it_realizado(self, efi: EfiApi) -> None:
        """/_sandbox/sends/{id}/settle → REALIZADO with horario.liquidacao."""
        efi.configure(auto_settle_sends=False)
        efi.send("envio1")
        assert efi.http.post("/_sandbox/sends/envio1/settle").status_code == 200
        sent = efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").json()
        assert sent["status"] == "REALIZADO"
        assert "liquidacao" in sent["horario"]

    def test_reject_makes_it_nao_realizado_with_the_reason(self, efi: EfiApi) -> None:
        """/_sandbox/sends/{id}/reject → NAO_REALIZADO carrying the reason."""
        efi.configure(auto_settle_sends=False)
        efi.send("envio1")
        response = efi.http.post(
            "/_sandbox/sends/envio1/reject", json={"reason": "Conta encerrada"}
        )
        assert response.status_code == 200
        sent = efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").json()
        assert sent["status"] == "NAO_REALIZADO"
        assert sent["gnExtras"]["erro"]["motivo"] == "Conta encerrada"

    def test_final_send_cannot_be_settled_again(self, efi: EfiApi) -> None:
        """Settling or rejecting a final send is 409."""
        efi.configure(auto_settle_sends=False)
        efi.send("envio1")
        efi.http.post("/_sandbox/sends/envio1/settle")
        assert efi.http.post("/_sandbox/sends/envio1/reject").status_code == 409

    def test_settling_an_unknown_send_is_404(self, efi: EfiApi) -> None:
        """The sandbox route needs an existing idEnvio."""
        assert efi.http.post("/_sandbox/sends/nothing/settle").status_code == 404

    def test_auto_settle_realizes_the_send(self, efi: EfiApi) -> None:
        """With auto_settle_sends the send is REALIZADO after the settle delay."""
        efi.send("envio1")
        efi.advance(PAST_SETTLE_DELAY)
        sent = efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").json()
        assert sent["status"] == "REALIZADO"

    def test_reused_id_envio_is_409(self, efi: EfiApi) -> None:
        """idEnvio makes sends idempotent: a repeat answers id_envio_duplicado."""
        assert efi.send("envio1").status_code == 201
        response = efi.send("envio1")
        assert response.status_code == 409
        assert response.json()["nome"] == "id_envio_duplicado"

    def test_unknown_send_is_rfc7807(self, efi: EfiApi) -> None:
        """Querying an unknown send answers PixEnviadoNaoEncontrado."""
        response = efi.call("GET", "/v2/gn/pix/enviados/id-envio/nothing")
        assert response.status_code == 404
        assert problem_type(response) == "PixEnviadoNaoEncontrado"
        assert response.json()["title"] == "Não Encontrado"

    def test_payer_key_of_another_account_is_chave_invalida(self, efi: EfiApi) -> None:
        """pagador.chave must be the authenticated account's key."""
        response = efi.send("envio1", pagador={"chave": "pix@bcb.gov.br"})
        assert response.status_code == 400
        assert response.json() == {
            "nome": "chave_invalida",
            "mensagem": "A chave informada não faz referência à conta Efí autenticada",
        }

    def test_invalid_receiver_key_is_chave_invalida(self, efi: EfiApi) -> None:
        """favorecido.chave must be a valid Pix key."""
        response = efi.send("envio1", favorecido={"chave": "not a key"})
        assert response.status_code == 400
        assert response.json()["nome"] == "chave_invalida"

    def test_invalid_receiver_cpf_is_400(self, efi: EfiApi) -> None:
        """favorecido.cpf must have valid check digits."""
        response = efi.send("envio1", favorecido={"chave": "pix@bcb.gov.br", "cpf": "12345678900"})
        assert response.status_code == 400
        assert response.json()["nome"] == "valor_invalido"

    def test_cpf_key_of_another_document_is_refused(self, efi: EfiApi) -> None:
        """A CPF key with a different favorecido.cpf answers chave_nao_pertence_ao_documento."""
        response = efi.send("envio1", favorecido={"chave": "12345678909", "cpf": "11144477735"})
        assert response.status_code == 400
        assert response.json()["nome"] == "chave_nao_pertence_ao_documento"

    def test_v2_path_is_an_alias(self, efi: EfiApi) -> None:
        """The older PUT /v2/gn/pix/{idEnvio} path creates a send too."""
        body = {
            "valor": "1.00",
            "pagador": {"chave": PIX_KEY},
            "favorecido": {"chave": "pix@bcb.gov.br"},
        }
        response = efi.call("PUT", "/v2/gn/pix/envio2", json=body)
        assert response.status_code == 201
        assert response.json()["idEnvio"] == "envio2"


# --- magic amounts ---------------------------------------------------------------------------


class TestMagicAmountsOn:
    @pytest.fixture(autouse=True)
    def _magic(self, efi: EfiApi) -> None:
        efi.configure(magic_amounts=True, webhook_url=efi.sink_url)

    def test_small_cob_is_paid_automatically_and_notified(self, efi: EfiApi) -> None:
        """A cob of R$0.01–10.00 is paid by homologation's payer and notified."""
        cob = efi.create_cob("5.00")
        efi.advance(PAST_SETTLE_DELAY)
        after = efi.call("GET", f"/v2/cob/{cob['txid']}").json()
        assert after["status"] == "CONCLUIDA"
        (hook,) = efi.webhooks(1)
        assert hook.json()["pix"][0]["txid"] == cob["txid"]

    def test_larger_cob_stays_active(self, efi: EfiApi) -> None:
        """A cob above R$10.00 waits for a payer."""
        cob = efi.create_cob("10.01")
        efi.advance(PAST_SETTLE_DELAY)
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").json()["status"] == "ATIVA"

    def test_send_up_to_ten_reais_is_realizado(self, efi: EfiApi) -> None:
        """A send of R$0.01–10.00 is confirmed by webhook."""
        efi.send("envio1", "10.00")
        (hook,) = efi.webhooks(1)
        item = hook.json()["pix"][0]
        assert item["status"] == "REALIZADO"
        assert item["gnExtras"] == {"idEnvio": "envio1"}

    def test_send_between_ten_and_twenty_is_rejected_by_webhook(self, efi: EfiApi) -> None:
        """A send of R$10.01–20.00 is accepted, then rejected via webhook."""
        assert efi.send("envio1", "15.00").status_code == 201
        (hook,) = efi.webhooks(1)
        item = hook.json()["pix"][0]
        assert item["status"] == "NAO_REALIZADO"
        assert item["horario"] is None
        assert item["gnExtras"]["erro"]["codigo"] == "AC03"
        sent = efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").json()
        assert sent["status"] == "NAO_REALIZADO"

    def test_send_above_twenty_is_refused_synchronously(self, efi: EfiApi) -> None:
        """A send above R$20.00 is refused in the request and never recorded."""
        response = efi.send("envio1", "20.01")
        assert response.status_code == 422
        assert response.json() == {
            "nome": "pagamento_negado",
            "mensagem": "Pagamento negado por análises",
        }
        assert efi.call("GET", "/v2/gn/pix/enviados/id-envio/envio1").status_code == 404

    def test_one_centavo_refund_is_nao_realizado(self, efi: EfiApi) -> None:
        """A R$0.01 refund ends NAO_REALIZADO with a motivo."""
        e2e = efi.paid_pix("50.00")
        efi.refund(e2e, "dev1", "0.01")
        efi.advance(PAST_SETTLE_DELAY)
        refund = efi.call("GET", f"/v2/pix/{e2e}/devolucao/dev1").json()
        assert refund["status"] == "NAO_REALIZADO"
        assert refund["motivo"]


class TestMagicAmountsOff:
    def test_small_cob_is_not_paid(self, efi: EfiApi) -> None:
        """Without magic amounts nothing pays a cob but a payer."""
        cob = efi.create_cob("5.00")
        efi.advance(PAST_SETTLE_DELAY)
        assert efi.call("GET", f"/v2/cob/{cob['txid']}").json()["status"] == "ATIVA"

    def test_large_send_is_accepted(self, efi: EfiApi) -> None:
        """Without magic amounts a R$25.00 send is accepted."""
        assert efi.send("envio1", "25.00").status_code == 201


# --- webhooks --------------------------------------------------------------------------------


class TestWebhookRegistration:
    def test_put_then_get(self, efi: EfiApi) -> None:
        """PUT /v2/webhook/{chave} registers; GET shows webhookUrl, chave and criacao."""
        url = "https://example.com/efi"
        response = efi.call("PUT", f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": url})
        assert response.status_code == 200
        body = efi.call("GET", f"/v2/webhook/{PIX_KEY}").json()
        assert body["webhookUrl"] == url
        assert body["chave"] == PIX_KEY
        assert body["criacao"].endswith("Z")

    def test_delete_then_get_is_404(self, efi: EfiApi) -> None:
        """DELETE answers 204 and the webhook is gone."""
        efi.register_webhook("https://example.com/efi")
        assert efi.call("DELETE", f"/v2/webhook/{PIX_KEY}").status_code == 204
        response = efi.call("GET", f"/v2/webhook/{PIX_KEY}")
        assert response.status_code == 404
        assert response.json()["nome"] == "webhook_nao_encontrado"

    def test_https_can_be_required(self, efi: EfiApi) -> None:
        """With require_https_webhook an http:// URL is webhook_invalido."""
        efi.configure(require_https_webhook=True)
        response = efi.call(
            "PUT", f"/v2/webhook/{PIX_KEY}", json={"webhookUrl": "http://example.com/efi"}
        )
        assert response.status_code == 400
        assert response.json()["nome"] == "webhook_invalido"

    def test_key_of_another_account_is_refused(self, efi: EfiApi) -> None:
        """Only the account's own key can get a webhook."""
        response = efi.call(
            "PUT", "/v2/webhook/pix@bcb.gov.br", json={"webhookUrl": "https://example.com/efi"}
        )
        assert response.status_code == 400

    def test_configured_url_is_preregistered(self, efi: EfiApi) -> None:
        """webhook_url in the configuration is registered for the account's key."""
        efi.configure(webhook_url="https://example.com/configured")
        body = efi.call("GET", f"/v2/webhook/{PIX_KEY}").json()
        assert body["webhookUrl"] == "https://example.com/configured"


class TestWebhookDelivery:
    def test_received_pix_is_posted_to_url_plus_pix(self, efi: EfiApi) -> None:
        """Paying a cob POSTs {"pix": [item]} to webhookUrl + "/pix"."""
        efi.register_webhook(efi.sink_url)
        cob = efi.create_cob("9.99")
        e2e = efi.pay(cob["pixCopiaECola"], payer={"name": "Ana", "document": "11144477735"})
        (hook,) = efi.webhooks(1)
        assert hook.method == "POST"
        assert hook.path == "/hook/pix"
        (item,) = hook.json()["pix"]
        assert item["endToEndId"] == e2e.json()["end_to_end_id"]
        assert item["txid"] == cob["txid"]
        assert item["valor"] == "9.99"
        assert item["chave"] == PIX_KEY
        assert item["gnExtras"]["pagador"]["cpf"] == "11144477735"

    def test_suffix_lands_in_the_ignorar_query_parameter(self, efi: EfiApi) -> None:
        """A URL ending in ?hmac=secret&ignorar= keeps its path; /pix goes to the query."""
        efi.register_webhook(f"{efi.sink_url}?hmac=secret&ignorar=")
        efi.paid_pix()
        (hook,) = efi.webhooks(1)
        assert hook.path == "/hook"
        assert hook.query == "hmac=secret&ignorar=/pix"

    def test_refund_is_notified_with_its_devolucao(self, efi: EfiApi) -> None:
        """A refund reaching DEVOLVIDO posts the Pix with devolucoes[that refund]."""
        e2e = efi.paid_pix("20.00")
        efi.register_webhook(efi.sink_url)
        efi.refund(e2e, "dev1", "3.00")
        efi.advance(PAST_SETTLE_DELAY)
        (hook,) = efi.webhooks(1)
        (item,) = hook.json()["pix"]
        assert item["endToEndId"] == e2e
        (devolucao,) = item["devolucoes"]
        assert devolucao["id"] == "dev1"
        assert devolucao["status"] == "DEVOLVIDO"
        assert "liquidacao" in devolucao["horario"]

    def test_send_is_notified_on_its_final_state(self, efi: EfiApi) -> None:
        """A send reaching REALIZADO posts Efí's SOLICITACAO item with gnExtras.idEnvio."""
        efi.configure(auto_settle_sends=False)
        efi.register_webhook(efi.sink_url)
        e2e = efi.send("envio1", "7.00").json()["e2eId"]
        efi.http.post("/_sandbox/sends/envio1/settle")
        (hook,) = efi.webhooks(1)
        (item,) = hook.json()["pix"]
        assert item["endToEndId"] == e2e
        assert item["tipo"] == "SOLICITACAO"
        assert item["status"] == "REALIZADO"
        assert item["valor"] == "7.00"
        assert item["gnExtras"] == {"idEnvio": "envio1"}

    def test_no_webhook_registered_means_no_delivery(self, efi: EfiApi) -> None:
        """Without a registration nothing is posted (and nothing is queued)."""
        efi.paid_pix()
        assert efi.http.get("/_sandbox/webhooks").json() == []

    def test_failed_delivery_is_retried(self, efi: EfiApi) -> None:
        """A 500 from the receiver is retried on Efí's schedule until a 2xx."""
        efi.register_webhook(efi.sink_url)
        efi.sink.status = 500
        efi.paid_pix()
        efi.webhooks(1)
        efi.sink.status = 200  # the first retry comes 5 min × time_scale (0.3 s) later
        first, second = efi.webhooks(2)
        assert first.body == second.body
        delivery = efi.delivered()
        statuses = [a["status"] for a in delivery["attempts"]]
        assert statuses[0] == 500
        assert statuses[-1] == 200


# --- faults ----------------------------------------------------------------------------------


class TestInjectedFaults:
    def test_injected_500_is_erro_aplicacao(self, efi: EfiApi) -> None:
        """An injected 5xx answers Efí's erro_aplicacao and creates nothing."""
        efi.authenticate()
        efi.http.put("/_sandbox/faults/cob.put", json={"error_rate": 1.0})
        body = {"valor": {"original": "1.00"}, "chave": PIX_KEY}
        response = efi.call("PUT", f"/v2/cob/{new_txid()}", json=body)
        assert response.status_code == 500
        assert response.json()["nome"] == "erro_aplicacao"
        assert efi.resources()["cobs"] == 0

    def test_injected_rate_limit_is_429(self, efi: EfiApi) -> None:
        """A rate-limit rule answers 429 in Efí's shape."""
        efi.authenticate()
        efi.http.put("/_sandbox/faults/send.put", json={"rate_limit": 0})
        response = efi.send("envio1")
        assert response.status_code == 429
        assert response.json()["nome"] == "limite_requisicoes"


class TestScheduler:
    """Settlements wait on the simulated clock in a heap: a wake-up or a clock advance runs
    exactly what is due, oldest first, and nothing twice."""

    async def test_runs_what_is_due_in_order_and_only_once(self) -> None:
        sim = EfiSimulator(EfiSimConfig(settle_delay_seconds=10, time_scale=1))
        ran: list[str] = []
        try:
            sim.schedule(lambda: ran.append("first"))
            sim.clock.advance(5)
            sim.schedule(lambda: ran.append("second"))
            sim.run_due()
            assert ran == []
            sim.clock.advance(6)  # 11 s: only the first is due
            sim.run_due()
            assert ran == ["first"]
            sim.clock.advance(60)
            sim.run_due()
            sim.run_due()
            assert ran == ["first", "second"]
        finally:
            await sim.aclose()

    async def test_a_broken_action_does_not_stop_the_others(self) -> None:
        sim = EfiSimulator(EfiSimConfig(settle_delay_seconds=1, time_scale=1))
        ran: list[str] = []
        try:
            sim.schedule(lambda: ran.append(str(1 // 0)))
            sim.schedule(lambda: ran.append("after"))
            sim.clock.advance(2)
            sim.run_due()
            assert ran == ["after"]
        finally:
            await sim.aclose()


class TestRecords:
    def test_records_list_every_money_movement(self, efi: EfiApi) -> None:
        """`GET /_sandbox/records`: a paid cob, an unpaid one, a refund and a settled send,
        each with its own id as reference and whether money moved."""
        paid = efi.create_cob("50.00")
        unpaid = efi.create_cob("7.00")
        e2e = efi.pay(paid["pixCopiaECola"]).json()["end_to_end_id"]
        assert efi.refund(e2e, "dev1", "5.00").status_code == 201
        assert efi.send("envio1", "12.34").status_code == 201
        efi.advance(PAST_SETTLE_DELAY)
        records = {(r["kind"], r["reference"]): r for r in efi.http.get("/_sandbox/records").json()}
        charge = records[("charge", paid["txid"])]
        assert (charge["amount"], charge["moved"], charge["payments"]) == (50_00, True, 1)
        assert records[("charge", unpaid["txid"])]["moved"] is False
        refund = records[("refund", "dev1")]
        assert (refund["parent"], refund["amount"], refund["moved"]) == (paid["txid"], 5_00, True)
        send = records[("send", "envio1")]
        assert (send["amount"], send["done"], send["moved"]) == (12_34, True, True)
        assert len(records) == 4
