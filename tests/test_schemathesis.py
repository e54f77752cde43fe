"""Schemathesis against the OpenAPI document: no 500s, and every answer is one the document
describes — its status, its content type, its body's schema (problem+json errors included).

The real app runs on a loopback port in a thread (uvicorn, its in-process job queue, MariaDB,
Redis, the mounted gateway simulators), so each call is real HTTP and the engine really moves
the payments the fuzzer starts. Two tests:

* every documented operation, on its own, with generated (valid and invalid) inputs;
* a state machine following the document's links (`kit/openapi_links.py`): create a user →
  issue a token, deposit → read it → refund it, and so on. A deposit the machine creates is
  paid in the simulator straight away (the payer's step: the simulator's pay route is not part
  of the API document), so a linked refund meets a paid deposit.

Credentials are valid: an operation that documents 403 (an admin's) or names a user or wallet
in its path is called with an admin token, every other one with a user's, who has money.

Bounded for CI, and reproducible: the examples are derandomized (the same run every time).
For a longer exploration, locally::

    SCHEMATHESIS_MAX_EXAMPLES=500 SCHEMATHESIS_STATEFUL_EXAMPLES=200 \\
        .venv/bin/pytest tests/test_schemathesis.py

and ``SCHEMATHESIS_RANDOM=1`` draws new examples on each run instead of the fixed ones.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from pixwave.accounts import service as accounts
from pixwave.accounts.auth import Principal
from pixwave.accounts.models import Role
from pixwave.accounts.schemas import UserCreate
from pixwave.app import create_app
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.sandbox.embedded import internal_base_url
from pixwave.sandbox.server import bind
from pixwave.wallet import service as wallets
from pixwave.wallet.schemas import AdjustmentCreate, AdjustmentDirection
from tests.conftest import (
    TEST_DATABASE,
    assert_ledger_balances,
    fresh_mariadb,
    make_settings,
)
from tests.servers import ServerThread

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("SCHEMATHESIS_RANDOM", "") == ""

#: The fuzzer's own database: it leaves thousands of rows, and other modules wipe theirs.
DATABASE = f"{TEST_DATABASE}_fuzz"

#: Fast engine timings, so a deposit is ready and paid within the run.
ENGINE: dict[str, Any] = {
    "queue_connection": "sync",
    "sandbox_gateways": True,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "ambiguous_query_delay": 0.05,
    "gateway_read_timeout": 2.0,
    "gateway_connect_timeout": 1.0,
    "charge_poll_seconds": 0.3,
    "send_poll_seconds": 0.2,
    "sweep_interval_seconds": 0.2,
    # The fuzzer registers operator webhook endpoints on hosts that do not answer: their
    # deliveries fail fast and give up soon, instead of filling the run with waits.
    "webhook_timeout_seconds": 0.5,
    "db_pool_size": 40,
}

#: Checks left out, with why. Every other check of Schemathesis runs — among them
#: `not_a_server_error`, `status_code_conformance`, `content_type_conformance`,
#: `response_schema_conformance`, `response_headers_conformance`, `negative_data_rejection`,
#: `allow_header_conformance`, `ignored_auth`, `use_after_free`.
#:
#: `positive_data_acceptance` wants a 2xx for any input the schema allows, but a schema cannot
#: say everything the API refuses on purpose, each with its documented problem: an unknown
#: `starting_after` cursor (400 `invalid_cursor`), a Pix key that is not one (422
#: `invalid_pix_key`), money as `1.0` where the schema's `integer` allows it but centavos are
#: never floats (422), a transfer to a wallet that does not exist (404).
EXCLUDED_CHECKS = [positive_data_acceptance]

#: Defects found here whose fix belongs to code being changed elsewhere: operation → the checks
#: it skips until then, and what to fix. Remove a row with its fix; the rest of each operation
#: is still checked.
KNOWN_DEFECTS: dict[str, tuple[list[CheckFunction], str]] = {}


def excluded(case: OpenApiCase) -> list[CheckFunction]:
    """The checks a case skips: :data:`EXCLUDED_CHECKS`, its operation's known defect, and
    `negative_data_rejection` when what makes it invalid is a query parameter the operation
    does not have (an unknown parameter is ignored, as by any HTTP API)."""
    known, _ = KNOWN_DEFECTS.get(case.operation.label, ([], ""))
    checks = [*EXCLUDED_CHECKS, *known]
    documented = {parameter.name for parameter in case.operation.query}
    if set(case.query or {}) - documented:
        checks.append(negative_data_rejection)
    return checks


#: A generated case of an operation of this document.
OpenApiCase = Case[Any]

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Served:
    base_url: str
    settings: Settings
    admin: dict[str, str]
    user: dict[str, str]

    def headers(self, case: OpenApiCase) -> dict[str, str]:
        """A valid token for the operation — an admin's where it documents 403 or names a user
        or a wallet in its path, the user's otherwise — and a fresh Idempotency-Key on a POST
        (a generated key would be reused for other bodies: the documented 422, every time)."""
        responses = case.operation.definition.raw.get("responses", {})
        path = case.operation.path
        admin = "403" in responses or path.startswith(("/v1/users/", "/v1/wallets/"))
        headers = dict(self.admin if admin else self.user)
        negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
        if case.operation.method.upper() == "POST" and not negative:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers


async def _credentials(settings: Settings) -> tuple[str, str]:
    """An admin's and a funded user's tokens, written straight to the database."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            admin_id = await accounts.create_admin(
                session, name="Fuzz Operator", email="operator@fuzz.example.com"
            )
            admin = await accounts.issue_token(session, user_id=admin_id)
            user = await accounts.create_user(
                session,
                UserCreate(name="Ana Fuzz", email="ana@fuzz.example.com", document="52998224725"),
            )
            token = await accounts.issue_token(session, user_id=user.id)
            assert user.wallet_id is not None
            operator = Principal(
                token_id=admin.id, user_id=admin_id, role=Role.ADMIN, wallet_id=None
            )
            await wallets.adjust(
                session,
                operator,
                AdjustmentCreate(
                    wallet_id=user.wallet_id,
                    direction=AdjustmentDirection.CREDIT,
                    amount=1_000_000_00,
                    reason="fuzzing funds",
                ),
            )
    finally:
        await engine.dispose()
    assert admin.token is not None
    assert token.token is not None
    return admin.token, token.token


async def _audit(settings: Settings) -> None:
    resources = build_resources(settings)
    try:
        await assert_ledger_balances(resources)
    finally:
        await resources.close()


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app on a real port over its own MariaDB database, with an admin's and a user's
    tokens; the ledger must still balance when the fuzzing is over."""
    url = fresh_mariadb(DATABASE)
    sock = bind("127.0.0.1", 0)
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        port=sock.getsockname()[1],
        data_dir=tmp_path_factory.mktemp("fuzz"),
        **ENGINE,
    )
    admin, user = asyncio.run(_credentials(settings))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = ServerThread(server, sock).start()
    try:
        yield Served(
            base_url=thread.base_url,
            settings=settings,
            admin={"Authorization": f"Bearer {admin}"},
            user={"Authorization": f"Bearer {user}"},
        )
    finally:
        thread.stop()
    asyncio.run(_audit(settings))


#: The document of an app built like the one served (generating it needs no database): every
#: operation it has when the suite runs, none listed here.
schema = schemathesis.openapi.from_dict(create_app(make_settings(sandbox_gateways=True)).openapi())


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(case: OpenApiCase, served: Served) -> None:
    """Whatever an operation is sent: no 5xx, and a documented status, type and body."""
    case.call_and_validate(
        base_url=served.base_url, headers=served.headers(case), excluded_checks=excluded(case)
    )


# --- the stateful run ------------------------------------------------------------------------


def _pay(served: Served, deposit: dict[str, Any], headers: dict[str, str]) -> bool:
    """The payer's step: wait for the deposit's BR Code, pay it in its gateway's simulator, and
    wait until the deposit is credited (a failed or expired one is left as it is)."""
    base = internal_base_url(served.settings)
    with httpx.Client(base_url=served.base_url, timeout=10) as http:
        deadline = time.monotonic() + 10
        current = deposit
        while current.get("status") == "pending" and time.monotonic() < deadline:
            time.sleep(0.05)
            current = http.get(f"/v1/transactions/{deposit['id']}", headers=headers).json()
        if current.get("status") != "awaiting_payment":
            return False
        paid = http.post(
            f"{base}/{current['gateway']}/_sandbox/pay",
            json={"brcode": current["brcode"]},
            headers=served.admin,
        )
        assert paid.status_code == 200, paid.text
        while current.get("status") == "awaiting_payment" and time.monotonic() < deadline:
            time.sleep(0.05)
            current = http.get(f"/v1/transactions/{deposit['id']}", headers=headers).json()
    return current.get("status") == "succeeded"


def test_linked_operations_answer_as_documented(served: Served) -> None:
    """Chains of calls along the document's links answer as documented at every step."""
    machine = schema.as_state_machine()
    failures: list[str] = []
    paid: list[str] = []
    refunded: list[str] = []

    class Workflow(machine):  # type: ignore[valid-type, misc]  # a class built at runtime
        def setup(self) -> None:
            # The fuzzer may have disabled a gateway: each scenario starts with both on.
            with httpx.Client(base_url=served.base_url, timeout=10) as http:
                for gateway in http.get("/v1/gateways", headers=served.admin).json():
                    http.patch(
                        f"/v1/gateways/{gateway['name']}",
                        json={"enabled": True},
                        headers=served.admin,
                    )

        def refund_half(self, deposit: dict[str, Any]) -> None:
            """Deposit → paid → refund, the chain's last link, with a body the engine accepts:
            half the deposit (generated bodies mostly ask for more than it was); the other half
            is left for the refunds the machine draws along the link."""
            operation = schema["/v1/transactions/{transaction_id}/refunds"]["POST"]
            case = operation.Case(
                path_parameters={"transaction_id": deposit["id"]},
                body={"amount": deposit["amount"] // 2},
            )
            kwargs = self.get_call_kwargs(case)
            response = self.call(case, **kwargs)
            self.after_call(response, case)
            self.validate_response(response, case, **kwargs)

        def get_call_kwargs(self, case: OpenApiCase) -> dict[str, Any]:
            return {"base_url": served.base_url, "headers": served.headers(case)}

        def validate_response(
            self,
            response: Response,
            case: OpenApiCase,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            # Collected, not raised: replaying a scenario against a server that has moved on
            # is not the same scenario (Hypothesis would call it flaky and hide the failure).
            try:
                case.validate_response(
                    response,
                    additional_checks=additional_checks,
                    excluded_checks=excluded(case),
                    transport_kwargs=kwargs,
                )
            except (AssertionError, FailureGroup) as failure:
                failures.append(f"{case.operation.label}: {failure}")

        def after_call(self, response: Response, case: OpenApiCase) -> None:
            if (
                case.operation.method.upper() == "POST"
                and case.operation.path == "/v1/deposits"
                and response.status_code in (200, 202)
            ):
                deposit = response.json()
                if _pay(served, deposit, served.headers(case)):
                    paid.append(deposit["id"])
                    if deposit["amount"] >= 2:
                        self.refund_half(deposit)
            if case.operation.label.endswith("/refunds") and response.status_code in (200, 202):
                refunded.append(response.json()["id"])

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            phases=[Phase.explicit, Phase.generate],
            derandomize=DERANDOMIZE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert not failures, "\n\n".join(failures[:5])
    # The chain was walked: deposits paid in the simulator, and refunds of them accepted.
    assert paid, "no deposit was paid"
    assert refunded, "no refund was accepted"


def test_the_document_has_links_to_follow() -> None:
    """The stateful run has the chain to walk: user → token, deposit → transaction → refund."""
    raw = schema.raw_schema
    deposit = raw["paths"]["/v1/deposits"]["post"]["responses"]["202"]["links"]
    assert {"GetDeposit", "RefundDeposit"} <= set(deposit)
    assert "IssueToken" in raw["paths"]["/v1/users"]["post"]["responses"]["201"]["links"]
