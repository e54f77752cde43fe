"""What a gateway family tells the rest of PixWave about itself: one spec per provider package.

Everything outside a provider's packages (``gateways/<family>/``, ``sandbox/<family>/``) knows
gateways only through these specs — the registry builds connectors from them, the inbox routes
``/webhooks/{gateway}/…`` with them, the embedded API mounts their simulators, ``pixwave
sandbox <family>`` runs one — so adding a family is its own packages plus one line in
``gateways/specs.py`` (ADR 17).

A family has one or more **instances**, each a gateway in its own right (routing, health, the
ledger's clearing account, its webhook URL): most families have one, named after the family;
a family such as the Central Bank's standard Pix API has one per bank.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import httpx
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pixwave.db import utcnow
from pixwave.gateways.fees import FeeSchedule
from pixwave.gateways.http import Timeouts

if TYPE_CHECKING:
    from pixwave.config import Settings
    from pixwave.gateways.base import PixGateway
    from pixwave.sandbox.core import Simulator

Clock = Callable[[], datetime]

#: A gateway's name: lower-case, as it appears in URLs, metrics and account codes.
GATEWAY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_NULLISH = {"", "null", "none"}


class ProviderSettings(BaseSettings):
    """Base of a family's settings sub-model, read from the same environment and ``.env`` as
    :class:`~pixwave.config.Settings`, with the same rule: a setting that may be absent
    (default None) reads ``null`` or an empty value as absent, as Laravel ``.env`` files write.

    Credentials are ``SecretStr``, so they never reach a log line or ``repr`` by accident.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _strip_null(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if (
            isinstance(value, str)
            and field is not None
            and field.default is None
            and value.strip().lower() in _NULLISH
        ):
            return None
        return value

    fees: str | None = Field(
        default=None,
        description="What this gateway charges, e.g. `charge=0+99bp,send=25` (centavos + basis "
        "points per operation): breaks ties between gateways of equal health.",
    )

    @field_validator("fees")
    @classmethod
    def _fees(cls, value: str | None) -> str | None:
        FeeSchedule.parse(value)  # ValueError: the message says what is wrong
        return value

    @property
    def fee_schedule(self) -> FeeSchedule:
        return FeeSchedule.parse(self.fees)

    def credentials(self) -> Mapping[str, object | None]:
        """The variables this gateway needs to be real, by their environment names, with their
        values: all set, the gateway is real; any set, the operator meant it to be real."""
        return {}


SettingsT = TypeVar("SettingsT", bound=ProviderSettings)


@dataclass(frozen=True, slots=True)
class Instance(Generic[SettingsT]):
    """One gateway of a family: its name and its own settings (its family is its spec's)."""

    name: str
    settings: SettingsT

    def credential_variables(self) -> list[str]:
        """The credential variables that are set (even partially)."""
        return [name for name, value in self.settings.credentials().items() if value]

    def is_configured(self) -> bool:
        credentials = self.settings.credentials()
        return bool(credentials) and all(credentials.values())


@dataclass(frozen=True, slots=True)
class Common:
    """What every connector takes from the process-wide settings."""

    timeouts: Timeouts
    transport: httpx.AsyncBaseTransport | None = None
    #: The simulator's movable clock when there is one, so expiry and webhook timestamps agree.
    clock: Clock = utcnow

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utcnow,
    ) -> Common:
        return cls(
            timeouts=Timeouts(
                connect=settings.gateway_connect_timeout, read=settings.gateway_read_timeout
            ),
            transport=transport,
            clock=clock,
        )


@dataclass(frozen=True, slots=True)
class SandboxFlag:
    field: str
    default: bool
    help: str


class GatewaySpec(abc.ABC, Generic[SettingsT]):
    """A gateway family: how to configure, build, simulate and hear from it."""

    #: The family's name: ``pixwave sandbox <family>``, the single instance's default name.
    family: ClassVar[str]
    #: How people write it, for help texts and logs.
    title: ClassVar[str]
    settings_model: ClassVar[type[ProviderSettings]]
    #: Paths under ``/webhooks/<gateway>`` its notifications arrive on ("" is the bare URL).
    webhook_paths: ClassVar[tuple[str, ...]] = ("",)
    #: Its notifications as the OpenAPI document shows them (``parameters`` and
    #: ``requestBody``, as an ``openapi_extra``): the generic webhook route merges every
    #: family's into one description.
    notification_doc: ClassVar[Mapping[str, Any]] = {}
    #: Default port of ``pixwave sandbox <family>``.
    sandbox_port: ClassVar[int] = 9000
    #: One line on what its simulator answers, for ``pixwave sandbox --help``.
    sandbox_summary: ClassVar[str] = ""
    #: Boolean options of ``pixwave sandbox <family>``: ``--<name>/--no-<name>`` set a field of
    #: the simulator's configuration.
    sandbox_flags: ClassVar[Mapping[str, SandboxFlag]] = {}
    #: The simulator's fault-injection operation for each kind of call (``charge``, ``send``,
    #: ``refund`` …), so shared tests and tools can break "the charge call" of any family.
    simulator_operations: ClassVar[Mapping[str, str]] = {}

    def instances(self) -> list[Instance[SettingsT]]:
        """This deployment's instances; one named after the family unless overridden."""
        return [Instance(self.family, self.load_settings())]

    def sandbox_instance(self, name: str | None = None) -> Instance[SettingsT]:
        """An instance for a standalone simulator and its connector, named after the family
        unless told otherwise."""
        return Instance(name or self.family, self.load_settings())

    def load_settings(self) -> SettingsT:
        """The family's settings from the environment (and ``.env``)."""
        return cast(SettingsT, self.settings_model())

    def endpoints(self, instance: Instance[SettingsT]) -> list[str]:
        """The URLs a real connector of ``instance`` calls (checked for TLS in production)."""
        return []

    @abc.abstractmethod
    def build(self, instance: Instance[SettingsT], common: Common) -> PixGateway:
        """The real connector; raises ValueError on unusable settings."""

    @abc.abstractmethod
    def build_simulated(
        self, instance: Instance[SettingsT], common: Common, *, url: str
    ) -> PixGateway:
        """A connector holding the simulator's public sandbox credentials, pointed at ``url``."""

    @abc.abstractmethod
    def simulator(
        self,
        instance: Instance[SettingsT] | None = None,
        *,
        public_url: str,
        webhook_url: str | None = None,
        time_scale: float = 1.0,
        **extra: Any,
    ) -> Simulator[Any]:
        """A simulator accepting the credentials :meth:`build_simulated` uses."""

    def simulator_webhook_url(self, api_base: str, gateway: str) -> str | None:
        """Where a simulator of ``gateway`` notifies when a resource names no URL (an
        account-level webhook), given the API's base; None: each charge names it."""
        return None

    def transaction_id(self, resource_id: str) -> str | None:
        """The transaction a notification's resource id derives from, when the provider's id
        is our reference in another spelling; None: only the stored charge id matches."""
        return None


def valid_gateway_name(name: str) -> str:
    if not GATEWAY_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a usable gateway name: lower-case letters, digits and _, starting "
            "with a letter, at most 32 characters"
        )
    return name
