"""Sandbox-only routes: what the outside world does to an API Pix account.

```
POST /_sandbox/pay             a payer's bank app pays a BR Code
POST /_sandbox/tokens/revoke   every OAuth token stops working (test refresh-on-401)
```

They answer in the admin routes' ``{"error", "message"}`` shape, never in the provider's: no
client of the real API ever sees them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixwave.pix import BRCodeKind, PixFormatError, parse_brcode, validate_document
from pixwave.sandbox.core import NOTHING_TO_PAY
from pixwave.sandbox.pixapi.errors import InvalidInput
from pixwave.sandbox.pixapi.schemas import load_json
from pixwave.sandbox.pixapi.state import Payer

if TYPE_CHECKING:
    from pixwave.sandbox.pixapi.simulator import PixSimulator

#: The payer's bank when the test names none (an all-zero ISPB is shape-valid and obviously fake).
PAYER_ISPB = "00000000"
DEFAULT_PAYER_NAME = "PAGADOR SANDBOX"

InputT = TypeVar("InputT", bound=BaseModel)


class PayerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    document: str | None = Field(default=None, description="CPF or CNPJ of the payer.")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    brcode: str = Field(min_length=1, max_length=512)
    payer: PayerIn | None = None
    info: str | None = Field(default=None, max_length=140)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def parse_input(model: type[InputT], request: Request, *, empty_ok: bool) -> InputT:
    """A sandbox route's JSON body; ValueError (answered 422) when it is not one."""
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return model.model_validate({})
    try:
        return model.model_validate(load_json(raw))
    except InvalidInput:
        raise ValueError("the body is not valid JSON") from None
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


def _payer(given: PayerIn | None) -> Payer:
    name = (given.name if given is not None else None) or DEFAULT_PAYER_NAME
    if given is None or given.document is None:
        return Payer(name=name, document_kind=None, document=None, ispb=PAYER_ISPB)
    kind, document = validate_document(given.document)
    return Payer(name=name, document_kind=kind, document=document, ispb=PAYER_ISPB)


def build_sandbox_router(sim: PixSimulator[Any, Any]) -> APIRouter:
    router = APIRouter()

    @router.post("/pay")
    async def pay(request: Request) -> JSONResponse:
        """Pay a BR Code the way a payer's bank does: read it, find the charge, settle."""
        sim.run_due()
        try:
            body = await parse_input(PayIn, request, empty_ok=False)
        except ValueError as exc:
            return error(422, "invalid", str(exc))
        try:
            code = parse_brcode(body.brcode.strip())
            payer = _payer(body.payer)
        except PixFormatError as exc:
            return error(422, exc.code.value, exc.message)
        if code.kind is BRCodeKind.RECURRENCE:
            return error(422, "nothing_to_pay", NOTHING_TO_PAY)
        cob = sim.cob_for_payment(location=code.location_url, txid=code.txid)
        if cob is None:
            return error(404, "charge_not_found", "no charge of this account matches the code")
        if cob.status != "ATIVA":
            return error(409, "charge_not_active", f"the charge is {cob.status}")
        if cob.expired(sim.clock.now()):
            return error(409, "charge_expired", "the charge expired; it can no longer be paid")
        pix = sim.receive(cob, payer, body.info)
        return JSONResponse(
            {
                "gateway": sim.gateway,
                "charge_id": cob.txid,
                "end_to_end_id": pix.e2e_id,
                "status": cob.status,
                "amount": pix.amount,
            }
        )

    @router.post("/tokens/revoke")
    async def revoke() -> dict[str, int]:
        """Invalidate every OAuth token, so the next API call gets 401."""
        return {"revoked": sim.tokens.revoke_all()}

    return router
