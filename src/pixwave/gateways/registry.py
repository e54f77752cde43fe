"""Which gateways this deployment has, built from the registered specs and the environment.

A gateway is either **real** (its credentials are configured) or **simulated** (it runs against
the built-in simulator mounted in the API, reached over HTTP like the real thing, with the
simulator's own well-known credentials). :func:`simulated_gateways` decides, and refuses every
mix: a simulator lets whoever drives it invent payments, so money credited through one must
never be able to leave through a real gateway of the same process.

Nothing here names a provider: each family's knowledge is in its spec (``gateways/spec.py``),
and ``gateways/specs.py`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from pixwave.config import Settings
from pixwave.db import utcnow
from pixwave.gateways.base import PixGateway
from pixwave.gateways.spec import Common, GatewaySpec, Instance
from pixwave.gateways.specs import SPECS

log = structlog.get_logger("pixwave.gateways")

Clock = Callable[[], datetime]


class GatewayModeError(ValueError):
    """The configuration mixes real gateways and simulators, or asks production for one."""


@dataclass(frozen=True, slots=True)
class Configured:
    """One gateway of this deployment: its family's spec and its instance."""

    spec: GatewaySpec[Any]
    instance: Instance[Any]

    @property
    def name(self) -> str:
        return self.instance.name


def configured() -> list[Configured]:
    """Every gateway instance the specs find in the environment, in default priority order.

    Raises ValueError when two instances share a name (each name is one gateway's health,
    routing and clearing account)."""
    found: list[Configured] = []
    for spec in SPECS:
        found.extend(Configured(spec, instance) for instance in spec.instances())
    names = [entry.name for entry in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"gateway names must be unique; repeated: {', '.join(duplicates)}")
    return found


def gateway_names() -> list[str]:
    return [entry.name for entry in configured()]


def find(name: str) -> Configured:
    """The configured gateway called ``name``; KeyError when there is none."""
    for entry in configured():
        if entry.name == name:
            return entry
    raise KeyError(name)


def simulated_gateways(settings: Settings) -> list[str]:
    """The gateways that run against a mounted simulator; raises :class:`GatewayModeError`.

    * ``SANDBOX_GATEWAYS=true``: every gateway is simulated — refused with ``APP_ENV=production``
      and refused when any gateway's credentials are set (a real gateway and a simulator never
      share a process);
    * ``SANDBOX_GATEWAYS=false``, or ``APP_ENV=production``: none;
    * unset: every gateway in the pure demo (no credentials at all), otherwise none — a
      gateway without credentials beside a real one is left out, never simulated.
    """
    production = settings.is_production
    entries = configured()
    credentials = [v for entry in entries for v in entry.instance.credential_variables()]
    if settings.sandbox_gateways is True:
        if production:
            raise GatewayModeError(
                "SANDBOX_GATEWAYS=true is refused with APP_ENV=production: a simulator lets "
                "whoever drives it invent payments. Unset SANDBOX_GATEWAYS, or use another APP_ENV."
            )
        if credentials:
            raise GatewayModeError(
                "SANDBOX_GATEWAYS=true, but gateway credentials are set "
                f"({', '.join(credentials)}): a real gateway and a simulator never run in one "
                "process. Unset SANDBOX_GATEWAYS to use the real gateways, or unset the "
                "credentials for a demo; point the connectors at standalone simulators "
                "(`pixwave sandbox <gateway>`, its *_BASE_URL) to test with both."
            )
        return [entry.name for entry in entries]
    if settings.sandbox_gateways is False or production or credentials:
        return []
    return [entry.name for entry in entries]


def build_gateway(
    name: str,
    settings: Settings,
    *,
    sandbox_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = utcnow,
) -> PixGateway:
    """One connector; ``sandbox_url`` (the simulator's base URL) selects the simulator.

    ``clock`` is the simulator's (movable) clock when there is one, so that expiry and webhook
    timestamps agree between the two sides. Raises KeyError for an unknown name, ValueError on
    unusable configuration.
    """
    entry = find(name)
    common = Common.from_settings(settings, transport=transport, clock=clock)
    if sandbox_url is not None:
        return entry.spec.build_simulated(entry.instance, common, url=sandbox_url)
    return entry.spec.build(entry.instance, common)


def build_gateways(
    settings: Settings,
    *,
    sandbox_base_url: str | None,
    clocks: Mapping[str, Clock] | None = None,
) -> dict[str, PixGateway]:
    """Every usable gateway by name. ``sandbox_base_url`` is where the simulators are mounted
    (``…/sandbox``); ``clocks`` their clocks. A gateway with neither credentials nor a
    simulator, or with unusable settings (an https host without its certificate), is left out
    with an error in the log rather than failing every other command; a mix of real and
    simulated gateways raises :class:`GatewayModeError`."""
    gateways: dict[str, PixGateway] = {}
    clocks = clocks or {}
    simulated = simulated_gateways(settings)
    for entry in configured():
        name = entry.name
        common = Common.from_settings(settings, clock=clocks.get(name, utcnow))
        try:
            if name in simulated:
                if sandbox_base_url is None:
                    log.warning("gateway.disabled", gateway=name, reason="no simulator available")
                    continue
                url = f"{sandbox_base_url.rstrip('/')}/{name}"
                gateways[name] = entry.spec.build_simulated(entry.instance, common, url=url)
                log.warning(
                    "gateway.simulated",
                    gateway=name,
                    detail="a built-in simulator, not the real provider: its money is not real",
                )
            elif entry.instance.is_configured():
                if settings.is_production:
                    _require_tls(entry)
                gateways[name] = entry.spec.build(entry.instance, common)
            else:
                log.warning("gateway.disabled", gateway=name, reason="no credentials configured")
        except ValueError as exc:
            log.error("gateway.misconfigured", gateway=name, error=str(exc))
    return gateways


def _require_tls(entry: Configured) -> None:
    """With ``APP_ENV=production`` a real gateway is reached over https only: plain http would
    carry its credentials and every payment in clear (a simulator on another host, say)."""
    plain = [url for url in entry.spec.endpoints(entry.instance) if not url.startswith("https://")]
    if plain:
        raise ValueError(
            f"{entry.name} would be called over plain http ({', '.join(plain)}); "
            "APP_ENV=production requires https"
        )
