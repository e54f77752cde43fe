"""Sandbox-only routes of the Efí simulator: the standard's (``sandbox/pixapi/payer.py``) plus
what the receiver's PSP does to a send.

```
POST /_sandbox/pay                     a payer's bank app pays a BR Code
POST /_sandbox/sends/{idEnvio}/settle  the receiver's PSP accepts a send  → REALIZADO
POST /_sandbox/sends/{idEnvio}/reject  … or refuses it {"reason"?}        → NAO_REALIZADO
POST /_sandbox/tokens/revoke           every OAuth token stops working (test refresh-on-401)
```

They answer in the admin routes' ``{"error", "message"}`` shape, never in Efí's: no client of
the real API ever sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pixwave.sandbox.pixapi.payer import build_sandbox_router as standard_sandbox_router
from pixwave.sandbox.pixapi.payer import error, parse_input

if TYPE_CHECKING:
    from pixwave.sandbox.efi.simulator import EfiSimulator


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=140)


def build_sandbox_router(sim: EfiSimulator) -> APIRouter:
    router = standard_sandbox_router(sim)

    async def finish(id_envio: str, request: Request, *, succeed: bool) -> JSONResponse:
        sim.run_due()
        try:
            body = await parse_input(RejectIn, request, empty_ok=True)
        except ValueError as exc:
            return error(422, "invalid", str(exc))
        send = sim.state.sends.get(id_envio)
        if send is None:
            return error(404, "send_not_found", f"no send with idEnvio {id_envio}")
        if send.final:
            return error(409, "send_final", f"the send is already {send.status}")
        sim.finish_send(send, succeed=succeed, reason=body.reason)
        return JSONResponse(send.wire())

    @router.post("/sends/{id_envio}/settle")
    async def settle(id_envio: str, request: Request) -> JSONResponse:
        """The receiver's PSP credits the send: REALIZADO, webhook."""
        return await finish(id_envio, request, succeed=True)

    @router.post("/sends/{id_envio}/reject")
    async def reject(id_envio: str, request: Request) -> JSONResponse:
        """The receiver's PSP refuses the send: NAO_REALIZADO with the reason, webhook."""
        return await finish(id_envio, request, succeed=False)

    return router
