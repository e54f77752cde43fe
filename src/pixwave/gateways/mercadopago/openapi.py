"""Mercado Pago's notifications as PixWave's OpenAPI document shows them.

The webhook routes read the raw body (the signature check works on the bytes as sent), so
FastAPI cannot infer these shapes; they are written here, beside the parser they describe, and
a change to what `webhooks.py` reads should change them too.
"""

from __future__ import annotations

from typing import Any, Final

_ID: Final = {"oneOf": [{"type": "integer"}, {"type": "string"}]}

#: The `openapi_extra` of the route that receives them: headers, query and body, as
#: `webhooks.py` reads them. MP signs `data.id` (query), `x-request-id` and a timestamp, not the
#: body, so the body's `data.id` must equal the signed one.
NOTIFICATION: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": "x-signature",
            "in": "header",
            "required": True,
            "description": "`ts=<unix time>,v1=<hex HMAC-SHA256>` of the manifest "
            "`id:{data.id};request-id:{x-request-id};ts:{ts};`, keyed with the webhook secret.",
            "schema": {"type": "string"},
            "example": "ts=1704908010,v1=618c85345248dd820d5fd456117c2ab2"
            "ef8eda45a0282ff693eac24131a5e839",
        },
        {
            "name": "x-request-id",
            "in": "header",
            "required": False,
            "description": "Signed when present.",
            "schema": {"type": "string"},
        },
        {
            "name": "data.id",
            "in": "query",
            "required": True,
            "description": "The resource the notification is about; signed, and equal to the "
            "body's `data.id`.",
            "schema": {"type": "string"},
        },
        {
            "name": "type",
            "in": "query",
            "required": False,
            "description": "The topic, as in the body.",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "type", "data"],
                    "properties": {
                        "id": {**_ID, "description": "The notification's id (deduplicates)."},
                        "live_mode": {"type": "boolean"},
                        "type": {
                            "type": "string",
                            "description": "`payment` (a charge) or `transaction_intent` (a "
                            "send); other topics are acknowledged and ignored.",
                        },
                        "action": {
                            "type": "string",
                            "description": "`payment.created` is acknowledged and ignored.",
                        },
                        "date_created": {"type": "string", "format": "date-time"},
                        "user_id": _ID,
                        "api_version": {"type": "string"},
                        "data": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": _ID},
                        },
                    },
                },
                "example": {
                    "id": 12345,
                    "live_mode": True,
                    "type": "payment",
                    "date_created": "2024-06-20T10:04:58.396-04:00",
                    "user_id": 44444,
                    "api_version": "v1",
                    "action": "payment.updated",
                    "data": {"id": "999999999"},
                },
            }
        },
    },
}
