"""Efí Bank (ex-Gerencianet) as PixWave sees it: settings, connector, simulator, notifications."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pixwave.gateways.efi import openapi
from pixwave.gateways.efi.connector import HOMOLOGATION_URL, PRODUCTION_URL, EfiConnector
from pixwave.gateways.efi.webhooks import EFI_WEBHOOK_IP, EfiWebhookAuth
from pixwave.gateways.pixapi.spec import SpeaksTheStandard
from pixwave.gateways.spec import Common, GatewaySpec, Instance, ProviderSettings, SandboxFlag
from pixwave.sandbox.efi import EfiSimConfig, EfiSimulator

#: Credentials the built-in simulator accepts; they protect nothing and say so.
SANDBOX_CLIENT_ID = "Client_Id_pixwave_sandbox"
SANDBOX_CLIENT_SECRET = "Client_Secret_pixwave_sandbox"  # noqa: S105 - a public sandbox value
SANDBOX_WEBHOOK_HMAC = "pixwave-sandbox-hmac"


def _names(name: str) -> AliasChoices:
    """``EFI_<NAME>`` (PixWave's) wins over ``GERENCIANET_<NAME>`` (the original's)."""
    return AliasChoices(f"EFI_{name}", f"GERENCIANET_{name}")


class EfiSettings(ProviderSettings):
    """``GERENCIANET_*`` (the original deployment's names, kept) and ``EFI_*``."""

    model_config = SettingsConfigDict(env_prefix="EFI_")

    client_id: SecretStr | None = Field(
        default=None, validation_alias=_names("CLIENT_ID"), description="(original)"
    )
    client_secret: SecretStr | None = Field(
        default=None, validation_alias=_names("CLIENT_SECRET"), description="(original)"
    )
    pix_key: str | None = Field(
        default=None, validation_alias=_names("PIX_KEY"), description="(original)"
    )
    certificate_path: str | None = Field(
        default=None,
        validation_alias=_names("CERTIFICATE_PATH"),
        description="(original) the Efí client certificate, PEM.",
    )
    sandbox: bool = Field(
        default=False,
        validation_alias=_names("SANDBOX"),
        description="(original) true = Efí's homologation environment.",
    )
    base_url: str | None = Field(default=None, description="Overrides the Efí host.")
    webhook_hmac: SecretStr | None = Field(
        default=None, description="The ?hmac= secret registered with the Efí webhook URL."
    )
    webhook_allowed_ips: str = Field(
        default=EFI_WEBHOOK_IP, description="Comma-separated Efí webhook source IPs."
    )
    webhook_mtls_header: str | None = Field(
        default=None,
        description="Opt-in: the header an ingress that verifies Efí's client certificate sets "
        "(to EFI_WEBHOOK_MTLS_VALUE) and strips from every other request. Unset: no header is "
        "trusted.",
    )
    webhook_mtls_value: str = Field(
        default="SUCCESS", description="What that header holds when the certificate verified."
    )
    webhook_trust_mtls: bool = Field(
        default=False,
        description="Opt-in: credit a charge from an mTLS-verified notification itself (its "
        "pix[] item: txid, valor, endToEndId; checked against the charge) instead of reading "
        "the charge back from Efí first. Needs EFI_WEBHOOK_MTLS_HEADER; notifications "
        "authenticated by the ?hmac= secret are always read back.",
    )

    @property
    def url(self) -> str:
        if self.base_url:
            return self.base_url
        return HOMOLOGATION_URL if self.sandbox else PRODUCTION_URL

    def credentials(self) -> Mapping[str, object | None]:
        return {
            "GERENCIANET_CLIENT_ID": self.client_id,
            "GERENCIANET_CLIENT_SECRET": self.client_secret,
            "GERENCIANET_PIX_KEY": self.pix_key,
        }


class EfiSpec(SpeaksTheStandard, GatewaySpec[EfiSettings]):
    family = "efi"
    title = "Efí"
    settings_model = EfiSettings
    notification_doc = openapi.NOTIFICATION
    #: Registered as ``…/webhooks/efi``; Efí appends ``/pix``.
    webhook_paths = ("", "/pix")
    sandbox_port = 9002
    sandbox_webhook_hmac = SANDBOX_WEBHOOK_HMAC
    sandbox_summary = "BCB API Pix: cob, pix, devolução; Efí send and webhooks"
    sandbox_flags: ClassVar[Mapping[str, SandboxFlag]] = {
        "homologation": SandboxFlag(
            "magic_amounts", False, "Apply Efí homologation's magic amounts (auto-paid charges…)."
        )
    }
    simulator_operations: ClassVar[Mapping[str, str]] = {
        "charge": "cob.put",
        "send": "send.put",
        "refund": "devolucao.put",
    }

    def endpoints(self, instance: Instance[EfiSettings]) -> list[str]:
        return [instance.settings.url]

    def build(self, instance: Instance[EfiSettings], common: Common) -> EfiConnector:
        settings = instance.settings
        if settings.client_id is None or settings.client_secret is None or not settings.pix_key:
            raise ValueError("GERENCIANET_CLIENT_ID, _CLIENT_SECRET and _PIX_KEY are all needed")
        hmac_secret = settings.webhook_hmac
        if settings.webhook_trust_mtls and not settings.webhook_mtls_header:
            raise ValueError(
                "EFI_WEBHOOK_TRUST_MTLS needs EFI_WEBHOOK_MTLS_HEADER: only a notification "
                "whose client certificate was verified may be trusted"
            )
        return EfiConnector(
            client_id=settings.client_id.get_secret_value(),
            client_secret=settings.client_secret.get_secret_value(),
            pix_key=settings.pix_key,
            base_url=settings.url,
            certificate_path=settings.certificate_path,
            timeouts=common.timeouts,
            webhook_auth=EfiWebhookAuth(
                mtls_header=settings.webhook_mtls_header,
                mtls_header_value=settings.webhook_mtls_value,
                hmac_secret=None if hmac_secret is None else hmac_secret.get_secret_value(),
                allowed_ips=frozenset(
                    ip.strip() for ip in settings.webhook_allowed_ips.split(",") if ip.strip()
                ),
                trust_mtls_payments=settings.webhook_trust_mtls,
            ),
            transport=common.transport,
            clock=common.clock,
        )

    def build_simulated(
        self, instance: Instance[EfiSettings], common: Common, *, url: str
    ) -> EfiConnector:
        return EfiConnector(
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SANDBOX_CLIENT_SECRET,
            pix_key=EfiSimConfig().pix_key,
            base_url=url,
            timeouts=common.timeouts,
            # The simulator calls from loopback: the shared secret is the check.
            webhook_auth=EfiWebhookAuth(
                mtls_header=None, hmac_secret=SANDBOX_WEBHOOK_HMAC, allowed_ips=frozenset()
            ),
            transport=common.transport,
            clock=common.clock,
        )

    def simulator(
        self,
        instance: Instance[EfiSettings] | None = None,
        *,
        public_url: str,
        webhook_url: str | None = None,
        time_scale: float = 1.0,
        **extra: Any,
    ) -> EfiSimulator:
        return EfiSimulator(
            EfiSimConfig(
                client_id=SANDBOX_CLIENT_ID,
                client_secret=SANDBOX_CLIENT_SECRET,
                webhook_url=webhook_url,
                time_scale=time_scale,
                **extra,
            )
        )


EFI = EfiSpec()
