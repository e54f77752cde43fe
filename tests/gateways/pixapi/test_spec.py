"""The family's spec: instances from PIXAPI_GATEWAYS, their settings, connectors and simulators."""

from __future__ import annotations

import pytest

from pixwave.gateways.base import ChargeRequest, ChargeStatus
from pixwave.gateways.http import Timeouts
from pixwave.gateways.pixapi.spec import (
    PIXAPI,
    SANDBOX_WEBHOOK_HMAC,
    PixApiSettings,
    gateway_names,
    sandbox_pix_key,
)
from pixwave.gateways.registry import find
from pixwave.gateways.spec import Common
from pixwave.kit.ids import new_id
from tests.servers import run_simulator

COMMON = Common(timeouts=Timeouts(connect=1, read=1))


@pytest.fixture
def two_banks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXAPI_GATEWAYS", " BancoA, bancob ")
    monkeypatch.setenv("PIXAPI_BANCOA_BASE_URL", "http://api.bancoa.test/pix/v2")
    monkeypatch.setenv("PIXAPI_BANCOA_TOKEN_URL", "http://auth.bancoa.test/token")
    monkeypatch.setenv("PIXAPI_BANCOA_CLIENT_ID", "id-a")
    monkeypatch.setenv("PIXAPI_BANCOA_CLIENT_SECRET", "secret-a")
    monkeypatch.setenv("PIXAPI_BANCOA_PIX_KEY", "a@bancoa.test")
    monkeypatch.setenv("PIXAPI_BANCOA_WEBHOOK_HMAC", "hook-a")
    monkeypatch.setenv("PIXAPI_BANCOA_WEBHOOK_ALLOWED_IPS", "203.0.113.0/24, 198.51.100.7")
    monkeypatch.setenv("PIXAPI_BANCOB_CLIENT_ID", "id-b")


class TestInstances:
    def test_each_named_bank_is_an_instance_with_its_own_settings(self, two_banks: None) -> None:
        """PIXAPI_GATEWAYS names the banks, lower-cased; each reads PIXAPI_<NAME>_*."""
        bancoa, bancob = PIXAPI.instances()
        assert (bancoa.name, bancob.name) == ("bancoa", "bancob")
        assert find("bancoa").spec is find("bancob").spec is PIXAPI  # their family
        assert bancoa.is_configured()
        assert not bancob.is_configured()
        assert bancob.credential_variables() == ["PIXAPI_BANCOB_CLIENT_ID"]

    def test_credentials_are_named_by_their_variables(self, two_banks: None) -> None:
        """credentials() lists the five variables a bank needs, by their full names."""
        assert list(PixApiSettings.of("bancoa").credentials()) == [
            "PIXAPI_BANCOA_BASE_URL",
            "PIXAPI_BANCOA_TOKEN_URL",
            "PIXAPI_BANCOA_CLIENT_ID",
            "PIXAPI_BANCOA_CLIENT_SECRET",
            "PIXAPI_BANCOA_PIX_KEY",
        ]

    def test_no_banks_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without PIXAPI_GATEWAYS the family has no instance."""
        monkeypatch.delenv("PIXAPI_GATEWAYS", raising=False)
        assert PIXAPI.instances() == []

    @pytest.mark.parametrize("value", ["bad-name", "1bank", "bancoa,BANCOA"])
    def test_unusable_names_are_refused(self, value: str) -> None:
        """Names must be usable gateway names, each given once."""
        with pytest.raises(ValueError, match="name"):
            gateway_names(value)


class TestBuild:
    def test_a_real_connector_from_the_settings(self, two_banks: None) -> None:
        """build() gives the bank its name, URLs, key and webhook authentication."""
        bancoa = PIXAPI.instances()[0]
        connector = PIXAPI.build(bancoa, COMMON)
        assert (connector.name, connector.pix_key) == ("bancoa", "a@bancoa.test")
        assert connector.webhook_auth.hmac_secret == "hook-a"
        assert connector.webhook_auth.allowed_ips == {"203.0.113.0/24", "198.51.100.7"}
        assert str(connector.client.http.client.base_url) == "http://api.bancoa.test/pix/v2/"

    def test_missing_credentials_are_named(self, two_banks: None) -> None:
        """build() of an incomplete bank names what is missing."""
        bancob = PIXAPI.instances()[1]
        with pytest.raises(ValueError, match="PIXAPI_BANCOB_BASE_URL"):
            PIXAPI.build(bancob, COMMON)


class TestSandbox:
    def test_each_simulated_bank_has_its_own_stable_key(self) -> None:
        """Keys derive from the instance name: distinct, and the same after a restart."""
        assert sandbox_pix_key("bancoa") != sandbox_pix_key("bancob")
        assert sandbox_pix_key("bancoa") == sandbox_pix_key("bancoa")

    def test_webhook_url_and_transaction_ids(self) -> None:
        """The account-level URL carries the sandbox secret; txids map back to references."""
        url = PIXAPI.simulator_webhook_url("http://127.0.0.1:8000", "bancoa")
        assert url == f"http://127.0.0.1:8000/webhooks/bancoa?hmac={SANDBOX_WEBHOOK_HMAC}&ignorar="
        assert PIXAPI.transaction_id("txn01JDQ8ZB4E3M5V7X9K2N6P8R0T") == (
            "txn_01JDQ8ZB4E3M5V7X9K2N6P8R0T"
        )
        assert PIXAPI.transaction_id("txn_01JDQ8ZB4E3M5V7X9K2N6P8R0T") is None

    async def test_the_simulated_connector_works_with_its_simulator(self) -> None:
        """build_simulated + simulator of one instance: a charge is created and paid."""
        instance = PIXAPI.sandbox_instance("bancoc")
        simulator = PIXAPI.simulator(instance, public_url="http://127.0.0.1", time_scale=0.001)
        assert simulator.config.pix_key == sandbox_pix_key("bancoc")
        with run_simulator(simulator) as thread:
            common = Common(timeouts=Timeouts(connect=1, read=2), clock=simulator.clock.now)
            connector = PIXAPI.build_simulated(instance, common, url=thread.base_url)
            try:
                charge = await connector.create_charge(
                    ChargeRequest(reference=new_id("txn"), amount=12_34, expires_in=600)
                )
                assert (charge.gateway, charge.status) == ("bancoc", ChargeStatus.ACTIVE)
            finally:
                await connector.aclose()
