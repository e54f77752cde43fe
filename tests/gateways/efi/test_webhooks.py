"""Inbound Efí webhooks: mTLS-header or hmac+IP authentication, and batch parsing."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from pixwave.gateways.base import TRUSTED_PAYMENT, InboundWebhook, WebhookKind
from pixwave.gateways.efi import EfiWebhookAuth
from pixwave.gateways.efi.spec import EFI, EfiSettings
from pixwave.gateways.efi.webhooks import authenticate, parse_webhook, verify_webhook
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.http import Timeouts
from pixwave.gateways.spec import Common, Instance
from tests.gateways.efi import FakeEfi, make_connector

SECRET = "9f8e7d6c5b4a"
EFI_IP = "34.193.116.226"
HMAC_ONLY = EfiWebhookAuth(mtls_header=None, hmac_secret=SECRET)
MTLS_ONLY = EfiWebhookAuth(mtls_header="x-ssl-client-verify")

#: Efí's documented samples (§2.7), with their short endToEndIds.
RECEIVED = {
    "endToEndId": "E1803615022211340s08793XPJ",
    "txid": "fc9a43k6ff384ryP5f41719",
    "chave": "2c3c7441-b91e-4982-3c25-6105581e18ae",
    "valor": "0.01",
    "horario": "2020-12-21T13:40:34.000Z",
    "infoPagador": "pagando o pix",
    "gnExtras": {
        "pagador": {"nome": "Consultoria Efi", "cnpj": "09089356000118", "codigoBanco": "00416968"},
        "tarifa": "0.01",
    },
}
REFUNDED = {
    **RECEIVED,
    "devolucoes": [
        {
            "id": "txn01JDQ9A1B2C3D4E5F6G7H8J9K0",
            "rtrId": "D09089356202012211345abcde123456",
            "valor": "0.01",
            "horario": {"solicitacao": "2020-12-21T13:45:00.000Z"},
            "status": "DEVOLVIDO",
        },
        {
            "id": "txn01JDQ9B1B2C3D4E5F6G7H8J9K0",
            "rtrId": "D09089356202012211346abcde654321",
            "valor": "12.30",
            "horario": {"solicitacao": "2020-12-21T13:46:00.000Z"},
            "status": "NAO_REALIZADO",
            "motivo": "Saldo insuficiente para realizar a devolução.",
        },
    ],
}
SENT = {
    "endToEndId": "E090893562021030PIf25a7868",
    "chave": "2c3c7441-b91e-4982-3c25-6105581e18ae",
    "tipo": "SOLICITACAO",
    "status": "REALIZADO",
    "valor": "0.01",
    "horario": "2021-03-04T20:39:47.000Z",
    "gnExtras": {"idEnvio": "123ABC"},
}
SENT_REJECTED = {
    **SENT,
    "status": "NAO_REALIZADO",
    "horario": None,
    "gnExtras": {
        "idEnvio": "123ABC",
        "erro": {
            "codigo": "AC03",
            "origem": "PSP do usuário recebedor",
            "motivo": "Conta inexistente",
        },
    },
}


def webhook(
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    client_ip: str | None = EFI_IP,
) -> InboundWebhook:
    raw = body if isinstance(body, bytes) else json.dumps(body or {"pix": [RECEIVED]}).encode()
    return InboundWebhook(body=raw, headers=headers or {}, query=query or {}, client_ip=client_ip)


def reason_of(auth: EfiWebhookAuth, request: InboundWebhook) -> str:
    with pytest.raises(WebhookRejected) as caught:
        authenticate(auth, request)
    return caught.value.reason


class TestMtlsHeader:
    def test_verified_header_passes(self) -> None:
        """The ingress's x-ssl-client-verify: SUCCESS authenticates the request."""
        authenticate(MTLS_ONLY, webhook(headers={"x-ssl-client-verify": "SUCCESS"}))

    def test_tampered_header_value_fails(self) -> None:
        """Any other value of the header (a failed verification) is mtls_not_verified."""
        request = webhook(headers={"x-ssl-client-verify": "FAILED:self-signed certificate"})
        assert reason_of(MTLS_ONLY, request) == "mtls_not_verified"

    def test_missing_header_fails(self) -> None:
        """Without the header and without an hmac secret the request is mtls_not_verified."""
        assert reason_of(MTLS_ONLY, webhook()) == "mtls_not_verified"

    def test_configured_header_name_is_case_insensitive(self) -> None:
        """A header name configured in mixed case matches the lower-case request headers."""
        auth = EfiWebhookAuth(mtls_header="X-Client-Verified", mtls_header_value="yes")
        authenticate(auth, webhook(headers={"x-client-verified": "yes"}))

    def test_rejection_message_names_the_header(self) -> None:
        """The rejection says which header was wrong and what it held."""
        request = webhook(headers={"x-ssl-client-verify": "NONE"})
        with pytest.raises(WebhookRejected, match=r"x-ssl-client-verify.*'NONE'.*'SUCCESS'"):
            authenticate(MTLS_ONLY, request)


class TestHmacAndAddress:
    def test_secret_from_an_allowed_address_passes(self) -> None:
        """The right ?hmac= from Efí's address authenticates the request."""
        authenticate(HMAC_ONLY, webhook(query={"hmac": SECRET, "ignorar": "/pix"}))

    def test_secret_from_another_address_fails(self) -> None:
        """The right secret from an address not allow-listed is ip_not_allowed."""
        request = webhook(query={"hmac": SECRET}, client_ip="203.0.113.9")
        assert reason_of(HMAC_ONLY, request) == "ip_not_allowed"

    def test_unknown_address_fails(self) -> None:
        """A request whose client address is unknown is ip_not_allowed."""
        request = webhook(query={"hmac": SECRET}, client_ip=None)
        assert reason_of(HMAC_ONLY, request) == "ip_not_allowed"

    def test_wrong_secret_fails(self) -> None:
        """A different ?hmac= value is hmac_mismatch."""
        request = webhook(query={"hmac": SECRET + "x"})
        assert reason_of(HMAC_ONLY, request) == "hmac_mismatch"

    def test_missing_secret_fails(self) -> None:
        """No ?hmac= at all is hmac_missing."""
        assert reason_of(HMAC_ONLY, webhook(query={"ignorar": "/pix"})) == "hmac_missing"

    def test_empty_allow_list_skips_the_address_check(self) -> None:
        """With no allowed addresses configured, the secret alone authenticates."""
        auth = EfiWebhookAuth(mtls_header=None, hmac_secret=SECRET, allowed_ips=frozenset())
        authenticate(auth, webhook(query={"hmac": SECRET}, client_ip="127.0.0.1"))

    def test_ipv4_mapped_address_matches(self) -> None:
        """An IPv4-mapped IPv6 client address matches its IPv4 allow-list entry."""
        authenticate(HMAC_ONLY, webhook(query={"hmac": SECRET}, client_ip=f"::ffff:{EFI_IP}"))

    def test_network_entry_matches(self) -> None:
        """An allow-list entry may be a CIDR network."""
        auth = EfiWebhookAuth(
            mtls_header=None, hmac_secret=SECRET, allowed_ips=frozenset({"34.193.116.0/24"})
        )
        authenticate(auth, webhook(query={"hmac": SECRET}, client_ip="34.193.116.7"))


class TestNoHeaderIsTrustedByDefault:
    """Trusting a proxy header is an opt-in: by default a forged one proves nothing."""

    FORGED: ClassVar[dict[str, str]] = {"x-ssl-client-verify": "SUCCESS"}

    def test_the_default_names_no_header(self) -> None:
        """EfiWebhookAuth() and EfiSettings() trust no header until the operator names one."""
        assert EfiWebhookAuth().mtls_header is None
        assert EfiSettings(_env_file=None).webhook_mtls_header is None

    def test_forged_header_without_secret_is_refused(self) -> None:
        """hmac + IP configured: a forged mTLS header with no ?hmac= is hmac_missing."""
        request = webhook(headers=self.FORGED, client_ip="203.0.113.9")
        assert reason_of(EfiWebhookAuth(hmac_secret=SECRET), request) == "hmac_missing"

    def test_forged_header_with_wrong_secret_is_refused(self) -> None:
        """hmac + IP configured: a forged header does not excuse a wrong ?hmac=."""
        request = webhook(headers=self.FORGED, query={"hmac": "guess"})
        assert reason_of(EfiWebhookAuth(hmac_secret=SECRET), request) == "hmac_mismatch"

    def test_forged_header_does_not_lift_the_address_check(self) -> None:
        """hmac + IP configured: the right secret from a foreign address is still refused."""
        request = webhook(headers=self.FORGED, query={"hmac": SECRET}, client_ip="203.0.113.9")
        assert reason_of(EfiWebhookAuth(hmac_secret=SECRET), request) == "ip_not_allowed"

    def test_without_the_header_the_secret_from_efi_passes(self) -> None:
        """hmac + IP configured, no header at all: Efí's own request authenticates."""
        authenticate(EfiWebhookAuth(hmac_secret=SECRET), webhook(query={"hmac": SECRET}))

    def test_nothing_configured_refuses_even_the_header(self) -> None:
        """With no secret and no header configured nothing authenticates, header or not."""
        reason = reason_of(EfiWebhookAuth(), webhook(headers=self.FORGED))
        assert reason == "no_authentication_configured"


class TestEitherScheme:
    BOTH = EfiWebhookAuth(mtls_header="x-ssl-client-verify", hmac_secret=SECRET)

    def test_secret_suffices_when_both_are_configured(self) -> None:
        """With both schemes configured, the hmac path alone authenticates."""
        authenticate(self.BOTH, webhook(query={"hmac": SECRET}))

    def test_header_suffices_when_both_are_configured(self) -> None:
        """With both schemes configured, the mTLS header alone authenticates, from any address."""
        request = webhook(headers={"x-ssl-client-verify": "SUCCESS"}, client_ip="10.0.0.5")
        authenticate(self.BOTH, request)

    def test_failed_header_without_secret_reports_mtls(self) -> None:
        """A failed mTLS header and no ?hmac= is reported as mtls_not_verified."""
        request = webhook(headers={"x-ssl-client-verify": "FAILED"})
        assert reason_of(self.BOTH, request) == "mtls_not_verified"

    def test_failed_header_with_wrong_secret_reports_the_secret(self) -> None:
        """A failed mTLS header and a wrong ?hmac= is hmac_mismatch."""
        request = webhook(headers={"x-ssl-client-verify": "FAILED"}, query={"hmac": "nope"})
        assert reason_of(self.BOTH, request) == "hmac_mismatch"

    def test_nothing_configured_fails(self) -> None:
        """With neither scheme configured every request is no_authentication_configured."""
        auth = EfiWebhookAuth(mtls_header=None, hmac_secret=None)
        request = webhook(headers={"x-ssl-client-verify": "SUCCESS"}, query={"hmac": SECRET})
        assert reason_of(auth, request) == "no_authentication_configured"


class TestTrustedPayments:
    """``EFI_WEBHOOK_TRUST_MTLS``: only a received Pix that came over verified mTLS, with the
    operator's opt-in, is marked for crediting from the notification itself."""

    TRUSTING = EfiWebhookAuth(
        mtls_header="x-ssl-client-verify", hmac_secret=SECRET, trust_mtls_payments=True
    )
    BODY: ClassVar[dict[str, Any]] = {"pix": [RECEIVED, REFUNDED, SENT]}

    def trusted(self, auth: EfiWebhookAuth, request: InboundWebhook) -> list[str]:
        return [e.kind.value for e in verify_webhook(auth, request) if TRUSTED_PAYMENT in e.data]

    def test_a_received_pix_over_verified_mtls_is_trusted_when_opted_in(self) -> None:
        request = webhook(self.BODY, headers={"x-ssl-client-verify": "SUCCESS"})
        events = verify_webhook(self.TRUSTING, request)
        charge = next(e for e in events if e.kind is WebhookKind.CHARGE)
        assert charge.data == {
            "end_to_end_id": "E1803615022211340s08793XPJ",
            "amount": "1",
            TRUSTED_PAYMENT: "mtls",
        }
        assert self.trusted(self.TRUSTING, request) == ["charge"]  # never refunds nor sends

    def test_trust_needs_one_of_the_addresses_when_they_are_set(self) -> None:
        """A verified header from an address outside ``allowed_ips`` (a caller inside the
        network that set the header itself) is accepted, and read back, never trusted."""
        auth = replace(self.TRUSTING, allowed_ips=frozenset({EFI_IP}))
        headers = {"x-ssl-client-verify": "SUCCESS"}
        trusted = webhook(self.BODY, headers=headers)
        assert self.trusted(auth, trusted) == ["charge"]
        elsewhere = webhook(self.BODY, headers=headers, client_ip="10.0.0.7")
        accepted = verify_webhook(auth, elsewhere)
        assert [e.kind for e in accepted] == [e.kind for e in verify_webhook(auth, trusted)]
        assert self.trusted(auth, elsewhere) == []
        assert self.trusted(auth, webhook(self.BODY, headers=headers, client_ip=None)) == []

    def test_the_url_secret_is_never_trusted_with_the_payment(self) -> None:
        request = webhook(self.BODY, query={"hmac": SECRET})
        assert self.trusted(self.TRUSTING, request) == []

    def test_mtls_is_not_trusted_without_the_opt_in(self) -> None:
        auth = EfiWebhookAuth(mtls_header="x-ssl-client-verify")
        request = webhook(self.BODY, headers={"x-ssl-client-verify": "SUCCESS"})
        assert self.trusted(auth, request) == []

    def test_the_body_cannot_claim_trust(self) -> None:
        """A field named like the mark in the notification changes nothing: the parser reads
        named fields only."""
        forged = {"pix": [{**RECEIVED, TRUSTED_PAYMENT: "mtls"}]}
        request = webhook(forged, query={"hmac": SECRET})
        assert self.trusted(self.TRUSTING, request) == []

    def test_the_opt_in_needs_the_mtls_header(self) -> None:
        settings = EfiSettings.model_validate(
            {
                "EFI_CLIENT_ID": "id",
                "EFI_CLIENT_SECRET": "secret",
                "EFI_PIX_KEY": "key@example.com",
                "webhook_trust_mtls": True,
            }
        )
        with pytest.raises(ValueError, match="EFI_WEBHOOK_MTLS_HEADER"):
            EFI.build(Instance("efi", settings), Common(timeouts=Timeouts()))


class TestParseReceived:
    def test_received_pix_is_a_charge_event(self) -> None:
        """A received Pix with a txid is a CHARGE event on that txid, amount in centavos."""
        [event] = parse_webhook(json.dumps({"pix": [RECEIVED]}).encode())
        assert event.gateway == "efi"
        assert event.kind is WebhookKind.CHARGE
        assert event.resource_id == "fc9a43k6ff384ryP5f41719"
        assert event.event_id == "efi:pix:E1803615022211340s08793XPJ"
        assert event.data == {"end_to_end_id": "E1803615022211340s08793XPJ", "amount": "1"}

    def test_batch_yields_one_event_per_item_in_order(self) -> None:
        """A batch of received Pix yields one event each, in the body's order."""
        second = {
            **RECEIVED,
            "endToEndId": "E09089356202405011215APIff82f2e5",
            "txid": "txn01JDQ8ZB4E3M5V7X9K2N6P8R0T",
            "valor": "123.45",
        }
        events = parse_webhook(json.dumps({"pix": [RECEIVED, second]}).encode())
        assert [e.resource_id for e in events] == [
            "fc9a43k6ff384ryP5f41719",
            "txn01JDQ8ZB4E3M5V7X9K2N6P8R0T",
        ]
        assert events[1].data["amount"] == "12345"

    def test_event_ids_are_stable_across_redeliveries(self) -> None:
        """The same body delivered twice yields the same event ids."""
        body = json.dumps({"pix": [RECEIVED, REFUNDED, SENT]}).encode()
        assert [e.event_id for e in parse_webhook(body)] == [
            e.event_id for e in parse_webhook(body)
        ]

    def test_pix_without_txid_yields_nothing(self) -> None:
        """A received Pix without a txid names no charge of ours: no event, no rejection."""
        item = {k: v for k, v in RECEIVED.items() if k != "txid"}
        assert parse_webhook(json.dumps({"pix": [item]}).encode()) == []

    def test_empty_batch_yields_nothing(self) -> None:
        """An empty pix list is valid and yields no events."""
        assert parse_webhook(b'{"pix": []}') == []

    def test_amount_as_json_number_is_read_exactly(self) -> None:
        """A valor sent as a JSON number is still converted without float rounding."""
        body = b'{"pix":[{"endToEndId":"E1","txid":"abc","valor":0.29}]}'
        [event] = parse_webhook(body)
        assert event.data["amount"] == "29"


class TestParseRefunds:
    def test_each_devolucao_is_a_refund_event(self) -> None:
        """Every devolução of an item is a REFUND event with its id, status and amount."""
        events = parse_webhook(json.dumps({"pix": [REFUNDED]}).encode())
        e2e = "E1803615022211340s08793XPJ"
        assert [(e.kind, e.resource_id, e.event_id, dict(e.data)) for e in events] == [
            (
                WebhookKind.REFUND,
                "txn01JDQ9A1B2C3D4E5F6G7H8J9K0",
                f"efi:refund:{e2e}:txn01JDQ9A1B2C3D4E5F6G7H8J9K0:DEVOLVIDO",
                {"end_to_end_id": e2e, "status": "DEVOLVIDO", "amount": "1"},
            ),
            (
                WebhookKind.REFUND,
                "txn01JDQ9B1B2C3D4E5F6G7H8J9K0",
                f"efi:refund:{e2e}:txn01JDQ9B1B2C3D4E5F6G7H8J9K0:NAO_REALIZADO",
                {"end_to_end_id": e2e, "status": "NAO_REALIZADO", "amount": "1230"},
            ),
        ]

    def test_item_with_refunds_is_not_a_charge_event(self) -> None:
        """An item carrying devolucoes reports only the refunds, not the payment again."""
        events = parse_webhook(json.dumps({"pix": [REFUNDED]}).encode())
        assert {e.kind for e in events} == {WebhookKind.REFUND}


class TestParseSends:
    def test_sent_pix_is_a_send_event(self) -> None:
        """A sent Pix (gnExtras.idEnvio) is a SEND event on the idEnvio with its status."""
        [event] = parse_webhook(json.dumps({"pix": [SENT]}).encode())
        assert event.kind is WebhookKind.SEND
        assert event.resource_id == "123ABC"
        assert event.event_id == "efi:send:123ABC:REALIZADO"
        assert event.data == {"status": "REALIZADO", "end_to_end_id": "E090893562021030PIf25a7868"}

    def test_rejected_send_carries_the_error_code(self) -> None:
        """A NAO_REALIZADO send carries gnExtras.erro.codigo as error_code."""
        [event] = parse_webhook(json.dumps({"pix": [SENT_REJECTED]}).encode())
        assert event.event_id == "efi:send:123ABC:NAO_REALIZADO"
        assert event.data["status"] == "NAO_REALIZADO"
        assert event.data["error_code"] == "AC03"

    def test_mixed_batch(self) -> None:
        """One body with a received Pix, a refund and a send yields each kind of event."""
        body = json.dumps({"pix": [RECEIVED, REFUNDED, SENT]}).encode()
        assert [e.kind for e in parse_webhook(body)] == [
            WebhookKind.CHARGE,
            WebhookKind.REFUND,
            WebhookKind.REFUND,
            WebhookKind.SEND,
        ]


class TestInvalidBody:
    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"\xff\xfe",
            b"[]",
            b'{"pix": {"endToEndId": "E1"}}',
            b'{"pix": ["E1"]}',
        ],
        ids=["not-json", "not-utf8", "array", "pix-object", "pix-item-string"],
    )
    def test_malformed_body_is_rejected(self, body: bytes) -> None:
        """A body that is not {"pix": [objects]} is invalid_body."""
        with pytest.raises(WebhookRejected) as caught:
            parse_webhook(body)
        assert caught.value.reason == "invalid_body"

    def test_registration_probe_is_acknowledged_without_events(self) -> None:
        """Efí's test call when a URL is registered carries no "pix" list: nothing to do."""
        assert parse_webhook(b'{"evento": "teste_webhook"}') == []

    def test_one_bad_item_rejects_the_whole_batch(self) -> None:
        """An item without endToEndId rejects the batch: no event of it is returned."""
        bad = {k: v for k, v in RECEIVED.items() if k != "endToEndId"}
        with pytest.raises(WebhookRejected, match=r"pix\[1\]\.endToEndId") as caught:
            parse_webhook(json.dumps({"pix": [RECEIVED, bad, SENT]}).encode())
        assert caught.value.reason == "invalid_body"

    @pytest.mark.parametrize(
        "item",
        [
            {**RECEIVED, "valor": "1,50"},
            {**RECEIVED, "endToEndId": "E-with-dashes"},
            {**SENT, "status": None},
            {**REFUNDED, "devolucoes": [{"id": "x1", "valor": "1.00"}]},
            {**REFUNDED, "devolucoes": {"id": "x1"}},
            {**RECEIVED, "gnExtras": "nope"},
        ],
        ids=[
            "comma-amount",
            "e2e-not-alnum",
            "send-no-status",
            "refund-no-status",
            "devolucoes-object",
            "gnextras-string",
        ],
    )
    def test_malformed_item_is_rejected(self, item: dict[str, Any]) -> None:
        """An item breaking the documented shape is invalid_body."""
        with pytest.raises(WebhookRejected) as caught:
            parse_webhook(json.dumps({"pix": [item]}).encode())
        assert caught.value.reason == "invalid_body"


class TestVerify:
    def test_authentication_comes_before_parsing(self) -> None:
        """An unauthenticated garbage body is rejected for authentication, not parsing."""
        with pytest.raises(WebhookRejected) as caught:
            verify_webhook(HMAC_ONLY, webhook(b"garbage", query={"hmac": "wrong"}))
        assert caught.value.reason == "hmac_mismatch"

    async def test_connector_delegates_to_the_configured_auth(self) -> None:
        """EfiConnector.verify_webhook authenticates with its EfiWebhookAuth and parses."""
        connector = make_connector(FakeEfi(), webhook_auth=HMAC_ONLY)
        events = connector.verify_webhook(webhook({"pix": [SENT]}, query={"hmac": SECRET}))
        assert [e.resource_id for e in events] == ["123ABC"]
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(webhook({"pix": [SENT]}))
        await connector.aclose()
