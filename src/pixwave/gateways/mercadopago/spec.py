"""Mercado Pago as PixWave sees it: its settings, connector, simulator and notifications."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pixwave.gateways.mercadopago import openapi
from pixwave.gateways.mercadopago.client import DEFAULT_BASE_URL
from pixwave.gateways.mercadopago.connector import MercadoPagoConnector
from pixwave.gateways.spec import Common, GatewaySpec, Instance, ProviderSettings, SandboxFlag
from pixwave.sandbox.mercadopago import MercadoPagoSimConfig, MercadoPagoSimulator

#: The access token the built-in simulator accepts; it protects nothing and says so.
SANDBOX_ACCESS_TOKEN = "TEST-pixwave-sandbox"  # noqa: S105 - a public sandbox value


class MercadoPagoSettings(ProviderSettings):
    """``MERCADOPAGO_*``: the original deployment's names, kept."""

    model_config = SettingsConfigDict(env_prefix="MERCADOPAGO_")

    access_token: SecretStr | None = Field(default=None, description="(original)")
    public_key: str | None = Field(
        default=None, description="(original) for browser SDKs; the server does not need it."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="The signature secret from 'Your integrations > Webhooks'."
    )
    base_url: str = Field(default=DEFAULT_BASE_URL, description="The API host (a simulator's).")
    payouts_enabled: bool = Field(
        default=False, description="Cash-out through MP, once MP has enabled it for the account."
    )
    payer_email: str = Field(
        default="pagador@pixwave.app", description="payer.email MP requires on every charge."
    )
    webhook_tolerance_seconds: int = Field(
        default=300, ge=0, description="Reject MP webhooks signed longer ago than this."
    )

    def credentials(self) -> Mapping[str, object | None]:
        return {"MERCADOPAGO_ACCESS_TOKEN": self.access_token}


class MercadoPagoSpec(GatewaySpec[MercadoPagoSettings]):
    family = "mercadopago"
    title = "Mercado Pago"
    settings_model = MercadoPagoSettings
    notification_doc = openapi.NOTIFICATION
    sandbox_port = 9001
    sandbox_summary = "Payments API for Pix, refunds, payouts"
    sandbox_flags: ClassVar[Mapping[str, SandboxFlag]] = {
        "payouts": SandboxFlag("payouts_enabled", True, "Accept payouts (cash-out).")
    }
    simulator_operations: ClassVar[Mapping[str, str]] = {
        "charge": "payments.create",
        "send": "payouts.create",
        "refund": "refunds.create",
    }

    def endpoints(self, instance: Instance[MercadoPagoSettings]) -> list[str]:
        return [instance.settings.base_url]

    def build(
        self, instance: Instance[MercadoPagoSettings], common: Common
    ) -> MercadoPagoConnector:
        settings = instance.settings
        if settings.access_token is None:
            raise ValueError("MERCADOPAGO_ACCESS_TOKEN is not set")
        secret = settings.webhook_secret
        return self._connector(
            settings,
            common,
            access_token=settings.access_token.get_secret_value(),
            webhook_secret=None if secret is None else secret.get_secret_value(),
            base_url=settings.base_url,
            payouts_enabled=settings.payouts_enabled,
        )

    def build_simulated(
        self, instance: Instance[MercadoPagoSettings], common: Common, *, url: str
    ) -> MercadoPagoConnector:
        return self._connector(
            instance.settings,
            common,
            access_token=SANDBOX_ACCESS_TOKEN,
            webhook_secret=MercadoPagoSimConfig().webhook_secret,
            base_url=url,
            payouts_enabled=True,
        )

    @staticmethod
    def _connector(
        settings: MercadoPagoSettings,
        common: Common,
        *,
        access_token: str,
        webhook_secret: str | None,
        base_url: str,
        payouts_enabled: bool,
    ) -> MercadoPagoConnector:
        return MercadoPagoConnector(
            access_token=access_token,
            webhook_secret=webhook_secret,
            base_url=base_url,
            timeouts=common.timeouts,
            payouts_enabled=payouts_enabled,
            payer_email=settings.payer_email,
            webhook_tolerance_seconds=settings.webhook_tolerance_seconds,
            transport=common.transport,
            clock=common.clock,
        )

    def simulator(
        self,
        instance: Instance[MercadoPagoSettings] | None = None,
        *,
        public_url: str,
        webhook_url: str | None = None,
        time_scale: float = 1.0,
        **extra: Any,
    ) -> MercadoPagoSimulator:
        return MercadoPagoSimulator(
            MercadoPagoSimConfig(
                access_token=SANDBOX_ACCESS_TOKEN,
                public_url=public_url,
                webhook_url=webhook_url,
                time_scale=time_scale,
                **extra,
            )
        )


MERCADOPAGO = MercadoPagoSpec()
