"""The official ``efipay`` SDK (1.0.7) against the Efí simulator, unchanged.

The SDK has no base-URL option: its PIX sandbox URL in ``efipay.constants.Constants`` is pointed
at the simulator for each test (and restored after). It checks that the certificate file exists
before authenticating; ``requests`` ignores the certificate for ``http://`` URLs, so any file
does. The SDK returns parsed JSON for every status, errors included, and re-authenticates once
on a 401.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from efipay import EfiPay, UnauthorizedError
from efipay.constants import Constants

from pixwave.pix import parse_brcode
from pixwave.sandbox.efi import EfiSimConfig, EfiSimulator
from tests.servers import ServerThread, run_simulator

PIX_KEY = "5a1e3c7b-9d2f-4b6a-8e0c-1f3d5b7a9c2e"
CLIENT_ID = "Client_Id_sdk"
CLIENT_SECRET = "Client_Secret_sdk"


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    config = EfiSimConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        pix_key=PIX_KEY,
        time_scale=0.001,
        auto_settle_sends=False,
    )
    with run_simulator(EfiSimulator(config)) as thread:
        yield thread


@pytest.fixture
def admin(served: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        client.post("/_sandbox/reset")
        yield client


@pytest.fixture
def certificate(tmp_path: Path) -> str:
    path = tmp_path / "homologacao.pem"
    path.write_text("not used over plain HTTP\n")
    return str(path)


@pytest.fixture
def efi(
    served: ServerThread, admin: httpx.Client, certificate: str, monkeypatch: pytest.MonkeyPatch
) -> EfiPay:
    monkeypatch.setitem(Constants.APIS["PIX"]["URL"], "sandbox", served.base_url)
    return EfiPay(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "sandbox": True,
            "certificate": certificate,
        }
    )


def cob_body(valor: str = "123.45") -> dict[str, Any]:
    return {
        "calendario": {"expiracao": 3600},
        "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
        "valor": {"original": valor},
        "chave": PIX_KEY,
        "solicitacaoPagador": "Cobrança dos serviços prestados.",
    }


def paid(efi: EfiPay, admin: httpx.Client, valor: str = "50.00") -> tuple[dict[str, Any], str]:
    """A cob created through the SDK and paid through the sandbox: (cob, endToEndId)."""
    cob = efi.pix_create_immediate_charge(body=cob_body(valor))
    response = admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]})
    assert response.status_code == 200, response.text
    return cob, response.json()["end_to_end_id"]


class TestCharges:
    def test_create_charge_with_txid(self, efi: EfiPay) -> None:
        """pix_create_charge (PUT /v2/cob/:txid) returns the created cob."""
        txid = secrets.token_hex(16)
        cob = efi.pix_create_charge(params={"txid": txid}, body=cob_body())
        assert cob["txid"] == txid
        assert cob["status"] == "ATIVA"
        assert cob["valor"] == {"original": "123.45"}
        assert parse_brcode(cob["pixCopiaECola"]).location_url == cob["location"]

    def test_create_immediate_charge(self, efi: EfiPay) -> None:
        """pix_create_immediate_charge (POST /v2/cob) gets a PSP-chosen txid."""
        cob = efi.pix_create_immediate_charge(body=cob_body())
        assert len(cob["txid"]) == 32
        assert cob["revisao"] == 0

    def test_detail_charge(self, efi: EfiPay) -> None:
        """pix_detail_charge returns the cob as created."""
        cob = efi.pix_create_immediate_charge(body=cob_body())
        assert efi.pix_detail_charge(params={"txid": cob["txid"]}) == cob

    def test_detail_of_unknown_charge_comes_back_as_a_dict(self, efi: EfiPay) -> None:
        """Errors are returned as parsed bodies, here the BCB problem shape."""
        result = efi.pix_detail_charge(params={"txid": secrets.token_hex(16)})
        assert result["type"].endswith("/CobNaoEncontrado")
        assert result["status"] == 404

    def test_generate_qrcode(self, efi: EfiPay) -> None:
        """pix_generate_qrcode returns the cob's BR Code and a PNG data URI."""
        cob = efi.pix_create_immediate_charge(body=cob_body())
        qrcode = efi.pix_generate_qrcode(params={"id": cob["loc"]["id"]})
        assert qrcode["qrcode"] == cob["pixCopiaECola"]
        assert qrcode["imagemQrcode"].startswith("data:image/png;base64,")


class TestReceivedAndRefunds:
    def test_detail_received(self, efi: EfiPay, admin: httpx.Client) -> None:
        """pix_detail_received returns the Pix that paid the cob."""
        cob, e2e = paid(efi, admin)
        pix = efi.pix_detail_received(params={"e2eId": e2e})
        assert pix["endToEndId"] == e2e
        assert pix["txid"] == cob["txid"]
        assert pix["valor"] == "50.00"

    def test_devolution_and_its_detail(self, efi: EfiPay, admin: httpx.Client) -> None:
        """pix_devolution requests a refund; pix_detail_devolution reads it back."""
        _, e2e = paid(efi, admin)
        refund = efi.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "7.89"})
        assert refund["id"] == "dev1"
        assert refund["valor"] == "7.89"
        assert refund["status"] == "EM_PROCESSAMENTO"
        detail = efi.pix_detail_devolution(params={"e2eId": e2e, "id": "dev1"})
        assert detail["rtrId"] == refund["rtrId"]


class TestSends:
    def test_send_and_detail_by_id(self, efi: EfiPay) -> None:
        """pix_send (PUT /v3/gn/pix/:idEnvio) and pix_send_detail_id agree."""
        body = {
            "valor": "12.34",
            "pagador": {"chave": PIX_KEY, "infoPagador": "Segue o pagamento da conta"},
            "favorecido": {"chave": "joao@meuemail.com", "cpf": "58629188090"},
        }
        created = efi.pix_send(params={"idEnvio": "sdk1"}, body=body)
        assert created["idEnvio"] == "sdk1"
        assert created["status"] == "EM_PROCESSAMENTO"
        detail = efi.pix_send_detail_id(params={"idEnvio": "sdk1"})
        assert detail["endToEndId"] == created["e2eId"]
        assert detail["favorecido"]["identificacao"]["cpf"] == "***.291.880-**"

    def test_send_detail_by_e2e(self, efi: EfiPay) -> None:
        """pix_send_detail takes the route's own placeholder name, e2eid."""
        body = {"valor": "1.00", "pagador": {"chave": PIX_KEY}, "favorecido": {"chave": PIX_KEY}}
        created = efi.pix_send(params={"idEnvio": "sdk2"}, body=body)
        detail = efi.pix_send_detail(params={"e2eid": created["e2eId"]})
        assert detail["idEnvio"] == "sdk2"


class TestWebhookConfig:
    def test_config_webhook_then_detail(self, efi: EfiPay) -> None:
        """pix_config_webhook registers the URL; pix_detail_webhook shows it."""
        url = "https://pixwave.example/webhooks/efi?hmac=s3cret&ignorar="
        result = efi.pix_config_webhook(
            params={"chave": PIX_KEY},
            body={"webhookUrl": url},
            headers={"x-skip-mtls-checking": "true"},
        )
        assert result == {"webhookUrl": url}
        detail = efi.pix_detail_webhook(params={"chave": PIX_KEY})
        assert detail["webhookUrl"] == url
        assert detail["chave"] == PIX_KEY


class TestAuthentication:
    def test_reauthenticates_once_after_revocation(self, efi: EfiPay, admin: httpx.Client) -> None:
        """After every token is revoked the SDK gets a 401, re-authenticates and succeeds."""
        cob = efi.pix_create_immediate_charge(body=cob_body())
        old_token = efi.token["access_token"]
        assert admin.post("/_sandbox/tokens/revoke").json() == {"revoked": 1}
        again = efi.pix_detail_charge(params={"txid": cob["txid"]})
        assert again["txid"] == cob["txid"]
        assert efi.token["access_token"] != old_token
        assert admin.get("/_sandbox").json()["resources"]["tokens"] == 1

    def test_wrong_credentials_are_an_unauthorized_error(
        self, served: ServerThread, certificate: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Bad credentials make the SDK return (not raise) its UnauthorizedError."""
        monkeypatch.setitem(Constants.APIS["PIX"]["URL"], "sandbox", served.base_url)
        efi = EfiPay(
            {
                "client_id": CLIENT_ID,
                "client_secret": "wrong",
                "sandbox": True,
                "certificate": certificate,
            }
        )
        assert isinstance(efi.pix_create_immediate_charge(body=cob_body()), UnauthorizedError)


class TestUrlRestored:
    def test_sandbox_url_is_the_real_one_outside_the_tests(self) -> None:
        """The monkeypatched URL does not leak out of the tests that set it."""
        assert Constants.APIS["PIX"]["URL"]["sandbox"] == "https://pix-h.api.efipay.com.br"
