"""The SSRF guard: only URLs leading to public addresses, unless private ones are allowed."""

from __future__ import annotations

import pytest

from pixwave.bootstrap import build_resources
from pixwave.notifications.webhooks import urls
from pixwave.notifications.webhooks.urls import WebhookUrlNotAllowed
from tests.conftest import make_settings


def resolving_to(*addresses: str) -> urls.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


PUBLIC = resolving_to("93.184.215.14")


class TestRefusedAddresses:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/hook",
            "http://127.8.9.10:8080/hook",
            "http://10.0.0.5/hook",
            "http://172.16.0.1/hook",
            "http://172.31.255.254/hook",
            "http://192.168.1.10/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/hook",
            "http://0.0.0.0/hook",
            "http://224.0.0.1/hook",
            "http://240.0.0.1/hook",
            "http://[::1]/hook",
            "http://[::]/hook",
            "http://[fc00::1]/hook",
            "http://[fd12:3456::1]/hook",
            "http://[fe80::1]/hook",
            "http://[ff02::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:169.254.169.254]/hook",
            "http://[64:ff9b::a00:1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://2130706433/hook",
            "http://0x7f.1/hook",
            "http://0x7f000001/hook",
            "http://017700000001/hook",
            "http://127.1/hook",
            "http://localhost:9000/hook",
        ],
    )
    async def test_not_public_is_refused(self, url: str) -> None:
        """Loopback, private, link-local, metadata, multicast, reserved, unspecified — in
        any spelling the system resolver accepts — answer `webhook_url_not_allowed`."""
        with pytest.raises(WebhookUrlNotAllowed) as refused:
            await urls.check(url, allow_private=False)
        assert refused.value.status_code == 422
        assert refused.value.code == "webhook_url_not_allowed"
        assert refused.value.extra["errors"][0]["location"] == "body.url"

    @pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:9000/hook"])
    async def test_allowed_when_private_urls_are(self, url: str) -> None:
        """The opt-in lets loopback through, unresolved (nothing to pin)."""
        target = await urls.check(url, allow_private=True)
        assert target.addresses == ()

    async def test_one_private_address_among_public_ones_is_refused(self) -> None:
        """Every address counts: a name with a private one among public ones is refused."""
        with pytest.raises(WebhookUrlNotAllowed, match=r"10\.1\.2\.3"):
            await urls.check(
                "https://hooks.example.com/x",
                allow_private=False,
                resolver=resolving_to("93.184.215.14", "10.1.2.3"),
            )

    async def test_a_public_name_passes_with_its_addresses(self) -> None:
        """A public host passes, and the addresses checked are what the sender connects to."""
        target = await urls.check(
            "https://hooks.example.com:8443/x", allow_private=False, resolver=PUBLIC
        )
        assert target.host == "hooks.example.com"
        assert target.port == 8443
        assert target.addresses == ("93.184.215.14",)

    async def test_a_name_that_does_not_resolve_is_refused(self) -> None:
        """No address, no delivery: refused rather than accepted blind."""

        async def nowhere(host: str, port: int) -> list[str]:
            raise OSError("Name or service not known")

        with pytest.raises(WebhookUrlNotAllowed, match="does not resolve"):
            await urls.check("https://nowhere.invalid/x", allow_private=False, resolver=nowhere)


class TestRefusedShapes:
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ftp://hooks.example.com/x", "http and https"),
            ("file:///etc/passwd", "http and https"),
            ("gopher://hooks.example.com/x", "http and https"),
            ("https://user:pass@hooks.example.com/x", "user name or password"),
            ("https://token@hooks.example.com/x", "user name or password"),
            ("https:///x", "no host"),
        ],
    )
    async def test_refused_even_when_private_urls_are_allowed(self, url: str, reason: str) -> None:
        """Scheme and credentials are refused whatever the address policy."""
        with pytest.raises(WebhookUrlNotAllowed, match=reason):
            await urls.check(url, allow_private=True, resolver=PUBLIC)


class TestPolicy:
    def test_the_pure_demo_allows_private_urls(self) -> None:
        """Simulators mounted, not production: the receiver is usually on this machine."""
        assert urls.private_urls_allowed(make_settings())

    def test_production_refuses_them(self) -> None:
        assert not urls.private_urls_allowed(make_settings(app_env="production"))

    def test_real_gateways_refuse_them(self) -> None:
        """With no simulator mounted, only the explicit setting allows private URLs."""
        assert not urls.private_urls_allowed(make_settings(sandbox_gateways=False))
        assert urls.private_urls_allowed(
            make_settings(sandbox_gateways=False, webhook_allow_private_urls=True)
        )

    def test_the_setting_wins(self) -> None:
        assert not urls.private_urls_allowed(make_settings(webhook_allow_private_urls=False))


async def test_the_process_decides_once_at_start() -> None:
    """Built resources carry the policy their settings give (the pure demo here), so a
    delivery never re-reads every gateway family's settings."""
    for settings in (make_settings(), make_settings(webhook_allow_private_urls=False)):
        resources = build_resources(settings)
        try:
            assert resources.private_webhook_urls is urls.private_urls_allowed(settings)
        finally:
            await resources.close()
    assert urls.private_urls_allowed(make_settings())  # the pure demo allows them
    assert not urls.private_urls_allowed(make_settings(webhook_allow_private_urls=False))
