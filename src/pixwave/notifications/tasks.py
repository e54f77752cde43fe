"""Periodic jobs of the outbox: the relay (every second by default) and the retention purge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixwave.notifications import relay
from pixwave.worker.jobs import periodic

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

RELAY = "notifications.relay"
PURGE = "notifications.purge"


@periodic(RELAY, "outbox_relay_interval_seconds")
async def relay_events(resources: JobContext) -> None:
    await relay.relay(resources)


@periodic(PURGE, "outbox_purge_interval_seconds")
async def purge_events(resources: JobContext) -> None:
    await relay.purge(resources)
