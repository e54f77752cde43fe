"""Banks speaking the Central Bank's standard API Pix, as PixWave sees them: any number of them.

``PIXAPI_GATEWAYS=bancoa,bancob`` names the instances; each is a gateway of its own, configured
by ``PIXAPI_<NAME>_*``:

```
PIXAPI_BANCOA_BASE_URL=https://api.bancoa.com.br/pix/v2    # the API, with its version path
PIXAPI_BANCOA_TOKEN_URL=https://oauth.bancoa.com.br/token  # OAuth2 client credentials
PIXAPI_BANCOA_CLIENT_ID=…   PIXAPI_BANCOA_CLIENT_SECRET=…   PIXAPI_BANCOA_PIX_KEY=…
PIXAPI_BANCOA_CERTIFICATE_PATH=/etc/pixwave/bancoa.pem     # mTLS, required over https
PIXAPI_BANCOA_SCOPES="cob.write cob.read pix.write pix.read webhook.write webhook.read"
PIXAPI_BANCOA_WEBHOOK_HMAC=…  PIXAPI_BANCOA_WEBHOOK_ALLOWED_IPS=…
PIXAPI_BANCOA_WEBHOOK_MTLS_HEADER=…  PIXAPI_BANCOA_WEBHOOK_MTLS_VALUE=SUCCESS
```

The standard has no way to send a Pix: these gateways take deposits and refunds, never
withdrawals.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import SettingsConfigDict

from pixwave.gateways.pixapi import openapi
from pixwave.gateways.pixapi.connector import DEFAULT_SCOPES, PixApiConnector, transaction_id_of
from pixwave.gateways.pixapi.webhooks import WebhookAuth, split_ips
from pixwave.gateways.spec import (
    Common,
    GatewaySpec,
    Instance,
    ProviderSettings,
    valid_gateway_name,
)
from pixwave.sandbox.pixapi import PixApiSimConfig, PixApiSimulator

#: Credentials the built-in simulators accept; they protect nothing and say so.
SANDBOX_CLIENT_ID: Final = "pixapi-sandbox-client"
SANDBOX_CLIENT_SECRET: Final = "pixapi-sandbox-secret"  # noqa: S105 - a public sandbox value
SANDBOX_WEBHOOK_HMAC: Final = "pixwave-sandbox-hmac"
#: Namespace of the simulated banks' keys (a UUID of ours, fixed so keys never change).
_SANDBOX_KEYS: Final = uuid.UUID("6f1c2a4e-8b3d-4e5f-9a7c-0d2e4f6a8b1c")


def sandbox_pix_key(name: str) -> str:
    """The simulated bank ``name``'s key: an EVP derived from the name, distinct per instance
    and stable across restarts (QR codes stay payable)."""
    return str(uuid.uuid5(_SANDBOX_KEYS, name))


class PixApiFamilySettings(ProviderSettings):
    """Which banks this deployment has: ``PIXAPI_GATEWAYS``, comma-separated names."""

    model_config = SettingsConfigDict(env_prefix="PIXAPI_")

    gateways: str = Field(default="", description="Comma-separated names of the banks.")


class PixApiSettings(ProviderSettings):
    """One bank's ``PIXAPI_<NAME>_*`` settings (read with that prefix, see :meth:`of`)."""

    base_url: str | None = Field(default=None, description="The API Pix base, version included.")
    token_url: str | None = Field(default=None, description="The OAuth2 token endpoint.")
    client_id: SecretStr | None = None
    client_secret: SecretStr | None = None
    certificate_path: str | None = Field(
        default=None, description="The account's client certificate and key (PEM) for mTLS."
    )
    pix_key: str | None = Field(default=None, description="The account's receiving Pix key.")
    scopes: str = Field(default=DEFAULT_SCOPES, description="OAuth2 scopes asked for.")
    webhook_hmac: SecretStr | None = Field(
        default=None, description="The ?hmac= secret registered with the webhook URL."
    )
    webhook_allowed_ips: str = Field(
        default="", description="Comma-separated source addresses/networks; empty: no check."
    )
    webhook_mtls_header: str | None = Field(
        default=None,
        description="Opt-in: the header an ingress that verifies the bank's client certificate "
        "sets (and strips from every other request). Unset: no header is trusted.",
    )
    webhook_mtls_value: str = Field(
        default="SUCCESS", description="What that header holds when the certificate verified."
    )

    _prefix: str = PrivateAttr(default="PIXAPI_")

    @classmethod
    def of(cls, name: str) -> PixApiSettings:
        """The settings of bank ``name``, from ``PIXAPI_<NAME>_*``."""
        prefix = f"PIXAPI_{name.upper()}_"
        settings = cls(_env_prefix=prefix)
        settings._prefix = prefix
        return settings

    def credentials(self) -> Mapping[str, object | None]:
        p = self._prefix
        return {
            f"{p}BASE_URL": self.base_url,
            f"{p}TOKEN_URL": self.token_url,
            f"{p}CLIENT_ID": self.client_id,
            f"{p}CLIENT_SECRET": self.client_secret,
            f"{p}PIX_KEY": self.pix_key,
        }

    def webhook_auth(self) -> WebhookAuth:
        secret = self.webhook_hmac
        return WebhookAuth(
            mtls_header=self.webhook_mtls_header,
            mtls_header_value=self.webhook_mtls_value,
            hmac_secret=None if secret is None else secret.get_secret_value(),
            allowed_ips=split_ips(self.webhook_allowed_ips),
        )


def gateway_names(value: str) -> list[str]:
    """``PIXAPI_GATEWAYS`` as valid, distinct, lower-case names; ValueError otherwise."""
    names = [valid_gateway_name(n.strip().lower()) for n in value.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"PIXAPI_GATEWAYS names a bank twice: {value!r}")
    return names


class SpeaksTheStandard:
    """What every family speaking the standard API Pix shares, whatever it adds: an
    account-level webhook (the PSP appends ``/pix``) and txids derived from our ids."""

    #: The ``?hmac=`` secret a simulated account's webhook URL carries.
    sandbox_webhook_hmac: ClassVar[str] = SANDBOX_WEBHOOK_HMAC

    def simulator_webhook_url(self, api_base: str, gateway: str) -> str | None:
        """The PSP notifies the URL registered for the account's key (not one per charge)."""
        return f"{api_base}/webhooks/{gateway}?hmac={self.sandbox_webhook_hmac}&ignorar="

    def transaction_id(self, resource_id: str) -> str | None:
        return transaction_id_of(resource_id)


class PixApiSpec(SpeaksTheStandard, GatewaySpec[PixApiSettings]):
    family = "pixapi"
    title = "Pix API (Central Bank standard)"
    settings_model = PixApiSettings
    notification_doc = openapi.NOTIFICATION
    #: Registered as ``…/webhooks/<bank>``; the bank appends ``/pix``.
    webhook_paths = ("", "/pix")
    sandbox_port = 9003
    sandbox_summary = "BCB API Pix: cob, pix, devolução, webhook (no sends)"
    simulator_operations: ClassVar[Mapping[str, str]] = {
        "token": "oauth.token",
        "charge": "cob.put",
        "charge_get": "cob.get",
        "cancel": "cob.patch",
        "refund": "devolucao.put",
        "refund_get": "devolucao.get",
        "webhook": "webhook.put",
    }

    def instances(self) -> list[Instance[PixApiSettings]]:
        names = gateway_names(PixApiFamilySettings().gateways)
        return [Instance(name, PixApiSettings.of(name)) for name in names]

    def sandbox_instance(self, name: str | None = None) -> Instance[PixApiSettings]:
        chosen = valid_gateway_name((name or self.family).lower())
        return Instance(chosen, PixApiSettings.of(chosen))

    def load_settings(self) -> PixApiSettings:
        return PixApiSettings.of(self.family)

    def endpoints(self, instance: Instance[PixApiSettings]) -> list[str]:
        settings = instance.settings
        return [url for url in (settings.base_url, settings.token_url) if url]

    def build(self, instance: Instance[PixApiSettings], common: Common) -> PixApiConnector:
        settings = instance.settings
        base_url, token_url, pix_key = settings.base_url, settings.token_url, settings.pix_key
        client_id, client_secret = settings.client_id, settings.client_secret
        if not (base_url and token_url and pix_key and client_id and client_secret):
            missing = [name for name, value in settings.credentials().items() if not value]
            raise ValueError(f"{instance.name}: {', '.join(missing)} must be set")
        return PixApiConnector(
            name=instance.name,
            client_id=client_id.get_secret_value(),
            client_secret=client_secret.get_secret_value(),
            pix_key=pix_key,
            base_url=base_url,
            token_url=token_url,
            scopes=settings.scopes or None,
            certificate_path=settings.certificate_path,
            timeouts=common.timeouts,
            webhook_auth=settings.webhook_auth(),
            transport=common.transport,
            clock=common.clock,
        )

    def build_simulated(
        self, instance: Instance[PixApiSettings], common: Common, *, url: str
    ) -> PixApiConnector:
        base = url.rstrip("/")
        return PixApiConnector(
            name=instance.name,
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SANDBOX_CLIENT_SECRET,
            pix_key=sandbox_pix_key(instance.name),
            base_url=f"{base}/v2",
            token_url=f"{base}/oauth/token",
            timeouts=common.timeouts,
            # The simulator calls from loopback: the shared secret is the check.
            webhook_auth=WebhookAuth(hmac_secret=SANDBOX_WEBHOOK_HMAC),
            transport=common.transport,
            clock=common.clock,
        )

    def simulator(
        self,
        instance: Instance[PixApiSettings] | None = None,
        *,
        public_url: str,
        webhook_url: str | None = None,
        time_scale: float = 1.0,
        **extra: Any,
    ) -> PixApiSimulator:
        name = instance.name if instance is not None else self.family
        return PixApiSimulator(
            PixApiSimConfig(
                gateway=name,
                client_id=SANDBOX_CLIENT_ID,
                client_secret=SANDBOX_CLIENT_SECRET,
                pix_key=sandbox_pix_key(name),
                webhook_url=webhook_url,
                time_scale=time_scale,
                **extra,
            )
        )


PIXAPI = PixApiSpec()
