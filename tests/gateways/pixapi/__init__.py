"""A scripted bank speaking the standard API Pix behind ``httpx.MockTransport``, and payloads
shaped like the Central Bank's specification.

``FakeBank`` answers the token URL — on its own host, as banks publish it — itself (counting
the calls) and replays scripted replies for API routes; each reply is an ``httpx.Response``, an
exception to raise (a transport failure) or a callable of the request. The last reply of a
route repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx

from pixwave.gateways.pixapi import PixApiConnector, WebhookAuth
from pixwave.pix import build_dynamic_brcode
from tests.gateways.scripted import FakeClock as BaseClock
from tests.gateways.scripted import ScriptedApi

GATEWAY = "bancoa"
CLIENT_ID = "bancoa-client-7f3e"
CLIENT_SECRET = "bancoa-secret-91ab"
PIX_KEY = "71cdf9ba-c695-4e3c-b010-abb521a3f1be"
BASE_URL = "http://api.bancoa.test/pix/v2"
TOKEN_URL = "http://auth.bancoa.test/oauth2/token"
API = "/pix/v2"

REFERENCE = "txn_01JDQ8ZB4E3M5V7X9K2N6P8R0T"
#: The reference's alphanumerics: the txid and devolução id derived from it.
REFERENCE_ID = "txn01JDQ8ZB4E3M5V7X9K2N6P8R0T"
REFUND_REFERENCE = "txn_01JDQ9A1B2C3D4E5F6G7H8J9K0"
REFUND_ID = "txn01JDQ9A1B2C3D4E5F6G7H8J9K0"

E2E_ID = "E12345678202405011215abcdef12345"
RTR_ID = "D99999999202405011300abcde123456"
LOCATION = "pix.bancoa.test/qr/v2/9d36b84fc70b478fb95c12729b90ca25"
BRCODE = build_dynamic_brcode(
    location_url=LOCATION, merchant_name="PixWave Pagamentos", merchant_city="SAO PAULO"
)
PROBLEM_BASE = "https://pix.bcb.gov.br/api/v2/error/"

#: 2024-05-01 12:30 UTC: half an hour after the sample cobs were created.
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
CREATED = "2024-05-01T12:00:00.358Z"


class FakeClock(BaseClock):
    """The connector's clock, at :data:`NOW` unless told otherwise."""

    def __init__(self, now: datetime = NOW) -> None:
        super().__init__(now)


@dataclass
class FakeBank(ScriptedApi):
    """A bank's API Pix as seen through a MockTransport."""

    scope: ClassVar[str] = "cob.read cob.write pix.read pix.write webhook.read webhook.write"
    api_path: ClassVar[str] = "/pix/v2"

    def is_token_request(self, request: httpx.Request) -> bool:
        return str(request.url) == TOKEN_URL

    def not_found(self, request: httpx.Request) -> httpx.Response:
        return problem(404, "NaoEncontrado", "Não Encontrado", f"{request.url.path}")


def form_of(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def make_connector(
    bank: FakeBank,
    *,
    clock: FakeClock | None = None,
    name: str = GATEWAY,
    base_url: str = BASE_URL,
    token_url: str = TOKEN_URL,
    certificate_path: str | None = None,
    webhook_auth: WebhookAuth | None = None,
    scopes: str | None = None,
) -> PixApiConnector:
    extra: dict[str, Any] = {} if scopes is None else {"scopes": scopes}
    return PixApiConnector(
        name=name,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        pix_key=PIX_KEY,
        base_url=base_url,
        token_url=token_url,
        certificate_path=certificate_path,
        webhook_auth=webhook_auth or WebhookAuth(hmac_secret="s3cret"),
        transport=bank.transport(),
        clock=clock or FakeClock(),
        **extra,
    )


# --- payloads, as in the BCB's specification --------------------------------------------------


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
    *, id: str = REFUND_ID, valor: str = "7.89", status: str = "EM_PROCESSAMENTO"
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
        "valor": {"original": valor},
        "chave": PIX_KEY,
    }
    if with_brcode:
        body["pixCopiaECola"] = BRCODE
    if pix is not None:
        body["pix"] = pix
    return body


def problem(status: int, name: str, title: str, detail: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "type": f"{PROBLEM_BASE}{name}",
            "title": title,
            "status": status,
            "detail": detail,
            **extra,
        },
        headers={"content-type": "application/problem+json"},
    )
