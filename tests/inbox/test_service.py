"""Receiving a notification: ids are kept whole, de-duplicated by digest, never cut to fit."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

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
    """Both connectors, able to verify notifications; jobs recorded instead of run."""
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

    async def record(name: str, argument: str) -> None:
        pass

    monkeypatch.setattr(any_resources, "jobs", JobQueue(record))
    return any_resources


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
