"""Gateway jobs: probe gateways whose circuit is open, so they come back with no traffic, and
report each change of a gateway's state once.

The job runs on whichever worker takes it, every ``PROBE_INTERVAL_SECONDS``, kicked by the one
scheduler leader; the last reported states live in the health store (Redis for a cluster), so
no worker or leader needs to remember them.
"""

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
    # After the probes, so that a gateway they brought back is reported up in the same run.
    await resources.router.report_state_changes()
