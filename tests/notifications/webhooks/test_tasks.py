"""Deliveries over real HTTP: signatures, retries on the schedule, giving up, the SSRF check
at send time. The retry tick is driven with an injected clock, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from pixwave.db import table
from pixwave.notifications.webhooks import service, tasks
from pixwave.notifications.webhooks.models import WebhookAttempt
from pixwave.resources import Resources
from pixwave.sandbox.server import bind
from tests.notifications.webhooks.support import (
    DELIVER,
    Clock,
    Kicks,
    create_endpoint,
    delivery,
    endpoint_row,
    events_of_type,
    publish,
)
from tests.servers import Received, ServerThread, WebhookSink, run_sink
from tests.support import free_port

ATTEMPTS = table(WebhookAttempt)


async def attempts_of(resources: Resources, delivery_id: str) -> list[dict[str, object]]:
    async with resources.sessionmaker() as session:
        rows = await session.execute(
            select(ATTEMPTS).where(ATTEMPTS.c.delivery_id == delivery_id).order_by(ATTEMPTS.c.id)
        )
    return [dict(row._mapping) for row in rows]


def verify(secret: str, received: Received) -> object:
    return Webhook(secret).verify(received.body, received.headers)


class TestSignedDelivery:
    async def test_the_receiver_verifies_the_signature(self, any_resources: Resources) -> None:
        """A real receiver gets the Standard Webhooks headers and a body its secret verifies."""
        sink = WebhookSink(status=204)
        with run_sink(sink) as server:
            endpoint = await create_endpoint(any_resources, url=f"{server.base_url}/hooks")
            kicks = Kicks()
            event_id, _ = await publish(
                any_resources, kicks.queue, payload={"amount": 1500, "status": "succeeded"}
            )
            (delivery_id,) = kicks.of(DELIVER)
            assert await tasks.deliver_once(any_resources, delivery_id)
            (received,) = sink.wait_for(1)
        assert endpoint.secret is not None
        assert endpoint.secret.startswith("whsec_")
        body = verify(endpoint.secret, received)
        assert body == {
            "id": event_id,
            "type": "transaction.succeeded",
            "timestamp": orjson.loads(received.body)["timestamp"],
            "aggregate": orjson.loads(received.body)["aggregate"],
            "data": {"amount": 1500, "status": "succeeded"},
        }
        assert body["aggregate"]["type"] == "transaction"
        assert received.path == "/hooks"
        assert received.headers["webhook-id"] == event_id
        assert received.headers["content-type"] == "application/json"
        assert received.headers["user-agent"].startswith("PixWave")
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 43 + "=").verify(received.body, received.headers)
        row = await delivery(any_resources, delivery_id)
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("succeeded", 1, None)
        (attempt,) = await attempts_of(any_resources, delivery_id)
        assert (attempt["outcome"], attempt["status_code"]) == ("succeeded", 204)
        assert (await endpoint_row(any_resources, endpoint.id))["last_succeeded_at"] is not None

    async def test_both_secrets_sign_during_a_rotation(self, any_resources: Resources) -> None:
        """After a rotation the old and the new secret both verify, for 24 hours only."""
        sink = WebhookSink(status=200)
        with run_sink(sink) as server:
            endpoint = await create_endpoint(any_resources, url=f"{server.base_url}/hooks")
            async with any_resources.sessionmaker() as session:
                rotated = await service.rotate_secret(session, endpoint.id)
                await session.commit()
            assert rotated.secret is not None
            assert rotated.secret != endpoint.secret
            kicks = Kicks()
            await publish(any_resources, kicks.queue)
            await publish(any_resources, kicks.queue)
            first, second = kicks.of(DELIVER)
            clock = Clock()
            assert await tasks.deliver_once(any_resources, first, clock=clock)
            clock.advance(timedelta(hours=24, minutes=1).total_seconds())
            assert await tasks.deliver_once(any_resources, second, clock=clock)
            during, after = sink.wait_for(2)
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        assert endpoint.secret is not None
        verify(endpoint.secret, during)
        verify(rotated.secret, during)
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        verify(rotated.secret, after)
        with pytest.raises(WebhookVerificationError):
            verify(endpoint.secret, after)


class TestRetries:
    async def test_a_receiver_that_was_down_gets_the_event_later(
        self, any_resources: Resources
    ) -> None:
        """Connection refused, then the receiver comes up: the retry tick delivers it once due,
        with the same webhook-id."""
        port = free_port()
        endpoint = await create_endpoint(any_resources, url=f"http://127.0.0.1:{port}/hooks")
        kicks = Kicks()
        event_id, _ = await publish(any_resources, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        clock = Clock()
        assert await tasks.deliver_once(any_resources, delivery_id, clock=clock)
        row = await delivery(any_resources, delivery_id)
        first_delay = any_resources.settings.webhook_retry_delays[0]
        assert row["status"] == "pending"
        assert row["next_attempt_at"] == clock.now + timedelta(seconds=first_delay)
        (refused,) = await attempts_of(any_resources, delivery_id)
        assert (refused["outcome"], refused["status_code"]) == ("error", None)
        assert refused["error"]

        sink = WebhookSink(status=200)
        config = uvicorn.Config(sink, log_level="warning", access_log=False)
        server = ServerThread(uvicorn.Server(config), bind("127.0.0.1", port)).start()
        try:
            clock.advance(first_delay - 1)
            assert await tasks.retry_once(any_resources, clock=clock) == 0  # not due yet
            clock.advance(1)
            assert await tasks.retry_once(any_resources, clock=clock) == 1
            (received,) = sink.wait_for(1)
        finally:
            server.stop()
        assert received.headers["webhook-id"] == event_id
        assert endpoint.secret is not None
        verify(endpoint.secret, received)
        row = await delivery(any_resources, delivery_id)
        assert (row["status"], row["attempts"]) == ("succeeded", 2)
        endpoint_state = await endpoint_row(any_resources, endpoint.id)
        assert endpoint_state["failing_since"] is None

    async def test_non_2xx_is_retried_on_the_schedule_then_fails_and_disables(
        self, any_resources: Resources
    ) -> None:
        """Every answer but 2xx is a failed attempt; the next one is due after the schedule's
        next delay; the last failure fails the delivery, disables the endpoint (nothing was
        delivered to it meanwhile) with one alert, and fails its other pending deliveries."""
        sink = WebhookSink(status=503)
        delays = any_resources.settings.webhook_retry_delays
        with run_sink(sink) as server:
            endpoint = await create_endpoint(
                any_resources, url=f"{server.base_url}/hooks", event_types=["transaction.*"]
            )
            kicks = Kicks()
            await publish(any_resources, kicks.queue)
            await publish(any_resources, kicks.queue)
            exhausting, other = kicks.of(DELIVER)
            clock = Clock()
            assert await tasks.deliver_once(any_resources, exhausting, clock=clock)
            for number, delay in enumerate(delays, start=1):
                row = await delivery(any_resources, exhausting)
                assert row["status"] == "pending"
                assert row["next_attempt_at"] == clock.now + timedelta(seconds=delay)
                assert row["attempts"] == number
                clock.advance(delay)
                assert await tasks.deliver_once(any_resources, exhausting, clock=clock)
            sink.wait_for(len(delays) + 1)
        row = await delivery(any_resources, exhausting)
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == (
            "failed", len(delays) + 1, None,
        )  # fmt: skip
        attempts = await attempts_of(any_resources, exhausting)
        assert [a["status_code"] for a in attempts] == [503] * (len(delays) + 1)
        assert [a["number"] for a in attempts] == list(range(1, len(delays) + 2))
        state = await endpoint_row(any_resources, endpoint.id)
        assert state["status"] == "disabled"
        assert exhausting in str(state["disabled_reason"])
        assert (await delivery(any_resources, other))["status"] == "failed"
        (alert,) = await events_of_type(any_resources, service.ENDPOINT_DISABLED_ALERT)
        assert (alert["aggregate_type"], alert["aggregate_id"]) == ("webhook_endpoint", endpoint.id)
        assert alert["payload"]["endpoint_id"] == endpoint.id
        assert alert["payload"]["url"] == server.base_url.rstrip("/")  # no path: tokens live there
        assert "secret" not in orjson.dumps(alert["payload"]).decode()
        # Disabled endpoints get no new deliveries.
        assert (await publish(any_resources, Kicks().queue))[1] == 0

    async def test_an_endpoint_that_delivered_meanwhile_stays_enabled(
        self, any_resources: Resources
    ) -> None:
        """One event its receiver keeps refusing fails alone: a success on the endpoint since
        that delivery was queued means the endpoint is alive."""
        sink = WebhookSink(status=500)
        delays = any_resources.settings.webhook_retry_delays
        with run_sink(sink) as server:
            endpoint = await create_endpoint(any_resources, url=f"{server.base_url}/hooks")
            kicks = Kicks()
            await publish(any_resources, kicks.queue)
            (refused,) = kicks.of(DELIVER)
            clock = Clock()
            assert await tasks.deliver_once(any_resources, refused, clock=clock)
            sink.status = 200
            await publish(any_resources, kicks.queue)
            accepted = kicks.of(DELIVER)[-1]
            clock.advance(1)  # queued after the clock was read
            assert await tasks.deliver_once(any_resources, accepted, clock=clock)
            sink.status = 500
            for delay in delays:
                clock.advance(delay)
                assert await tasks.deliver_once(any_resources, refused, clock=clock)
        assert (await delivery(any_resources, refused))["status"] == "failed"
        assert (await delivery(any_resources, accepted))["status"] == "succeeded"
        assert (await endpoint_row(any_resources, endpoint.id))["status"] == "enabled"
        assert await events_of_type(any_resources, service.ENDPOINT_DISABLED_ALERT) == []

    async def test_a_delivery_is_not_sent_before_it_is_due(self, any_resources: Resources) -> None:
        """A duplicate job message for a delivery waiting on the schedule does nothing."""
        sink = WebhookSink(status=500)
        with run_sink(sink) as server:
            await create_endpoint(any_resources, url=f"{server.base_url}/hooks")
            kicks = Kicks()
            await publish(any_resources, kicks.queue)
            (delivery_id,) = kicks.of(DELIVER)
            clock = Clock()
            assert await tasks.deliver_once(any_resources, delivery_id, clock=clock)
            assert not await tasks.deliver_once(any_resources, delivery_id, clock=clock)
            sink.wait_for(1)
        assert len(sink.received) == 1


class TestAttemptRecord:
    async def test_the_answer_is_kept_short_and_redirects_are_not_followed(
        self, any_resources: Resources
    ) -> None:
        """A 302 is a failed attempt (never followed); at most 500 characters are kept."""
        await create_endpoint(any_resources, url="https://hooks.example.com/x")
        kicks = Kicks()
        await publish(any_resources, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        requests: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return httpx.Response(
                302, headers={"location": "http://169.254.169.254/"}, text="é" * 2000
            )

        await tasks.deliver_once(any_resources, delivery_id, transport=httpx.MockTransport(answer))
        (attempt,) = await attempts_of(any_resources, delivery_id)
        assert len(requests) == 1
        assert (attempt["outcome"], attempt["status_code"]) == ("failed", 302)
        assert attempt["response_excerpt"] == "é" * 500


class TestSendTimeCheck:
    @pytest.fixture
    def strict(self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
        """Private URLs refused, as in production."""
        monkeypatch.setattr(any_resources, "private_webhook_urls", False)  # decided at start
        return any_resources

    async def test_the_request_goes_to_the_address_that_was_checked(
        self, strict: Resources
    ) -> None:
        """The connection is pinned to the checked address; the name travels in Host and SNI."""
        await create_endpoint(strict, url="https://hooks.example.com:8443/in")
        kicks = Kicks()
        await publish(strict, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        seen: list[httpx.Request] = []

        async def public(host: str, port: int) -> list[str]:
            assert (host, port) == ("hooks.example.com", 8443)
            return ["93.184.215.14"]

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200)

        await tasks.deliver_once(
            strict, delivery_id, resolver=public, transport=httpx.MockTransport(answer)
        )
        (request,) = seen
        assert request.url.host == "93.184.215.14"
        assert request.url.port == 8443
        assert request.headers["host"] == "hooks.example.com:8443"
        assert request.extensions["sni_hostname"] == "hooks.example.com"

    async def test_a_name_rebound_to_loopback_gets_no_request(self, strict: Resources) -> None:
        """Public at registration, loopback at delivery (DNS rebinding): refused, retried."""
        sink = WebhookSink(status=200)
        with run_sink(sink) as server:
            await create_endpoint(strict, url=f"http://rebind.example.com:{server.port}/hooks")
            kicks = Kicks()
            await publish(strict, kicks.queue)
            (delivery_id,) = kicks.of(DELIVER)

            async def rebound(host: str, port: int) -> list[str]:
                return ["127.0.0.1"]

            assert await tasks.deliver_once(strict, delivery_id, resolver=rebound)
        assert sink.received == []
        (attempt,) = await attempts_of(strict, delivery_id)
        assert attempt["outcome"] == "error"
        assert "loopback" in str(attempt["error"])
        assert (await delivery(strict, delivery_id))["status"] == "pending"
