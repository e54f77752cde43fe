"""Build simulators for `pixwave sandbox …` and for mounting inside the embedded API.

The pure demo (`pixwave up` with no gateway credentials) and ``SANDBOX_GATEWAYS=true`` mount
each simulator under ``/sandbox/<name>`` of the API itself and point the connectors there over
loopback HTTP, so `make run` needs no other process. Which gateways are simulated, and which
mixes are refused, is the registry's :func:`simulated_gateways`.

Whoever drives a simulator's ``/_sandbox`` routes can pay charges and take the gateway down,
so when mounted they answer only an **admin token** of this API (401 without one, 403 for a
user's); the provider's own routes stay open to the connectors, as at the real provider.

State lives in that one process: with several API workers, run the simulators as their own
servers (`pixwave sandbox <family> --port N`) and point the connectors at them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from pixwave.accounts.auth import authenticate, bearer_token, require_admin
from pixwave.config import Settings
from pixwave.gateways.registry import configured, simulated_gateways
from pixwave.gateways.specs import SPECS
from pixwave.sandbox.core import ControlGuard, Simulator

#: Where the embedded API mounts the simulators.
MOUNT_PREFIX = "/sandbox"


def build_simulator(
    name: str,
    *,
    public_url: str,
    webhook_url: str | None = None,
    time_scale: float = 1.0,
    **extra: Any,
) -> Simulator[Any]:
    """A simulator of gateway ``name`` (or of family ``name``), accepting the credentials its
    spec's sandbox connector uses."""
    for entry in configured():
        if entry.name == name:
            spec, instance = entry.spec, entry.instance
            break
    else:
        families = {spec.family: spec for spec in SPECS}
        if name not in families:
            raise ValueError(f"no simulator named {name!r} ({', '.join(families)})")
        spec, instance = families[name], None
    return spec.simulator(
        instance, public_url=public_url, webhook_url=webhook_url, time_scale=time_scale, **extra
    )


def internal_base_url(settings: Settings, port: int | None = None) -> str:
    """How this process reaches its own mounted simulators (loopback, never 0.0.0.0)."""
    host = settings.host if settings.host not in {"0.0.0.0", "::", ""} else "127.0.0.1"  # noqa: S104
    return f"http://{host}:{port or settings.port}{MOUNT_PREFIX}"


@dataclass(frozen=True, slots=True)
class ServedAddress:
    """Where a running `pixwave up` serves (and so where its simulators are), kept in the data
    directory while it runs: a command started in another shell — `pixwave reconcile` after
    ``PORT=8765 make run`` — reaches the same simulators without being told the port again."""

    host: str
    port: int
    pid: int

    @staticmethod
    def path(settings: Settings) -> Path:
        return settings.data_dir / "pixwave-up.json"

    @classmethod
    @contextmanager
    def recorded(cls, settings: Settings, *, host: str, port: int) -> Iterator[None]:
        """Record this process's address for as long as the block runs."""
        path = cls.path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)

    @classmethod
    def running(cls, settings: Settings) -> ServedAddress | None:
        """The address of a `pixwave up` that is still alive, or None."""
        try:
            data = json.loads(cls.path(settings).read_text())
            address = cls(host=str(data["host"]), port=int(data["port"]), pid=int(data["pid"]))
            os.kill(address.pid, 0)  # signal 0: only asks whether the process exists
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return address

    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"host": self.host, "port": self.port})


def admin_guard(api: FastAPI) -> ControlGuard:
    """The rule for mounted simulators' ``/_sandbox`` routes: an admin token of ``api``."""

    async def guard(request: Request) -> None:
        token = bearer_token(request.headers.get("authorization"))
        require_admin(await authenticate(api.state.resources, token))

    return guard


def mount_simulators(app: FastAPI, settings: Settings) -> dict[str, Simulator[Any]]:
    """Mount a simulator for every simulated gateway; return them by name. Raises the
    registry's GatewayModeError for a configuration that mixes them with real gateways."""
    mounted: dict[str, Simulator[Any]] = {}
    loopback = internal_base_url(settings).removesuffix(MOUNT_PREFIX)
    guard = admin_guard(app)
    simulated = simulated_gateways(settings)
    for entry in configured():
        name = entry.name
        if name not in simulated:
            continue
        simulator = entry.spec.simulator(
            entry.instance,
            public_url=f"{settings.public_url}{MOUNT_PREFIX}/{name}",
            # Where an account-level webhook points (None: each charge names its URL).
            webhook_url=entry.spec.simulator_webhook_url(loopback, name),
            time_scale=settings.sandbox_time_scale,
        )
        simulator.control_guard = guard
        app.mount(f"{MOUNT_PREFIX}/{name}", simulator.app())
        mounted[name] = simulator
    return mounted
