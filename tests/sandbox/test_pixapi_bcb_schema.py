"""Every route of the standard API Pix simulator answers what the Central Bank's OpenAPI says.

One journey drives each route of the simulator through a client whose every answer passes
``ResponseChecker``; the last assertion proves the journey met every route and status it
meant to. The checker itself is shown not to be vacuous.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest

from pixwave.sandbox.pixapi import PixApiSimConfig, PixApiSimulator
from tests.bcb_schema import ResponseChecker, UndocumentedAnswer
from tests.servers import ServerThread, run_simulator

PIX_KEY = "+5511987654321"
PERIOD = {"inicio": "2000-01-01T00:00:00Z", "fim": "2999-01-01T00:00:00Z"}

#: (method, spec path, status) of every answer the journey must have produced.
EXPECTED = {
    ("PUT", "/cob/{txid}", 201),
    ("PUT", "/cob/{txid}", 400),
    ("POST", "/cob", 201),
    ("PATCH", "/cob/{txid}", 200),
    ("PATCH", "/cob/{txid}", 400),
    ("GET", "/cob/{txid}", 200),
    ("GET", "/cob/{txid}", 404),
    ("GET", "/cob/{txid}", 401),
    ("GET", "/cob/{txid}", 403),
    ("GET", "/cob", 200),
    ("GET", "/loc/{id}", 200),
    ("GET", "/loc/{id}", 404),
    ("GET", "/pix/{e2eid}", 200),
    ("GET", "/pix/{e2eid}", 404),
    ("GET", "/pix", 200),
    ("PUT", "/pix/{e2eid}/devolucao/{id}", 201),
    ("PUT", "/pix/{e2eid}/devolucao/{id}", 400),
    ("GET", "/pix/{e2eid}/devolucao/{id}", 200),
    ("GET", "/pix/{e2eid}/devolucao/{id}", 404),
    ("PUT", "/webhook/{chave}", 200),
    ("PUT", "/webhook/{chave}", 400),
    ("GET", "/webhook/{chave}", 200),
    ("GET", "/webhook/{chave}", 404),
    ("GET", "/webhook", 200),
    ("DELETE", "/webhook/{chave}", 204),
}


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    config = PixApiSimConfig(gateway="bancob", pix_key=PIX_KEY, time_scale=0.001)
    with run_simulator(PixApiSimulator(config)) as thread:
        yield thread


def _client(base_url: str, checker: ResponseChecker, token: str) -> httpx.Client:
    def check(response: httpx.Response) -> None:
        response.read()
        checker.check(
            response.request.method,
            urlsplit(str(response.request.url)).path.removeprefix("/v2"),
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )

    return httpx.Client(
        base_url=f"{base_url}/v2",
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
        event_hooks={"response": [check]},
    )


def _token(admin: httpx.Client, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = admin.post("/oauth/token", auth=("any", "any"), data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_every_route_answers_as_the_specification_says(served: ServerThread) -> None:
    """Each route's success and error answers validate, and the journey covered them all."""
    checker = ResponseChecker()
    with httpx.Client(base_url=served.base_url, timeout=10) as admin:
        assert admin.post("/_sandbox/reset").is_success
        with (
            _client(served.base_url, checker, _token(admin)) as api,
            _client(served.base_url, checker, "not-a-token") as anonymous,
            _client(served.base_url, checker, _token(admin, "pix.read")) as reader,
        ):
            txid = secrets.token_hex(16)
            body = {
                "calendario": {"expiracao": 3600},
                "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
                "valor": {"original": "50.00", "modalidadeAlteracao": 0},
                "chave": PIX_KEY,
                "solicitacaoPagador": "Serviço realizado.",
                "infoAdicionais": [{"nome": "Campo 1", "valor": "Informação adicional"}],
            }
            cob = api.put(f"/cob/{txid}", json=body).json()
            api.put(f"/cob/{secrets.token_hex(16)}", json={**body, "chave": "a@b.com"})
            api.post("/cob", json={"valor": {"original": "1.00"}, "chave": PIX_KEY})
            api.get(f"/cob/{secrets.token_hex(16)}")
            anonymous.get(f"/cob/{txid}")
            reader.get(f"/cob/{txid}")
            api.get("/cob", params=PERIOD)
            api.get(f"/loc/{cob['loc']['id']}")
            api.get("/loc/999999")
            api.put(f"/webhook/{PIX_KEY}", json={"webhookUrl": "https://example.com/hook"})
            api.put("/webhook/other@example.com", json={"webhookUrl": "https://example.com/h"})
            api.get(f"/webhook/{PIX_KEY}")
            api.get("/webhook")
            paid = admin.post("/_sandbox/pay", json={"brcode": cob["pixCopiaECola"]}).json()
            e2e = paid["end_to_end_id"]
            api.get(f"/cob/{txid}")
            api.patch(f"/cob/{txid}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"})
            api.get(f"/pix/{e2e}")
            api.get("/pix/E00000000202401011200abcdefghijk")
            api.get("/pix", params={**PERIOD, "txid": txid})
            api.put(f"/pix/{e2e}/devolucao/d1", json={"valor": "10.00"})
            api.put(f"/pix/{e2e}/devolucao/d2", json={"valor": "99.00"})
            admin.post("/_sandbox/clock/advance", json={"seconds": 2})
            api.get(f"/pix/{e2e}/devolucao/d1")
            api.get(f"/pix/{e2e}/devolucao/nope")
            api.get(f"/cob/{txid}")
            other = api.put(f"/cob/{secrets.token_hex(16)}", json=body).json()
            api.patch(f"/cob/{other['txid']}", json={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"})
            api.delete(f"/webhook/{PIX_KEY}")
            api.get(f"/webhook/{PIX_KEY}")
    assert checker.seen >= EXPECTED, sorted(EXPECTED - checker.seen)


class TestTheCheckIsNotVacuous:
    def test_a_status_the_operation_does_not_list_fails(self) -> None:
        """An answer with a status the spec does not list for the operation is refused."""
        with pytest.raises(UndocumentedAnswer, match="418"):
            ResponseChecker().check("GET", "/cob/abc", 418, "application/json", b"{}")

    def test_a_body_where_the_spec_has_none_fails(self) -> None:
        """PUT /webhook answers 200 without content; a body there is refused."""
        with pytest.raises(UndocumentedAnswer, match="no body"):
            ResponseChecker().check("PUT", "/webhook/k", 200, "application/json", b'{"a":1}')

    def test_a_problem_sent_as_plain_json_fails(self) -> None:
        """Errors are application/problem+json where the spec says so."""
        body = (
            b'{"type":"https://pix.bcb.gov.br/api/v2/error/NaoEncontrado","title":"x","status":404}'
        )
        with pytest.raises(UndocumentedAnswer, match="problem"):
            ResponseChecker().check("GET", "/cob/abc", 404, "application/json", body)

    def test_a_cob_without_its_status_fails(self) -> None:
        """A CobCompleta missing a required field is refused."""
        body = b'{"calendario":{"expiracao":1},"txid":"' + b"a" * 26 + b'","revisao":0,'
        body += b'"valor":{"original":"1.00"},"chave":"k"}'
        with pytest.raises(jsonschema.ValidationError, match="status"):
            ResponseChecker().check("GET", "/cob/abc", 200, "application/json", body)

    def test_a_path_outside_the_standard_fails(self) -> None:
        """Efí's QR code route is not in the standard."""
        with pytest.raises(UndocumentedAnswer):
            ResponseChecker().check("GET", "/loc/1/qrcode", 200, "application/json", b"{}")
