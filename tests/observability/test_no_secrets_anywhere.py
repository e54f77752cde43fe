"""Secrets and personal data never leave in an output: one realistic journey, every output read.

The real app on a loopback port (MariaDB, Redis, the mounted gateway simulators, its jobs in
process, JSON logs), driven through a day of use with values known in advance: users with an
e-mail and a CPF, tokens (one revoked and used again), a deposit paid in the simulator, a refund,
withdrawals to a CPF, an e-mail and a phone Pix key, a gateway webhook carrying its secret, an
operator webhook endpoint (its signing secret and the deliveries it receives), refused calls
(bad tokens, validation errors quoting the input) and `/metrics` with its token.

Every output is then scanned: each log line, each HTTP response (status line, headers, body),
each outbox event as stored for SNS, each operator webhook delivery (headers and body), the
`/metrics` exposition.

The rule:

* a **secret** (API token, metrics token, a gateway's client secret, access token or webhook
  secret, an operator endpoint's signing secret) appears in no output but the one response that
  issues it (the token's or the endpoint's creation);
* **personal data** (CPF, e-mail, phone, a full Pix key) appears only in API responses to the
  person it belongs to or to an operator about that person (the user's record, the withdrawal's
  own transaction). Never in a log line, an event, a webhook body, a metric, or an error body
  (a validation error does not quote the document it refused).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from pixwave.accounts import service as accounts
from pixwave.app import create_app
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.gateways.efi.spec import SANDBOX_CLIENT_SECRET, SANDBOX_WEBHOOK_HMAC
from pixwave.gateways.mercadopago.spec import SANDBOX_ACCESS_TOKEN
from pixwave.notifications.models import OutboxEvent
from pixwave.observability.logging import configure_logging
from pixwave.sandbox.embedded import internal_base_url
from pixwave.sandbox.server import bind
from tests.conftest import (
    TEST_DATABASE,
    assert_ledger_balances,
    fresh_mariadb,
    make_settings,
)
from tests.servers import ServerThread, WebhookSink, run_sink

DATABASE = f"{TEST_DATABASE}_secrets"
METRICS_TOKEN = "metrics-9f2c41d07be84a55"

#: Ana's personal data, in every spelling an output could carry it.
CPF = "52998224725"
CPF_FORMATTED = "529.982.247-25"
EMAIL = "ana.personal@example.com"
PHONE = "+5511987654321"
OTHER_CPF = "11144477735"  # a withdrawal's destination key: another person's document
OTHER_EMAIL = "bruno.destination@example.com"


@dataclass
class Outputs:
    """Everything the journey made visible, by where it went."""

    responses: list[tuple[str, str]] = field(default_factory=list)  # (request, full text)
    issuing: list[str] = field(default_factory=list)  # texts of the responses issuing a secret
    owners: list[str] = field(default_factory=list)  # texts of responses about Ana, to her/op
    errors: list[str] = field(default_factory=list)  # problem+json bodies
    logs: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    metrics: str = ""


def leaks(text: str, needles: list[str]) -> list[str]:
    """The needles found in ``text`` (case-insensitive)."""
    lowered = text.lower()
    return [needle for needle in needles if needle.lower() in lowered]


def _render(response: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return f"{response.status_code}\n{headers}\n\n{response.text}"


class Journey:
    def __init__(self, base_url: str, settings: Settings, admin: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.settings = settings
        self.admin = admin
        self.outputs = Outputs()

    def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        *,
        kind: str = "plain",
        **extra: Any,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, json=body, headers=headers, **extra)
        text = _render(response)
        self.outputs.responses.append((f"{method} {path}", text))
        if kind == "issuing":
            self.outputs.issuing.append(text)
        if kind in ("issuing", "owner"):
            self.outputs.owners.append(text)
        if response.headers.get("content-type") == "application/problem+json":
            self.outputs.errors.append(response.text)
        return response

    def until(self, token: str, transaction_id: str, *statuses: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while True:
            body: dict[str, Any] = self.call(
                "GET", f"/v1/transactions/{transaction_id}", token, kind="owner"
            ).json()
            if body["status"] in statuses:
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.05)


async def _admin(settings: Settings) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            admin_id = await accounts.create_admin(session, name="Op", email="op@example.com")
            token = await accounts.issue_token(session, user_id=admin_id)
    finally:
        await engine.dispose()
    assert token.token is not None
    return token.token


async def _events_and_audit(settings: Settings) -> list[str]:
    resources = build_resources(settings)
    try:
        await assert_ledger_balances(resources)
        async with resources.sessionmaker() as session:
            rows = (await session.scalars(select(OutboxEvent))).all()
            return [json.dumps(row.payload, default=str) for row in rows]
    finally:
        await resources.close()


@pytest.fixture
def sink() -> Iterator[tuple[WebhookSink, str]]:
    receiver = WebhookSink()
    with run_sink(receiver) as thread:
        yield receiver, f"{thread.base_url}/hooks/pixwave"


def run_journey(
    redis_url: str, sink: tuple[WebhookSink, str], capfd: pytest.CaptureFixture[str]
) -> tuple[Outputs, list[str]]:
    """The day of use; returns what it produced and the secrets it met."""
    url = fresh_mariadb(DATABASE)
    sock = bind("127.0.0.1", 0)
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        port=sock.getsockname()[1],
        queue_connection="sync",
        sandbox_gateways=True,
        webhook_allow_private_urls=True,
        metrics_token=METRICS_TOKEN,
        charge_poll_seconds=0.3,
        send_poll_seconds=0.2,
        sweep_interval_seconds=0.2,
        outbox_relay_interval_seconds=0.2,
    )
    admin = asyncio.run(_admin(settings))
    configure_logging("debug", json=True)
    # As `pixwave api` runs it: uvicorn's lines go through PixWave's logging (access lines on,
    # to prove a query's secret is masked there too).
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="info", lifespan="on", log_config=None)
    )
    thread = ServerThread(server, sock).start()
    receiver, hook_url = sink
    journey = Journey(thread.base_url, settings, admin)
    secrets = [admin, METRICS_TOKEN, SANDBOX_CLIENT_SECRET, SANDBOX_WEBHOOK_HMAC]
    secrets.append(SANDBOX_ACCESS_TOKEN)
    try:
        call = journey.call
        endpoint = call(
            "POST", "/v1/webhook-endpoints", admin, {"url": hook_url}, kind="issuing"
        ).json()
        secrets.append(endpoint["secret"])
        user = call(
            "POST",
            "/v1/users",
            admin,
            {"name": "Ana Souza", "email": EMAIL, "document": CPF},
            kind="issuing",
        ).json()
        token = call("POST", f"/v1/users/{user['id']}/tokens", admin, {}, kind="issuing").json()
        ana = token["token"]
        spare = call("POST", f"/v1/users/{user['id']}/tokens", admin, {}, kind="issuing").json()
        secrets += [ana, spare["token"]]
        call("GET", "/v1/me", ana, kind="owner")
        # A deposit, paid in its gateway's simulator.
        deposit = call("POST", "/v1/deposits", ana, {"amount": 500_00}, kind="owner").json()
        ready = journey.until(ana, deposit["id"], "awaiting_payment")
        paid = journey.http.post(
            f"{internal_base_url(settings)}/{ready['gateway']}/_sandbox/pay",
            json={"brcode": ready["brcode"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert paid.status_code == 200, paid.text
        journey.until(ana, deposit["id"], "succeeded")
        refunds = f"/v1/transactions/{deposit['id']}/refunds"
        refund = call("POST", refunds, ana, {"amount": 10_00}, kind="owner").json()
        journey.until(ana, refund["id"], "succeeded", "failed")
        # Withdrawals to a CPF, an e-mail and a phone key.
        for key in (OTHER_CPF, OTHER_EMAIL, PHONE):
            sent = call(
                "POST", "/v1/withdrawals", ana, {"amount": 5_00, "pix_key": key}, kind="owner"
            ).json()
            journey.until(ana, sent["id"], "succeeded", "failed")
        # A gateway webhook with its secret in the URL, as Efí sends it.
        call("POST", f"/webhooks/efi?hmac={SANDBOX_WEBHOOK_HMAC}&ignorar=", None, {"pix": []})
        call("POST", "/webhooks/efi?hmac=wrong-guess&ignorar=", None, {"pix": []})
        # Refusals: a revoked token used again, tokens that are no tokens, input quoted back.
        call("DELETE", f"/v1/users/{user['id']}/tokens/{spare['id']}", admin)
        call("GET", "/v1/wallet", spare["token"])
        call("GET", "/v1/wallet", "pxw_not-a-real-token-at-all-0123456789")
        call("POST", "/v1/users", admin, {"name": "X", "email": EMAIL, "document": CPF})
        invalid = {"name": "Y", "email": "not-an-email", "document": CPF[:10]}
        call("POST", "/v1/users", admin, invalid)
        call("POST", "/v1/withdrawals", ana, {"amount": 1, "pix_key": CPF_FORMATTED + "0"})
        call("POST", "/v1/withdrawals", ana, {"amount": 1.5, "pix_key": OTHER_EMAIL})
        call("GET", "/v1/events", admin)
        metrics = journey.http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metrics.status_code == 200
        journey.outputs.metrics = metrics.text
        deadline = time.monotonic() + 10
        while len(receiver.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        thread.stop()
        journey.http.close()
    journey.outputs.events = asyncio.run(_events_and_audit(settings))
    journey.outputs.webhooks = [
        "\n".join(f"{k}: {v}" for k, v in r.headers.items()) + "\n\n" + r.body.decode()
        for r in receiver.received
    ]
    captured = capfd.readouterr()
    journey.outputs.logs = [line for line in (captured.out + captured.err).splitlines() if line]
    return journey.outputs, secrets


PERSONAL = [CPF, CPF_FORMATTED, EMAIL, PHONE, OTHER_CPF, OTHER_EMAIL, "Ana Souza"]


def test_no_secret_or_personal_data_in_any_output(
    redis_url: str, sink: tuple[WebhookSink, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """Secrets only in the responses issuing them; personal data only in responses to its
    owner or an operator; nothing of either in logs, events, webhooks, metrics or errors."""
    outputs, secrets = run_journey(redis_url, sink, capfd)
    # The journey really produced each kind of output.
    assert len(outputs.logs) > 50
    assert outputs.events
    assert outputs.webhooks, "no operator webhook was delivered"
    assert "pixwave_" in outputs.metrics
    assert len(outputs.errors) >= 5
    problems: list[str] = []
    for request, text in outputs.responses:
        found = leaks(text, secrets)
        if found and text not in outputs.issuing:
            problems.append(f"response to {request} carries a secret")
        found = leaks(text, PERSONAL)
        if found and text not in outputs.owners:
            problems.append(f"response to {request} carries personal data: {found}")
    for where, texts in (
        ("error body", outputs.errors),
        ("log line", outputs.logs),
        ("event", outputs.events),
        ("operator webhook", outputs.webhooks),
        ("metrics", [outputs.metrics]),
    ):
        for text in texts:
            found = leaks(text, secrets) + leaks(text, PERSONAL)
            if found:
                problems.append(f"{where} carries {found}: {text[:300]}")
    assert problems == [], "\n".join(problems)


def test_the_scanner_finds_what_is_planted() -> None:
    """An honest scanner: a secret or a CPF planted in a line is found, in any case."""
    line = json.dumps({"event": "x", "detail": f"Bearer {METRICS_TOKEN.upper()} for {CPF}"})
    assert leaks(line, [METRICS_TOKEN]) == [METRICS_TOKEN]
    assert leaks(line, PERSONAL) == [CPF]
    assert leaks("nothing here", [METRICS_TOKEN, *PERSONAL]) == []
