"""A scripted Efí behind ``httpx.MockTransport``, and payloads shaped like Efí's documentation.

``FakeEfi`` answers ``POST /oauth/token`` itself (counting the calls) and replays scripted
replies for API routes; each reply is an ``httpx.Response``, an exception to raise (a transport
failure) or a callable of the request. The last reply of a route repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from pixwave.gateways.efi import EfiConnector, EfiWebhookAuth
from pixwave.pix import build_dynamic_brcode
from tests.gateways.scripted import FakeClock as BaseClock
from tests.gateways.scripted import ScriptedApi

CLIENT_ID = "Client_Id_4e4327e045ceb277ed5f62db8c46c399c309e0bf"
CLIENT_SECRET = "Client_Secret_bb2ae41e9f3b5d3b9e5d6b1d1f6cbd0ed1f0e2c7"
PIX_KEY = "71cdf9ba-c695-4e3c-b010-abb521a3f1be"
BASE_URL = "http://efi.test"

REFERENCE = "txn_01JDQ8ZB4E3M5V7X9K2N6P8R0T"
#: The reference's alphanumerics: the txid, idEnvio and devolução id derived from it.
REFERENCE_ID = "txn01JDQ8ZB4E3M5V7X9K2N6P8R0T"
REFUND_REFERENCE = "txn_01JDQ9A1B2C3D4E5F6G7H8J9K0"
REFUND_ID = "txn01JDQ9A1B2C3D4E5F6G7H8J9K0"

E2E_ID = "E09089356202405011215APIff82f2e5"
RTR_ID = "D09089356202405011300abcde123456"
LOCATION = "qrcodes-pix.gerencianet.com.br/v2/9d36b84fc70b478fb95c12729b90ca25"
BRCODE = build_dynamic_brcode(
    location_url=LOCATION, merchant_name="PixWave Pagamentos", merchant_city="SAO PAULO"
)
PNG_BASE64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQ"
    "GAhKmMIQAAAABJRU5ErkJggg=="
)

#: 2024-05-01 12:30 UTC: half an hour after the sample cobs were created.
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
CREATED = "2024-05-01T12:00:00.358Z"


class FakeClock(BaseClock):
    """The connector's clock, at :data:`NOW` unless told otherwise."""

    def __init__(self, now: datetime = NOW) -> None:
        super().__init__(now)


@dataclass
class FakeEfi(ScriptedApi):
    """Efí's API as seen through a MockTransport."""

    scope: ClassVar[str] = "cob.read cob.write pix.read pix.write pix.send gn.pix.send.read"
    api_path: ClassVar[str] = ""

    def is_token_request(self, request: httpx.Request) -> bool:
        return request.url.path == "/oauth/token"

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            json={
                "type": "https://pix.bcb.gov.br/api/v2/error/NaoEncontrado",
                "title": "Não Encontrado",
                "status": 404,
                "detail": f"no route {request.method} {request.url.path}",
            },
        )


def make_connector(
    fake: FakeEfi,
    *,
    clock: FakeClock | None = None,
    base_url: str = BASE_URL,
    certificate_path: str | None = None,
    webhook_auth: EfiWebhookAuth | None = None,
) -> EfiConnector:
    return EfiConnector(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        pix_key=PIX_KEY,
        base_url=base_url,
        certificate_path=certificate_path,
        webhook_auth=webhook_auth or EfiWebhookAuth(),
        transport=fake.transport(),
        clock=clock or FakeClock(),
    )


# --- payloads, as in Efí's and the BCB's documentation --------------------------------------


def pix_received(
    *,
    e2e: str = E2E_ID,
    txid: str = REFERENCE_ID,
    valor: str = "123.45",
    devolucoes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "endToEndId": e2e,
        "txid": txid,
        "valor": valor,
        "chave": PIX_KEY,
        "horario": "2024-05-01T12:15:42.000Z",
        "infoPagador": "pagando o pix",
        "devolucoes": devolucoes or [],
    }


def devolucao(
    *,
    id: str = REFUND_ID,
    valor: str = "7.89",
    status: str = "EM_PROCESSAMENTO",
    motivo: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": id,
        "rtrId": RTR_ID,
        "valor": valor,
        "horario": {"solicitacao": "2024-05-01T13:00:00.000Z"},
        "status": status,
    }
    if status == "DEVOLVIDO":
        body["horario"]["liquidacao"] = "2024-05-01T13:00:02.000Z"
    if motivo is not None:
        body["motivo"] = motivo
    return body


def cob(
    *,
    txid: str = REFERENCE_ID,
    status: str = "ATIVA",
    valor: str = "123.45",
    expiracao: int = 3600,
    pix: list[dict[str, Any]] | None = None,
    with_brcode: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "calendario": {"criacao": CREATED, "expiracao": expiracao},
        "txid": txid,
        "revisao": 0,
        "loc": {"id": 789, "location": LOCATION, "tipoCob": "cob"},
        "location": LOCATION,
        "status": status,
        "devedor": {"cpf": "12345678909", "nome": "Francisco da Silva"},
        "valor": {"original": valor},
        "chave": PIX_KEY,
        "solicitacaoPagador": "Cobrança dos serviços prestados.",
    }
    if with_brcode:
        body["pixCopiaECola"] = BRCODE
    if pix is not None:
        body["pix"] = pix
    return body


def efi_error(status: int, nome: str, mensagem: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"nome": nome, "mensagem": mensagem, **extra})


def problem(status: int, name: str, title: str, detail: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "type": f"https://pix.bcb.gov.br/api/v2/error/{name}",
            "title": title,
            "status": status,
            "detail": detail,
            **extra,
        },
        headers={"content-type": "application/problem+json"},
    )
