"""Gateway jobs: probe gateways whose circuit is open, so they come back with no traffic, and
report each change of a gateway's state once.

The job runs on whichever worker takes it, every ``PROBE_INTERVAL_SECONDS``, kicked by the one
scheduler leader; the last reported states live in the health store (Redis for a cluster), so
no worker or leader needs to remember them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from pixwave.gateways.health import HealthState
from pixwave.notifications import outbox
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import periodic

if TYPE_CHECKING:
    from pixwave.gateways.router import StateChange
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.gateways")

PROBE = "gateways.probe"
GATEWAY_DOWN_ALERT = "alert.gateway_down"


@periodic(PROBE, interval_setting="probe_interval_seconds")
async def probe(resources: JobContext) -> None:
    results = await resources.router.probe_open_circuits()
    if results:
        log.info("gateways.probed", results=results)
    # After the probes, so that a gateway they brought back is reported up in the same run.
    changes = await resources.router.report_state_changes()
    await alert_gateways_down(resources, changes)


async def alert_gateways_down(resources: JobContext, changes: list[StateChange]) -> None:
    """One `alert.gateway_down` event per gateway that went down (its circuit opened, or it
    failed too often in a row): the change is reported once for the cluster, so is the alert."""
    down = [change for change in changes if change.current.state is HealthState.DOWN]
    if not down:
        return
    async with resources.sessionmaker() as session:
        for change in down:
            await outbox.append(
                session,
                event_type=GATEWAY_DOWN_ALERT,
                aggregate_type="gateway",
                aggregate_id=change.gateway,
                payload={
                    "gateway": change.gateway,
                    "previous_state": str(change.previous),
                    "reason": change.current.reason,
                },
            )
        await flush_and_commit(session)
