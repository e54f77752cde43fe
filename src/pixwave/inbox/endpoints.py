"""Inbound webhooks from the gateways (no API token: each is authenticated its own way).

One route serves every gateway: ``POST /webhooks/{gateway}`` and, for families whose provider
appends a path to the registered URL (the Central Bank's standard appends ``/pix``),
``POST /webhooks/{gateway}/{path}`` with a path the family's spec declares.

The route reads the raw body, because each provider's signature check and parser
(`gateways/<family>/webhooks.py`) work on the bytes as sent; the document shows the shapes
those parsers read, merged from every registered spec's ``notification_doc``. Any failure to
authenticate *or* to parse is 401 `webhook_rejected`, with a `reason` (`signature_mismatch`,
`hmac_missing`, `invalid_body`, …): nothing of a rejected notification is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from pixwave.exceptions import ServiceUnavailable
from pixwave.gateways.base import InboundWebhook
from pixwave.gateways.errors import WebhookRejected
from pixwave.gateways.spec import GatewaySpec
from pixwave.gateways.specs import SPECS
from pixwave.inbox import service
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.resources import Resources

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=PixWaveRoute)

#: 401 for a notification that fails its check, 404 for a gateway this deployment lacks (or a
#: path its family does not use), 503 when it cannot be stored (the provider retries).
_RECEIVE = problems(WebhookRejected, service.GatewayNotConfigured, ServiceUnavailable)


def merged_doc(specs: Iterable[GatewaySpec[Any]]) -> dict[str, Any]:
    """One ``openapi_extra`` for every family: each parameter (optional here, since each
    applies to one family) and each body shape in an ``anyOf`` (a body may fit several)."""
    parameters: dict[tuple[str, str], dict[str, Any]] = {}
    schemas: list[dict[str, Any]] = []
    examples: dict[str, Any] = {}
    for spec in specs:
        doc = spec.notification_doc
        for parameter in doc.get("parameters", []):
            said = f"{spec.title}: {parameter.get('description', '')}".strip()
            key = (parameter["in"], parameter["name"])
            if key in parameters:  # several families read it: one entry says what each does
                said = f"{parameters[key]['description']}\n\n{said}"
            parameters[key] = {**parameter, "required": False, "description": said}
        body = doc.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "schema" in body:
            schemas.append({**body["schema"], "title": spec.title})
        if "example" in body:
            examples[spec.family] = {"summary": spec.title, "value": body["example"]}
    return {
        "parameters": list(parameters.values()),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"anyOf": schemas}, "examples": examples}},
        },
    }


_DOC = merged_doc(SPECS)

GatewayPath = Annotated[
    str, Path(description="The gateway's name, as in `GET /v1/gateways`.", max_length=32)
]


async def _receive(request: Request, gateway: str, path: str) -> dict[str, int]:
    resources: Resources = request.app.state.resources
    inbound = InboundWebhook(
        body=await request.body(),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        client_ip=request.client.host if request.client else None,
    )
    return {"received": await service.receive(resources, gateway, inbound, path=path)}


@router.post("/{gateway}", responses=_RECEIVE, openapi_extra=_DOC)
async def receive(request: Request, gateway: GatewayPath) -> dict[str, int]:
    """A gateway's notification, verified its provider's way (a signature, an `hmac`
    secret in the registered URL, a client certificate checked by the ingress …).

    Answers how many events were new. A notification that fails its check or does not parse
    is 401 `webhook_rejected` with its `reason`; the provider retries.
    """
    return await _receive(request, gateway, "")


@router.post("/{gateway}/{path}", responses=_RECEIVE, openapi_extra=_DOC)
async def receive_at(
    request: Request,
    gateway: GatewayPath,
    path: Annotated[str, Path(description="What the provider appends (e.g. `pix`).")],
) -> dict[str, int]:
    """The same, where the provider appends a path to the registered URL (`…/pix`)."""
    return await _receive(request, gateway, f"/{path}")
