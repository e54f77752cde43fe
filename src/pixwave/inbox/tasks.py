"""The inbox job: find the payment a notification is about and let the engine look."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from pixwave.inbox import repository
from pixwave.inbox.service import HANDLE
from pixwave.payments import repository as payments
from pixwave.worker.jobs import job

if TYPE_CHECKING:
    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.inbox")


def transaction_id_from_reference(reference: str) -> str | None:
    """Efí ids we derive from a transaction id drop its underscore (``txn01J…``); undo that."""
    for prefix in ("txn",):
        if reference.startswith(prefix) and not reference.startswith(prefix + "_"):
            return f"{prefix}_{reference[len(prefix) :]}"
    return None


@job(HANDLE)
async def handle(resources: Resources, event_row_id: str) -> None:
    async with resources.sessionmaker() as session:
        event = await repository.get(session, event_row_id)
        if event is None or event["processed_at"] is not None:
            return
        transaction_id = await payments.find_by_gateway_reference(
            session, event["gateway"], event["resource_id"]
        )
        if transaction_id is None:
            candidate = transaction_id_from_reference(event["resource_id"])
            if candidate is not None and await payments.exists(session, candidate):
                transaction_id = candidate
    if transaction_id is None:
        log.warning(
            "inbox.unmatched",
            gateway=event["gateway"],
            kind=event["kind"],
            resource_id=event["resource_id"],
        )
    else:
        await resources.payments.advance(transaction_id, poke=True)
    async with resources.sessionmaker() as session:
        await repository.mark_processed(session, event_row_id)
        await session.commit()
