"""The standard's callback, as a bank posts it: authenticated like Efí's, parsed per instance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pixwave.gateways.base import InboundWebhook, WebhookKind
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.pixapi import PixApiConnector, WebhookAuth
from tests.gateways.pixapi import (
    E2E_ID,
    REFERENCE_ID,
    FakeBank,
    devolucao,
    make_connector,
    pix_received,
)

SECRET = "9f8e7d6c5b4a"
BANK_IP = "198.51.100.7"


def webhook(
    body: Any,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    client_ip: str = BANK_IP,
) -> InboundWebhook:
    return InboundWebhook(
        body=json.dumps(body).encode(),
        headers=headers or {},
        query={"hmac": SECRET, "ignorar": "/pix"} if query is None else query,
        client_ip=client_ip,
    )


def connector(auth: WebhookAuth | None = None, name: str = "bancoa") -> PixApiConnector:
    return make_connector(
        FakeBank(), name=name, webhook_auth=auth or WebhookAuth(hmac_secret=SECRET)
    )


class TestParse:
    def test_a_received_pix_names_the_charge(self) -> None:
        """A Pix with a txid is a charge event, its id stable per endToEndId and instance."""
        (event,) = connector().verify_webhook(webhook({"pix": [pix_received()]}))
        assert (event.gateway, event.kind, event.resource_id) == (
            "bancoa",
            WebhookKind.CHARGE,
            REFERENCE_ID,
        )
        assert event.event_id == f"bancoa:pix:{E2E_ID}"
        assert event.data == {"end_to_end_id": E2E_ID, "amount": "12345"}

    def test_two_banks_never_share_an_event_id(self) -> None:
        """The same notification at two instances gives two events."""
        body = {"pix": [pix_received()]}
        (a,) = connector(name="bancoa").verify_webhook(webhook(body))
        (b,) = connector(name="bancob").verify_webhook(webhook(body))
        assert a.event_id != b.event_id

    def test_a_refund_notice_is_a_refund_event(self) -> None:
        """devolucoes[] in a final state: one refund event each."""
        item = pix_received(devolucoes=[devolucao(status="DEVOLVIDO")])
        (event,) = connector().verify_webhook(webhook({"pix": [item]}))
        assert (event.kind, event.data["status"]) == (WebhookKind.REFUND, "DEVOLVIDO")

    def test_a_broken_item_rejects_the_batch(self) -> None:
        """One bad item: the whole body is refused."""
        body = {"pix": [pix_received(), {"txid": "x"}]}
        with pytest.raises(WebhookRejected, match=r"pix\[1\]\.endToEndId"):
            connector().verify_webhook(webhook(body))

    def test_a_deeply_nested_body_is_invalid_not_a_crash(self) -> None:
        """50,000 brackets fit the body limit; the parser's recursion limit is a refusal."""
        request = InboundWebhook(
            body=b"[" * 50_000, headers={}, query={"hmac": SECRET}, client_ip=BANK_IP
        )
        with pytest.raises(WebhookRejected) as refused:
            connector().verify_webhook(request)
        assert refused.value.reason == "invalid_body"


class TestAuthentication:
    def test_the_secret_stays_out_of_repr(self) -> None:
        """A traceback or log line that shows the configuration does not show the secret."""
        assert SECRET not in repr(WebhookAuth(hmac_secret=SECRET))

    def test_a_wrong_secret_is_refused(self) -> None:
        """A mismatched ?hmac= is refused, naming the bank."""
        with pytest.raises(WebhookRejected, match="bancoa webhook rejected") as caught:
            connector().verify_webhook(webhook({"pix": []}, query={"hmac": "guess"}))
        assert caught.value.reason == "hmac_mismatch"

    def test_allowed_addresses_are_checked(self) -> None:
        """With source addresses configured, another address is refused."""
        auth = WebhookAuth(hmac_secret=SECRET, allowed_ips=frozenset({"203.0.113.0/24"}))
        with pytest.raises(WebhookRejected) as caught:
            connector(auth).verify_webhook(webhook({"pix": []}))
        assert caught.value.reason == "ip_not_allowed"
        assert connector(auth).verify_webhook(webhook({"pix": []}, client_ip="203.0.113.9")) == []

    def test_no_ip_check_by_default(self) -> None:
        """Unlike Efí, a bank has no published address by default: the secret suffices."""
        assert WebhookAuth().allowed_ips == frozenset()
        assert connector().verify_webhook(webhook({"pix": []}, client_ip="192.0.2.1")) == []

    def test_the_ingress_mtls_header_when_opted_in(self) -> None:
        """An operator-named header set by the ingress authenticates without a secret."""
        auth = WebhookAuth(mtls_header="x-ssl-client-verify")
        request = webhook({"pix": []}, query={}, headers={"x-ssl-client-verify": "SUCCESS"})
        assert connector(auth).verify_webhook(request) == []
        forged = webhook({"pix": []}, query={}, headers={"x-ssl-client-verify": "NONE"})
        with pytest.raises(WebhookRejected):
            connector(auth).verify_webhook(forged)
