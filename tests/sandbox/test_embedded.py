"""The embedded default: simulators mounted in the API, connectors pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from pixwave.app import create_app
from pixwave.config import Settings
from pixwave.gateways.base import ChargeRequest, ChargeStatus
from pixwave.gateways.registry import build_gateways, sandboxed
from pixwave.kit.ids import new_id
from pixwave.sandbox.embedded import internal_base_url
from pixwave.sandbox.server import bind
from tests.certificates import self_signed_pem
from tests.servers import ServerThread


def embedded_settings(tmp_path: Path, **values: object) -> Settings:
    values.setdefault("python_gc_threshold", 0)  # in the test process: see make_settings
    return Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", **values
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Settings]:
    """The real app factory on a real port; yields the settings it runs with."""
    sock = bind("127.0.0.1", 0)
    settings = embedded_settings(tmp_path, port=sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = ServerThread(server, sock).start()
    try:
        yield settings
    finally:
        thread.stop()


class TestMountedSimulators:
    async def test_connectors_built_from_settings_reach_the_mounted_simulators(
        self, api: Settings
    ) -> None:
        """No credentials → both gateways run against /sandbox/<name> of the API itself."""
        base = internal_base_url(api)
        gateways = build_gateways(api, sandbox_base_url=base)
        assert set(gateways) == {"mercadopago", "efi"}
        async with httpx.AsyncClient(timeout=10) as http:
            for name, gateway in gateways.items():
                charge = await gateway.create_charge(
                    ChargeRequest(reference=new_id("txn"), amount=42_00, expires_in=3600)
                )
                paid = await http.post(
                    f"{base}/{name}/_sandbox/pay", json={"brcode": charge.brcode}
                )
                assert paid.status_code == 200, paid.text
                assert (await gateway.get_charge(charge.charge_id)).status is ChargeStatus.PAID
                await gateway.aclose()

    async def test_admin_and_docs_of_each_simulator_are_served(self, api: Settings) -> None:
        """Each mounted simulator has its admin API and its own docs page."""
        async with httpx.AsyncClient(base_url=internal_base_url(api), timeout=10) as http:
            for name in ("mercadopago", "efi"):
                assert (await http.get(f"/{name}/_sandbox")).json()["name"] == name
                assert (await http.get(f"/{name}/_sandbox/docs")).status_code == 200


class TestWhichGatewaysAreSandboxed:
    def test_without_credentials_both_are_sandboxed(self, tmp_path: Path) -> None:
        """The embedded default needs no credentials at all."""
        assert sandboxed(embedded_settings(tmp_path)) == ["mercadopago", "efi"]

    def test_credentials_select_the_real_gateway(self, tmp_path: Path) -> None:
        """A gateway with credentials is not sandboxed; the other still is."""
        settings = embedded_settings(tmp_path, mercadopago_access_token="APP_USR-1")
        assert sandboxed(settings) == ["efi"]
        gateways = build_gateways(settings, sandbox_base_url="http://127.0.0.1:1/sandbox")
        assert set(gateways) == {"mercadopago", "efi"}

    def test_production_never_falls_back_to_a_simulator(self, tmp_path: Path) -> None:
        """With APP_ENV=production a gateway without credentials is left out, not faked."""
        settings = embedded_settings(tmp_path, app_env="production")
        assert sandboxed(settings) == []
        assert build_gateways(settings, sandbox_base_url="http://127.0.0.1:1/sandbox") == {}

    def test_production_app_mounts_no_simulator(self, tmp_path: Path) -> None:
        """No /sandbox routes exist when nothing is sandboxed."""
        app = create_app(embedded_settings(tmp_path, app_env="production"))
        assert not any(getattr(r, "path", "").startswith("/sandbox") for r in app.routes)

    def test_original_efi_names_configure_the_real_gateway(self, tmp_path: Path) -> None:
        """GERENCIANET_* keep working; https without the certificate is refused, loudly."""
        settings = embedded_settings(
            tmp_path,
            gerencianet_client_id="Client_Id_x",
            gerencianet_client_secret="Client_Secret_x",
            gerencianet_pix_key="pix@example.com",
            gerencianet_sandbox=True,
        )
        assert settings.efi_url == "https://pix-h.api.efipay.com.br"
        assert "efi" not in sandboxed(settings)
        assert "efi" not in build_gateways(settings, sandbox_base_url=None)
        certificate = self_signed_pem(tmp_path)
        with_cert = settings.model_copy(update={"gerencianet_certificate_path": str(certificate)})
        assert "efi" in build_gateways(with_cert, sandbox_base_url=None)
