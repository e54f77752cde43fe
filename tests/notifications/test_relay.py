"""The outbox relay against a real SNS/SQS over HTTP (moto's server): what arrives, in what
order, to which topic, with which attributes — and what a crash or an outage does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from pixwave.db import utcnow
from pixwave.notifications import outbox, relay
from pixwave.notifications.models import OutboxEvent
from pixwave.notifications.sns import SnsPublisher
from pixwave.observability.metrics import OUTBOX_LAG_SECONDS
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from tests.aws import REGION, Aws
from tests.conftest import make_settings
from tests.factories import create_actor

pytestmark = pytest.mark.mariadb


@pytest.fixture
def sns_world(aws: str) -> Aws:
    return Aws(aws)


@pytest.fixture
async def with_sns(
    resources: Resources, sns_world: Aws, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, str]]:
    """The test's resources publish to a transactions topic and an alerts topic."""
    events_topic = sns_world.topic("pixwave-transactions")
    alerts_topic = sns_world.topic("pixwave-alerts")
    settings = make_settings(
        aws_sns_topic_arn=events_topic,
        aws_sns_alerts_topic_arn=alerts_topic,
        aws_endpoint_url=sns_world.endpoint,
        aws_default_region=REGION,
    )
    publisher = SnsPublisher(settings)
    monkeypatch.setattr(resources, "sns", publisher)
    yield events_topic, alerts_topic
    await publisher.close()


async def _append(resources: Resources, *events: tuple[str, str, dict[str, Any]]) -> list[str]:
    """Write outbox events the way services do (aggregate id, type, payload), one commit each."""
    ids = []
    for aggregate_id, event_type, payload in events:
        async with resources.sessionmaker() as session:
            ids.append(
                await outbox.append(
                    session,
                    event_type=event_type,
                    aggregate_type="transaction",
                    aggregate_id=aggregate_id,
                    payload={"transaction_id": aggregate_id, **payload},
                )
            )
            await flush_and_commit(session)
    return ids


async def _unpublished(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        count = await session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None)))
    return int(count or 0)


async def test_events_reach_the_topic_in_order_with_attributes(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str]
) -> None:
    events_topic, alerts_topic = with_sns
    everything = sns_world.subscribe(events_topic, "all-events")
    alerts = sns_world.subscribe(alerts_topic, "alerts")
    ids = await _append(
        resources,
        ("txn_A", "transaction.pending", {"type": "cash_in", "gateway": None}),
        ("txn_B", "transaction.pending", {"type": "cash_out", "gateway": None}),
        ("txn_A", "transaction.processing", {"type": "cash_in", "gateway": "efi"}),
        ("txn_A", "transaction.succeeded", {"type": "cash_in", "gateway": "efi"}),
    )

    round_ = await relay.relay(resources)

    assert (round_.published, round_.failed) == (4, 0)
    received = sns_world.drain(everything)
    assert sorted(m["id"] for m in received) == sorted(ids)
    assert [m["type"] for m in received if m["aggregate"]["id"] == "txn_A"] == [
        "transaction.pending",
        "transaction.processing",
        "transaction.succeeded",
    ]
    last = received[-1]
    assert last["data"]["transaction_id"] == "txn_A"
    assert last["attributes"] == {
        "event_type": "transaction.succeeded",
        "aggregate_type": "transaction",
        "transaction_type": "cash_in",
        "gateway": "efi",
    }
    assert "gateway" not in received[0]["attributes"]  # absent, not an empty string
    assert sns_world.drain(alerts) == []
    assert await _unpublished(resources) == 0
    assert (await relay.relay(resources)).published == 0  # nothing twice


async def test_subscription_filters_on_the_attributes(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str]
) -> None:
    events_topic, _ = with_sns
    settled = sns_world.subscribe(
        events_topic,
        "settled-withdrawals",
        {"event_type": ["transaction.succeeded"], "transaction_type": ["cash_out"]},
    )
    efi_only = sns_world.subscribe(events_topic, "efi-only", {"gateway": ["efi"]})
    await _append(
        resources,
        ("txn_A", "transaction.succeeded", {"type": "cash_in", "gateway": "efi"}),
        ("txn_B", "transaction.succeeded", {"type": "cash_out", "gateway": "mercadopago"}),
        ("txn_C", "transaction.failed", {"type": "cash_out", "gateway": "efi"}),
    )

    await relay.relay(resources)

    assert [m["aggregate"]["id"] for m in sns_world.drain(settled)] == ["txn_B"]
    # Two aggregates: order is promised within one (see above), not across them.
    assert sorted(m["aggregate"]["id"] for m in sns_world.drain(efi_only)) == ["txn_A", "txn_C"]


async def test_alerts_go_to_the_alerts_topic(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str]
) -> None:
    events_topic, alerts_topic = with_sns
    everything = sns_world.subscribe(events_topic, "all-events")
    alerts = sns_world.subscribe(alerts_topic, "alerts")
    await _append(
        resources,
        ("txn_A", "transaction.failed", {"type": "cash_in", "gateway": None}),
        ("txn_A", "alert.all_gateways_unavailable", {"type": "cash_in", "gateway": None}),
    )

    await relay.relay(resources)

    assert [m["type"] for m in sns_world.drain(everything)] == ["transaction.failed"]
    got = sns_world.drain(alerts)
    assert [m["type"] for m in got] == ["alert.all_gateways_unavailable"]
    assert got[0]["attributes"]["event_type"] == "alert.all_gateways_unavailable"


async def test_a_crash_between_publishing_and_marking_duplicates_never_loses(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events_topic, _ = with_sns
    queue = sns_world.subscribe(events_topic, "all-events")
    ids = await _append(
        resources,
        ("txn_A", "transaction.pending", {"type": "cash_in"}),
        ("txn_B", "transaction.pending", {"type": "cash_in"}),
    )
    real_mark = relay._mark

    async def crash(*_: Any) -> None:
        raise RuntimeError("the relay process died here")

    monkeypatch.setattr(relay, "_mark", crash)
    with pytest.raises(RuntimeError):
        await relay.relay(resources)
    assert await _unpublished(resources) == 2
    monkeypatch.setattr(relay, "_mark", real_mark)

    await relay.relay(resources)

    received = [m["id"] for m in sns_world.drain(queue)]
    assert sorted(received) == sorted(ids + ids)  # each twice, same ids: subscribers de-duplicate
    assert await _unpublished(resources) == 0


async def test_an_sns_outage_delays_and_loses_nothing_then_alerts_on_lag(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    events_topic, alerts_topic = with_sns
    queue = sns_world.subscribe(events_topic, "all-events")
    alerts = sns_world.subscribe(alerts_topic, "alerts")
    working = resources.sns
    assert working is not None
    down = SnsPublisher(
        make_settings(
            aws_sns_topic_arn=events_topic,
            aws_endpoint_url="http://127.0.0.1:9",  # nothing listens: connection refused
            aws_default_region=REGION,
            aws_timeout_seconds=0.5,
        )
    )
    monkeypatch.setattr(resources, "sns", down)
    monkeypatch.setattr(resources.settings, "outbox_lag_alert_seconds", 30.0)
    ids = await _append(
        resources,
        ("txn_A", "transaction.pending", {"type": "cash_in"}),
        ("txn_A", "transaction.processing", {"type": "cash_in"}),
        ("txn_B", "transaction.pending", {"type": "cash_in"}),
    )
    async with resources.sessionmaker() as session:  # written a while ago
        await session.execute(
            update(OutboxEvent).values(created_at=utcnow() - timedelta(seconds=120))
        )
        await session.commit()

    failed = await relay.relay(resources)

    assert (failed.published, failed.failed) == (0, 3)
    assert failed.lag_seconds >= 120
    assert OUTBOX_LAG_SECONDS._value.get() >= 120
    assert await _unpublished(resources) == 4  # the three, and the lag alert itself
    await down.close()
    monkeypatch.setattr(resources, "sns", working)

    recovered = await relay.relay(resources)

    assert recovered.published == 4
    arrived = sns_world.drain(queue)
    assert sorted(m["id"] for m in arrived) == sorted(ids)  # every one, once
    assert [m["id"] for m in arrived if m["aggregate"]["id"] == "txn_A"] == ids[:2]  # in order
    lagging = sns_world.drain(alerts)
    assert [m["type"] for m in lagging] == ["alert.outbox_lagging"]
    assert lagging[0]["data"]["lag_seconds"] >= 120
    assert recovered.lag_seconds == 0
    # Still lagging later would not alert again within the hour (one alert per spell).
    await _append(resources, ("txn_C", "transaction.pending", {"type": "cash_in"}))
    monkeypatch.setattr(resources, "sns", down)
    async with resources.sessionmaker() as session:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.published_at.is_(None))
            .values(created_at=utcnow() - timedelta(seconds=120))
        )
        await session.commit()
    await relay.relay(resources)
    assert await _unpublished(resources) == 1


async def test_one_relay_at_a_time(resources: Resources) -> None:
    """A second relay while one holds the lock does nothing (it would break the order)."""
    await _append(resources, ("txn_A", "transaction.pending", {"type": "cash_in"}))
    token = await resources.locks.acquire(relay.LOCK, 5)
    assert token is not None
    try:
        assert (await relay.relay(resources)).published == 0
        assert await _unpublished(resources) == 1
    finally:
        await resources.locks.release(relay.LOCK, token)
    assert (await relay.relay(resources)).published == 1


async def test_relayed_events_are_purged_after_the_retention(resources: Resources) -> None:
    await _append(
        resources,
        ("txn_A", "transaction.pending", {"type": "cash_in"}),
        ("txn_B", "transaction.pending", {"type": "cash_in"}),
    )
    await relay.relay(resources)
    await _append(resources, ("txn_C", "transaction.pending", {"type": "cash_in"}))  # unpublished
    retention = timedelta(hours=resources.settings.outbox_retention_hours)

    assert await relay.purge(resources, utcnow() + retention - timedelta(minutes=1)) == 0
    assert await relay.purge(resources, utcnow() + retention + timedelta(minutes=1)) == 2

    async with resources.sessionmaker() as session:
        left = list((await session.execute(select(OutboxEvent.aggregate_id))).scalars())
    assert left == ["txn_C"]  # never an event that has not gone out


async def test_a_deposit_reaches_a_subscribed_queue(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str], client: httpx.AsyncClient
) -> None:
    """A status change made through the API arrives on SQS once the relay runs."""
    events_topic, _ = with_sns
    queue = sns_world.subscribe(events_topic, "deposits", {"transaction_type": ["cash_in"]})
    actor = await create_actor(resources)
    response = await client.post("/v1/deposits", json={"amount": 12_34}, headers=actor.headers())
    assert response.status_code == 202, response.text

    await relay.relay(resources)

    received = sns_world.drain(queue)
    assert received[0]["type"] == "transaction.pending"
    assert received[0]["data"]["transaction_id"] == response.json()["id"]
    assert received[0]["data"]["amount"] == 12_34


async def test_personal_data_in_a_payload_leaves_masked(
    resources: Resources, sns_world: Aws, with_sns: tuple[str, str]
) -> None:
    """A gateway's refusal text quoting a CPF and a Pix e-mail key: masked on the way out;
    ids and amounts untouched."""
    events_topic, _ = with_sns
    queue = sns_world.subscribe(events_topic, "all-events")
    await _append(
        resources,
        (
            "txn_A",
            "transaction.failed",
            {
                "type": "cash_out",
                "amount": 12_345,
                "wallet_id": "wal_01JD3Q2ZV8K9M4N6P7R8S9T0VW",
                "failure_message": "chave maria.silva@example.com do CPF 123.456.789-09 recusada",
            },
        ),
    )

    await relay.relay(resources)

    (message,) = sns_world.drain(queue)
    text = json.dumps(message)
    assert "123.456.789-09" not in text
    assert "maria.silva@example.com" not in text
    assert message["data"]["amount"] == 12_345
    assert message["data"]["wallet_id"] == "wal_01JD3Q2ZV8K9M4N6P7R8S9T0VW"
    assert message["data"]["failure_message"].endswith("recusada")


async def test_a_slow_sns_is_cut_off_within_the_lock(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round stops publishing well within its lock: what SNS had not taken stays unpublished
    for the next round (never published by two relays at once), and the order holds."""

    class SlowFor:
        def __init__(self, slow: str) -> None:
            self.slow = slow
            self.published: list[str] = []

        async def publish(self, event: dict[str, Any]) -> str:
            if event["aggregate_id"] == self.slow:
                await asyncio.sleep(5)
            self.published.append(event["id"])
            return "msg"

    sns = SlowFor("txn_B")
    monkeypatch.setattr(resources, "sns", sns)
    monkeypatch.setattr(relay, "PUBLISH_SECONDS", 0.3)
    fast, slow_first, slow_second = await _append(
        resources,
        ("txn_A", "transaction.pending", {"type": "cash_in"}),
        ("txn_B", "transaction.pending", {"type": "cash_in"}),
        ("txn_B", "transaction.processing", {"type": "cash_in"}),
    )

    round_ = await relay.relay(resources)

    assert (round_.published, round_.failed) == (1, 2)
    assert sns.published == [fast]
    assert await _unpublished(resources) == 2
    sns.slow = "nobody"
    assert (await relay.relay(resources)).published == 2
    assert sns.published == [fast, slow_first, slow_second]
