"""The embedded default: simulators mounted in the API, connectors pointed at them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import structlog
import uvicorn
from typer.testing import CliRunner

from pixwave.accounts import service
from pixwave.accounts.schemas import UserCreate
from pixwave.app import create_app
from pixwave.cli import app
from pixwave.config import Settings
from pixwave.db import create_engine, create_sessionmaker
from pixwave.gateways import registry
from pixwave.gateways.base import ChargeRequest, ChargeStatus
from pixwave.gateways.efi.spec import EFI
from pixwave.gateways.registry import GatewayModeError, build_gateways, simulated_gateways
from pixwave.kit.ids import new_id
from pixwave.migrate import upgrade
from pixwave.sandbox.embedded import build_simulator, internal_base_url
from pixwave.sandbox.server import bind
from tests.certificates import self_signed_pem
from tests.servers import ServerThread, WebhookSink, run_simulator, run_sink


def embedded_settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("python_gc_threshold", 0)  # in the test process: see make_settings
    return Settings(
        data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", **values
    )


@dataclass
class Api:
    settings: Settings
    admin: dict[str, str]  # the Authorization header of an admin token
    user: dict[str, str]  # … of a plain user's token


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The real app factory on a real port, migrated, with an admin's and a user's tokens."""
    sock = bind("127.0.0.1", 0)
    settings = embedded_settings(tmp_path, port=sock.getsockname()[1])
    upgrade(settings.sqlalchemy_url)
    admin, user = asyncio.run(_tokens(settings))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = ServerThread(server, sock).start()
    try:
        yield Api(
            settings, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {user}"}
        )
    finally:
        thread.stop()


async def _tokens(settings: Settings) -> tuple[str, str]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            admin_id = await service.create_admin(session, name="Op", email="op@example.com")
            admin = await service.issue_token(session, user_id=admin_id)
            user = await service.create_user(
                session, UserCreate(name="Ana", email="ana@example.com", document="52998224725")
            )
            token = await service.issue_token(session, user_id=user.id)
    finally:
        await engine.dispose()
    assert admin.token is not None
    assert token.token is not None
    return admin.token, token.token


class TestMountedSimulators:
    async def test_connectors_built_from_settings_reach_the_mounted_simulators(
        self, api: Api
    ) -> None:
        """No credentials → both gateways run against /sandbox/<name> of the API itself."""
        base = internal_base_url(api.settings)
        gateways = build_gateways(api.settings, sandbox_base_url=base)
        assert set(gateways) == {"mercadopago", "efi"}
        async with httpx.AsyncClient(timeout=10) as http:
            for name, gateway in gateways.items():
                charge = await gateway.create_charge(
                    ChargeRequest(reference=new_id("txn"), amount=42_00, expires_in=3600)
                )
                paid = await http.post(
                    f"{base}/{name}/_sandbox/pay", json={"brcode": charge.brcode}, headers=api.admin
                )
                assert paid.status_code == 200, paid.text
                assert (await gateway.get_charge(charge.charge_id)).status is ChargeStatus.PAID
                await gateway.aclose()

    async def test_admin_and_docs_of_each_simulator_are_served(self, api: Api) -> None:
        """Each mounted simulator has its admin API (for an admin) and its own docs page."""
        async with httpx.AsyncClient(base_url=internal_base_url(api.settings), timeout=10) as http:
            for name in ("mercadopago", "efi"):
                summary = await http.get(f"/{name}/_sandbox", headers=api.admin)
                assert summary.json()["name"] == name
                assert (await http.get(f"/{name}/_sandbox/docs")).status_code == 200


class TestMountedControlRoutesNeedAnAdmin:
    """Driving a mounted simulator invents money: only an admin token of the API may."""

    CONTROL: ClassVar[list[tuple[str, str, object]]] = [
        ("POST", "/_sandbox/pay", {"brcode": "000201"}),
        ("PUT", "/_sandbox/faults/*", {"outage": "503"}),
        ("PUT", "/_sandbox/faults", {"rules": {}}),
        ("DELETE", "/_sandbox/faults", None),
        ("PATCH", "/_sandbox/config", {"time_scale": 2}),
        ("POST", "/_sandbox/clock/advance", {"seconds": 60}),
        ("POST", "/_sandbox/sends/x/settle", {}),
        ("POST", "/_sandbox/sends/x/reject", {"reason": "AC03"}),
        ("POST", "/_sandbox/reset", None),
        ("GET", "/_sandbox", None),
        ("GET", "/_sandbox/webhooks", None),
    ]

    @pytest.mark.parametrize("gateway", ["mercadopago", "efi"])
    async def test_without_a_token_every_control_route_is_401(self, api: Api, gateway: str) -> None:
        """Anonymous callers reach no control route, and the gateway stays up."""
        async with httpx.AsyncClient(base_url=internal_base_url(api.settings), timeout=10) as http:
            for method, path, body in self.CONTROL:
                answer = await http.request(method, f"/{gateway}{path}", json=body)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.json()["code"] == "unauthenticated"
            faults = await http.get(f"/{gateway}/_sandbox/faults", headers=api.admin)
            assert faults.json()["config"]["rules"] == {}

    @pytest.mark.parametrize("gateway", ["mercadopago", "efi"])
    async def test_a_user_token_is_403(self, api: Api, gateway: str) -> None:
        """A plain user's token may not pay, inject faults or reconfigure."""
        async with httpx.AsyncClient(base_url=internal_base_url(api.settings), timeout=10) as http:
            for method, path, body in self.CONTROL:
                answer = await http.request(
                    method, f"/{gateway}{path}", json=body, headers=api.user
                )
                assert answer.status_code == 403, (method, path, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"

    async def test_an_admin_token_drives_the_simulator(self, api: Api) -> None:
        """The README tour's rule: the admin token injects and clears a fault."""
        async with httpx.AsyncClient(base_url=internal_base_url(api.settings), timeout=10) as http:
            put = await http.put(
                "/efi/_sandbox/faults/*", json={"outage": "503"}, headers=api.admin
            )
            assert put.status_code == 200, put.text
            assert (await http.delete("/efi/_sandbox/faults", headers=api.admin)).status_code == 200

    def test_public_urls_use_the_port_served(self, tmp_path: Path) -> None:
        """Mounted on PORT=8765 without APP_URL, MP's ticket URLs point at 8765."""
        app = create_app(embedded_settings(tmp_path, port=8765))
        mercadopago = app.state.simulators["mercadopago"]
        assert mercadopago.config.public_url == "http://localhost:8765/sandbox/mercadopago"

    async def test_the_payers_ticket_page_stays_public(self, api: Api) -> None:
        """MP's ticket_url page (a QR for the payer) needs no token, like the real one."""
        gateways = build_gateways(api.settings, sandbox_base_url=internal_base_url(api.settings))
        mercadopago = gateways["mercadopago"]
        charge = await mercadopago.create_charge(
            ChargeRequest(reference=new_id("txn"), amount=10_00, expires_in=3600)
        )
        async with httpx.AsyncClient(base_url=internal_base_url(api.settings), timeout=10) as http:
            page = await http.get(f"/mercadopago/_sandbox/payments/{charge.charge_id}/ticket")
        assert page.status_code == 200
        assert "<img" in page.text
        for gateway in gateways.values():
            await gateway.aclose()

    def test_a_standalone_simulator_has_no_guard(self) -> None:
        """`pixwave sandbox …` servers are test tools: open control routes (on loopback)."""
        simulator = build_simulator("efi", public_url="http://127.0.0.1:9002")
        assert simulator.control_guard is None


class TestWhichGatewaysAreSimulated:
    def test_without_credentials_both_are_simulated(self, tmp_path: Path) -> None:
        """The pure demo needs no credentials at all: every gateway is simulated."""
        assert simulated_gateways(embedded_settings(tmp_path)) == ["mercadopago", "efi"]

    def test_credentials_for_one_gateway_simulate_none(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A real gateway is never joined by a simulator: the other one is left out."""
        monkeypatch.setenv("MERCADOPAGO_ACCESS_TOKEN", "APP_USR-1")
        settings = embedded_settings(tmp_path)
        assert simulated_gateways(settings) == []
        gateways = build_gateways(settings, sandbox_base_url="http://127.0.0.1:1/sandbox")
        assert set(gateways) == {"mercadopago"}
        app = create_app(settings)
        assert not any(getattr(r, "path", "").startswith("/sandbox") for r in app.routes)

    def test_partial_credentials_also_end_the_demo(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Even one Efí variable says "real gateways here": nothing is simulated."""
        monkeypatch.setenv("GERENCIANET_CLIENT_ID", "Client_Id_x")
        settings = embedded_settings(tmp_path)
        assert simulated_gateways(settings) == []

    def test_asking_for_simulators_beside_credentials_is_refused(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SANDBOX_GATEWAYS=true with credentials set: refused, naming the variables."""
        monkeypatch.setenv("GERENCIANET_CLIENT_ID", "Client_Id_x")
        settings = embedded_settings(tmp_path, sandbox_gateways=True)
        with pytest.raises(GatewayModeError, match=r"SANDBOX_GATEWAYS.*GERENCIANET_CLIENT_ID"):
            simulated_gateways(settings)
        with pytest.raises(GatewayModeError):
            create_app(settings)

    def test_asked_for_simulators_without_credentials(self, tmp_path: Path) -> None:
        """SANDBOX_GATEWAYS=true alone simulates every gateway."""
        settings = embedded_settings(tmp_path, sandbox_gateways=True)
        assert simulated_gateways(settings) == ["mercadopago", "efi"]

    def test_simulators_refused_outright(self, tmp_path: Path) -> None:
        """SANDBOX_GATEWAYS=false: no simulator even without credentials."""
        settings = embedded_settings(tmp_path, sandbox_gateways=False)
        assert simulated_gateways(settings) == []
        assert build_gateways(settings, sandbox_base_url="http://127.0.0.1:1/sandbox") == {}

    def test_production_never_falls_back_to_a_simulator(self, tmp_path: Path) -> None:
        """With APP_ENV=production a gateway without credentials is left out, not faked."""
        settings = embedded_settings(tmp_path, app_env="production")
        assert simulated_gateways(settings) == []
        assert build_gateways(settings, sandbox_base_url="http://127.0.0.1:1/sandbox") == {}

    @pytest.mark.parametrize(("url", "built"), [("http://10.0.0.5:9001", False), (None, True)])
    def test_production_reaches_real_gateways_over_https_only(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str | None, built: bool
    ) -> None:
        """APP_ENV=production leaves out (with an error) a gateway configured over plain http:
        its credentials and payments would cross the network in clear."""
        monkeypatch.setenv("MERCADOPAGO_ACCESS_TOKEN", "APP_USR-1")
        if url is not None:
            monkeypatch.setenv("MERCADOPAGO_BASE_URL", url)
        settings = embedded_settings(tmp_path, app_env="production")
        assert ("mercadopago" in build_gateways(settings, sandbox_base_url=None)) is built

    def test_production_refuses_asked_for_simulators(self, tmp_path: Path) -> None:
        """APP_ENV=production with SANDBOX_GATEWAYS=true does not start."""
        settings = embedded_settings(tmp_path, app_env="Production", sandbox_gateways=True)
        with pytest.raises(GatewayModeError, match="APP_ENV=production"):
            simulated_gateways(settings)

    def test_production_app_mounts_no_simulator(self, tmp_path: Path) -> None:
        """No /sandbox routes exist when nothing is simulated."""
        app = create_app(embedded_settings(tmp_path, app_env="production"))
        assert not any(getattr(r, "path", "").startswith("/sandbox") for r in app.routes)

    def test_simulated_gateways_are_announced_at_warning_level(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Start-up says, once per simulated gateway, that its money is not real."""
        captured = structlog.testing.CapturingLogger()
        monkeypatch.setattr(registry, "log", captured)
        build_gateways(embedded_settings(tmp_path), sandbox_base_url="http://127.0.0.1:1/s")
        simulated = [c for c in captured.calls if c.args == ("gateway.simulated",)]
        assert [c.kwargs["gateway"] for c in simulated] == ["mercadopago", "efi"]
        assert {c.method_name for c in simulated} == {"warning"}

    def test_original_efi_names_configure_the_real_gateway(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """GERENCIANET_* keep working; https without the certificate is refused, loudly."""
        for name, value in {
            "GERENCIANET_CLIENT_ID": "Client_Id_x",
            "GERENCIANET_CLIENT_SECRET": "Client_Secret_x",
            "GERENCIANET_PIX_KEY": "pix@example.com",
            "GERENCIANET_SANDBOX": "true",
        }.items():
            monkeypatch.setenv(name, value)
        settings = embedded_settings(tmp_path)
        assert EFI.load_settings().url == "https://pix-h.api.efipay.com.br"
        assert "efi" not in simulated_gateways(settings)
        assert "efi" not in build_gateways(settings, sandbox_base_url=None)
        monkeypatch.setenv("GERENCIANET_CERTIFICATE_PATH", str(self_signed_pem(tmp_path)))
        assert "efi" in build_gateways(settings, sandbox_base_url=None)

    def test_pixwave_names_win_over_the_original_ones(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EFI_CLIENT_ID beside GERENCIANET_CLIENT_ID: PixWave's name decides; secrets stay
        masked in the settings' repr."""
        monkeypatch.setenv("GERENCIANET_CLIENT_ID", "Client_Id_old")
        monkeypatch.setenv("EFI_CLIENT_ID", "Client_Id_new")
        monkeypatch.setenv("EFI_CLIENT_SECRET", "null")
        settings = EFI.load_settings()
        assert settings.client_id is not None
        assert settings.client_id.get_secret_value() == "Client_Id_new"
        assert settings.client_secret is None
        assert "Client_Id_new" not in repr(settings)


class TestSandboxCommandsOnAMountedSimulator:
    def test_the_admin_token_is_passed_along(self, api: Api) -> None:
        """`pixwave sandbox … --token` (or PIXWAVE_TOKEN) drives a mounted simulator."""
        url = f"{internal_base_url(api.settings)}/efi"
        refused = CliRunner().invoke(app, ["sandbox", "status", "--url", url])
        assert refused.exit_code == 1
        assert "401" in refused.output
        token = api.admin["Authorization"].removeprefix("Bearer ")
        allowed = CliRunner().invoke(app, ["sandbox", "--token", token, "status", "--url", url])
        assert allowed.exit_code == 0, allowed.output
        assert '"name": "efi"' in allowed.output
        by_env = CliRunner().invoke(
            app, ["sandbox", "clear", "--url", url], env={"PIXWAVE_TOKEN": token}
        )
        assert by_env.exit_code == 0, by_env.output

    def test_the_token_goes_only_to_a_mounted_simulator(self) -> None:
        """A standalone simulator (any URL not ending in /sandbox/<name>) never gets it."""
        sink = WebhookSink()
        with run_sink(sink) as server:
            for url in (server.base_url, f"{server.base_url}/sandbox/efi"):
                result = CliRunner().invoke(
                    app, ["sandbox", "--token", "pxw_secret", "status", "--url", url]
                )
                assert result.exit_code == 0, result.output
        sent = [r.headers.get("authorization") for r in sink.wait_for(2)]
        assert sent == [None, "Bearer pxw_secret"]


class TestSimulatorDocsOffline:
    @pytest.mark.parametrize("where", ["mounted", "standalone"])
    async def test_docs_assets_come_from_the_simulator(self, api: Api, where: str) -> None:
        """/_sandbox/docs loads its Swagger UI from the simulator itself, not from a CDN."""
        with ExitStack() as stack:
            if where == "mounted":
                origin = internal_base_url(api.settings).removesuffix("/sandbox")
                base = f"{origin}/sandbox/efi"
            else:
                simulator = build_simulator("efi", public_url="http://127.0.0.1")
                base = origin = stack.enter_context(run_simulator(simulator)).base_url
            async with httpx.AsyncClient(timeout=10) as http:
                page = await http.get(f"{base}/_sandbox/docs")
                assert page.status_code == 200
                assert not re.search(r"https?://", page.text), "an absolute URL is left"
                assets = re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page.text)
                assert any(asset.endswith(".js") for asset in assets)
                for asset in assets:
                    assert (await http.get(f"{origin}{asset}")).status_code == 200, asset
