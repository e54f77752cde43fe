"""Receiving a notification: ids are kept whole, de-duplicated by digest, never cut to fit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from pixwave.gateways.base import InboundWebhook
from pixwave.gateways.efi import EfiConnector, EfiWebhookAuth
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.mercadopago import MercadoPagoConnector
from pixwave.inbox import service
from pixwave.inbox.repository import TABLE as INBOX
from pixwave.resources import Resources
from pixwave.worker.jobs import JobQueue
from tests.gateways.efi import pix_received
from tests.gateways.mercadopago.test_webhooks import NOW, SECRET, TS, mp_signature

HMAC = "inbox-test-hmac"


@pytest.fixture
def gateways(any_resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Resources:
    """Both connectors, able to verify notifications; jobs recorded instead of run (their
    event ids in `kicked(resources)`)."""
    mercadopago = MercadoPagoConnector(
        access_token="APP_USR-x", webhook_secret=SECRET, clock=lambda: NOW
    )
    efi = EfiConnector(
        client_id="Client_Id_x",
        client_secret="Client_Secret_x",
        pix_key="pix@example.com",
        base_url="http://efi.invalid",
        webhook_auth=EfiWebhookAuth(hmac_secret=HMAC, allowed_ips=frozenset()),
    )
    monkeypatch.setitem(any_resources.gateways, "mercadopago", mercadopago)
    monkeypatch.setitem(any_resources.gateways, "efi", efi)

    kicks: list[str] = []

    async def record(name: str, argument: str) -> None:
        kicks.append(argument)

    monkeypatch.setattr(any_resources, "jobs", JobQueue(record))
    monkeypatch.setattr(any_resources, "inbox_test_kicks", kicks, raising=False)
    return any_resources


def kicked(resources: Resources) -> list[str]:
    """The inbox rows a job was enqueued for, in order (see the `gateways` fixture)."""
    kicks: list[str] = resources.inbox_test_kicks  # type: ignore[attr-defined]
    return kicks


def efi_notification(*e2e_ids: str) -> InboundWebhook:
    """One Efí notification carrying a received Pix per end-to-end id (``pix[]``)."""
    body = {"pix": [pix_received(e2e=e2e, txid=f"tx{i:024d}") for i, e2e in enumerate(e2e_ids)]}
    return InboundWebhook(
        body=json.dumps(body).encode(), headers={}, query={"hmac": HMAC}, client_ip="127.0.0.1"
    )


def mercadopago_notification(event_id: str, data_id: str = "191606489519") -> InboundWebhook:
    """A validly signed MP notification; the signature covers data.id, not the body's id."""
    body = {"id": event_id, "type": "payment", "action": "payment.updated", "data": {"id": data_id}}
    return InboundWebhook(
        body=json.dumps(body).encode(),
        headers={"x-signature": mp_signature(SECRET, data_id, None, TS)},
        query={"data.id": data_id, "type": "payment"},
        client_ip="127.0.0.1",
    )


async def stored(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(INBOX)) or 0)


async def stored_ids(resources: Resources) -> list[str]:
    async with resources.sessionmaker() as session:
        return list((await session.scalars(select(INBOX.c.id).order_by(INBOX.c.id))).all())


class TestStoring:
    """Each event once, its job only if it is new; a new notification in two round trips."""

    @pytest.fixture
    def savepoints(self, gateways: Resources) -> Iterator[list[str]]:
        """The savepoints opened on the engine while the test runs."""
        opened: list[str] = []

        def record(_connection: Any, name: str) -> None:
            opened.append(name)

        engine = gateways.engine.sync_engine
        event.listen(engine, "savepoint", record)
        yield opened
        event.remove(engine, "savepoint", record)

    async def test_a_lone_event_is_stored_without_a_savepoint(
        self, gateways: Resources, savepoints: list[str]
    ) -> None:
        """The usual notification: one insert and the COMMIT, its job enqueued after."""
        assert await service.receive(gateways, "mercadopago", mercadopago_notification("1")) == 1
        assert savepoints == []
        assert kicked(gateways) == await stored_ids(gateways)
        assert len(kicked(gateways)) == 1

    async def test_a_redelivered_lone_event_changes_nothing(self, gateways: Resources) -> None:
        """The provider retries: no second row, no second job, and the session is usable."""
        notification = mercadopago_notification("1")
        assert await service.receive(gateways, "mercadopago", notification) == 1
        assert await service.receive(gateways, "mercadopago", notification) == 0
        assert len(kicked(gateways)) == 1
        assert kicked(gateways) == await stored_ids(gateways)
        assert await service.receive(gateways, "mercadopago", mercadopago_notification("2")) == 1
        assert len(kicked(gateways)) == 2

    async def test_several_new_events_are_stored_without_a_savepoint(
        self, gateways: Resources, savepoints: list[str]
    ) -> None:
        """A notification of several events, none seen before: stored together, one job each."""
        notification = efi_notification("E" + "1" * 31, "E" + "2" * 31)
        assert await service.receive(gateways, "efi", notification) == 2
        assert savepoints == []
        assert sorted(kicked(gateways)) == await stored_ids(gateways)
        assert len(kicked(gateways)) == 2

    async def test_a_redelivery_of_several_events_changes_nothing(
        self, gateways: Resources
    ) -> None:
        notification = efi_notification("E" + "1" * 31, "E" + "2" * 31)
        assert await service.receive(gateways, "efi", notification) == 2
        assert await service.receive(gateways, "efi", notification) == 0
        assert len(kicked(gateways)) == 2
        assert sorted(kicked(gateways)) == await stored_ids(gateways)

    async def test_several_events_keep_the_new_ones(
        self, gateways: Resources, savepoints: list[str]
    ) -> None:
        """A notification of several events, one of them stored before: the attempt to store
        them together rolls back (its jobs with it), then each goes in its own savepoint; the
        others are stored and enqueued, the old one is not enqueued again."""
        assert await service.receive(gateways, "efi", efi_notification("E" + "1" * 31)) == 1
        first = kicked(gateways)[:]
        notification = efi_notification("E" + "1" * 31, "E" + "2" * 31, "E" + "3" * 31)
        assert await service.receive(gateways, "efi", notification) == 2
        assert len(savepoints) == 3
        assert len(await stored_ids(gateways)) == 3
        assert kicked(gateways)[:1] == first
        assert sorted(kicked(gateways)) == await stored_ids(gateways)


class TestLongEventIds:
    async def test_ids_sharing_a_long_prefix_are_two_events(self, gateways: Resources) -> None:
        """Two notifications whose ids differ only after 200 characters are both stored."""
        prefix = "9" * 200
        assert (
            await service.receive(gateways, "mercadopago", mercadopago_notification(prefix + "1"))
            == 1
        )
        assert (
            await service.receive(gateways, "mercadopago", mercadopago_notification(prefix + "2"))
            == 1
        )
        assert await stored(gateways) == 2

    async def test_a_long_id_is_stored_whole(self, gateways: Resources) -> None:
        """The provider's id is kept in full, not cut to a column's width."""
        long_id = "7" * 500
        await service.receive(gateways, "mercadopago", mercadopago_notification(long_id))
        async with gateways.sessionmaker() as session:
            kept = await session.scalar(select(INBOX.c.event_id))
        assert kept == f"mercadopago:{long_id}"

    async def test_a_redelivery_of_a_long_id_changes_nothing(self, gateways: Resources) -> None:
        """The same long id twice is one event (the digest is the de-duplication key)."""
        long_id = "5" * 300
        assert (
            await service.receive(gateways, "mercadopago", mercadopago_notification(long_id)) == 1
        )
        assert (
            await service.receive(gateways, "mercadopago", mercadopago_notification(long_id)) == 0
        )
        assert await stored(gateways) == 1


class TestLongResourceIds:
    def efi_refund(self, refund_id: str) -> InboundWebhook:
        item = pix_received(
            devolucoes=[{"id": refund_id, "rtrId": "D1", "valor": "1.00", "status": "DEVOLVIDO"}]
        )
        return InboundWebhook(
            body=json.dumps({"pix": [item]}).encode(),
            headers={},
            query={"hmac": HMAC},
            client_ip="127.0.0.1",
        )

    async def test_a_resource_id_longer_than_ours_is_refused(self, gateways: Resources) -> None:
        """A refund id of 65 characters names nothing of ours: refused, nothing stored."""
        with pytest.raises(WebhookRejected) as refused:
            await service.receive(gateways, "efi", self.efi_refund("R" * 65))
        assert refused.value.reason == "invalid_body"
        assert await stored(gateways) == 0

    async def test_a_resource_id_at_the_limit_is_stored(self, gateways: Resources) -> None:
        """64 characters still fit: stored as sent."""
        assert await service.receive(gateways, "efi", self.efi_refund("R" * 64)) == 1
        async with gateways.sessionmaker() as session:
            assert await session.scalar(select(INBOX.c.resource_id)) == "R" * 64
