"""`GET /metrics`: Prometheus text for this API process (or, in multiprocess mode, for every
process on its host), behind the rule of :func:`~pixwave.observability.metrics.check_scrape`.

Kept out of the OpenAPI document: it is for the scraper, not for API clients.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder

from pixwave.config import Settings, get_settings
from pixwave.observability.metrics import check_scrape, refresh, registry

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Values read from shared state (gateways, job queue, unfinished payments) are refreshed
    first, at most every few seconds, so any API process answers with the cluster's view."""
    resources = getattr(request.app.state, "resources", None)
    settings: Settings = getattr(resources, "settings", None) or get_settings()
    refusal = check_scrape(settings, request.headers.get("authorization"))
    if refusal is not None:
        raise refusal
    if resources is not None:
        await refresh(resources)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry()), media_type=content_type)
