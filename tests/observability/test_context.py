"""Request and job context: the ids that let one payment be followed across processes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from taskiq import InMemoryBroker

from pixwave.config import Settings
from pixwave.observability.context import (
    JobLogContext,
    RequestContext,
    current_request_id,
    safe_request_id,
)
from pixwave.observability.logging import CHATTY_AT_INFO, configure_logging

TXN = "txn_01JC7Z8X9Y0ABCDEFGHJKMNPQR"


@pytest.fixture(autouse=True)
def json_logs() -> Iterator[None]:
    names = [*CHATTY_AT_INFO, ""]
    before = {name: logging.getLogger(name).level for name in names}
    configure_logging("info", json=True, settings=Settings(_env_file=None))
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
    structlog.configure(cache_logger_on_first_use=False)
    structlog.contextvars.clear_contextvars()


class World:
    """A tiny app and an in-memory broker wired the way PixWave wires them."""

    def __init__(self) -> None:
        self.broker = InMemoryBroker()
        self.broker.add_middlewares(JobLogContext())
        log = structlog.get_logger("pixwave.test")

        async def advance(argument: str) -> None:
            log.info("job.ran")
            if argument == "txn_fail":
                raise RuntimeError("job failed")

        self.task = self.broker.register_task(advance, task_name="payments.advance")
        app = FastAPI()

        @app.post("/pay")
        async def pay() -> dict[str, Any]:
            log.info("api.paid")
            await self.task.kiq(TXN)
            return {"request_id": current_request_id()}

        app.add_middleware(RequestContext)
        self.app = app
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    await w.broker.startup()
    yield w
    await w.client.aclose()
    await w.broker.shutdown()


def _lines(out: str) -> dict[str, dict[str, Any]]:
    parsed = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    return {line["message"]: line for line in parsed}


class TestRequestId:
    async def test_a_request_gets_an_id_on_its_lines_and_its_response(
        self, world: World, capsys: pytest.CaptureFixture[str]
    ) -> None:
        response = await world.client.post("/pay")
        await world.broker.wait_all()
        request_id = response.headers["X-Request-ID"]
        assert len(request_id) == 32
        assert response.json() == {"request_id": request_id}
        lines = _lines(capsys.readouterr().out)
        assert lines["api.paid"]["http"]["request"]["id"] == request_id

    async def test_a_safe_incoming_id_is_kept(self, world: World) -> None:
        response = await world.client.post("/pay", headers={"X-Request-ID": "lb-7f3a.42_x"})
        assert response.headers["X-Request-ID"] == "lb-7f3a.42_x"

    @pytest.mark.parametrize("bad", ["a" * 65, "id with spaces", "x;rm", "ção".encode(), ""])
    async def test_an_unsafe_incoming_id_is_replaced(self, world: World, bad: str | bytes) -> None:
        value = bad if isinstance(bad, bytes) else bad.encode()
        response = await world.client.post("/pay", headers=[(b"X-Request-ID", value)])
        echoed = response.headers.get_list("X-Request-ID")
        assert len(echoed) == 1
        assert echoed[0] != bad
        assert safe_request_id(echoed[0]) == echoed[0]

    async def test_nothing_is_left_bound_after_the_request(self, world: World) -> None:
        """The ASGI transport runs the app in this very task: a leak would show here."""
        await world.client.post("/pay")
        assert current_request_id() is None
        assert structlog.contextvars.get_contextvars() == {}


class TestJobContext:
    async def test_a_job_carries_its_name_task_transaction_and_request(
        self, world: World, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The request id travels to the job as a message label."""
        response = await world.client.post("/pay")
        await world.broker.wait_all()
        job = _lines(capsys.readouterr().out)["job.ran"]
        assert job["pixwave"]["job"] == "payments.advance"
        assert job["pixwave"]["transaction_id"] == TXN
        assert job["pixwave"]["task_id"]
        assert job["http"]["request"]["id"] == response.headers["X-Request-ID"]

    async def test_a_job_kicked_outside_a_request_has_no_request_id(
        self, world: World, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await world.task.kiq("")
        await world.broker.wait_all()
        job = _lines(capsys.readouterr().out)["job.ran"]
        assert "http" not in job
        assert "transaction_id" not in job["pixwave"]

    async def test_a_failing_job_logs_its_error_with_its_context(
        self, world: World, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """taskiq's own error line is inside the job's context, then the context is gone."""
        await world.task.kiq("txn_fail")
        await world.broker.wait_all()
        lines = _lines(capsys.readouterr().out)
        error = lines["Exception found while executing function."]
        assert error["pixwave"]["transaction_id"] == "txn_fail"
        assert error["error"]["type"] == "RuntimeError"
        assert structlog.contextvars.get_contextvars() == {}

    async def test_an_unsafe_label_is_not_bound(
        self, world: World, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await world.task.kicker().with_labels(request_id="bad id\n").kiq(TXN)
        await world.broker.wait_all()
        job = _lines(capsys.readouterr().out)["job.ran"]
        assert "http" not in job
