"""Gateway jobs: probe gateways whose circuit is open, so they come back with no traffic."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from pixwave.worker.jobs import periodic

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.gateways")

PROBE = "gateways.probe"


@periodic(PROBE, interval_setting="probe_interval_seconds")
async def probe(resources: Resources) -> None:
    results = await resources.router.probe_open_circuits()
    if results:
        log.info("gateways.probed", results=results)
