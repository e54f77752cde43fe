"""The standard's notifications as PixWave's OpenAPI document shows them.

The webhook routes read the raw body (authentication works on the request as sent), so FastAPI
cannot infer these shapes; they are written here, beside the parser they describe
(``webhooks.py``), and Efí's document (``gateways/efi/openapi.py``) extends them.
"""

from __future__ import annotations

from typing import Any, Final

AMOUNT: Final = {"type": "string", "pattern": r"^\d{1,10}\.\d{2}$", "examples": ["10.50"]}

#: A refund inside an item (``devolucoes[]``), once final.
DEVOLUCAO: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["id", "status", "valor"],
    "properties": {
        "id": {"type": "string"},
        "rtrId": {"type": "string"},
        "valor": AMOUNT,
        "status": {"type": "string", "enum": ["EM_PROCESSAMENTO", "DEVOLVIDO", "NAO_REALIZADO"]},
        "horario": {"type": "object"},
    },
}


def item_properties() -> dict[str, Any]:
    """The properties of one ``Pix`` item that ``webhooks.py`` reads (a fresh copy)."""
    return {
        "endToEndId": {"type": "string", "pattern": "^[A-Za-z0-9]{1,35}$"},
        "txid": {
            "type": "string",
            "description": "Our charge; absent for a Pix to a static QR Code, which names no "
            "charge and is ignored.",
        },
        "valor": AMOUNT,
        "chave": {"type": "string"},
        "horario": {"type": "string", "format": "date-time"},
        "infoPagador": {"type": "string"},
        "devolucoes": {"type": "array", "items": DEVOLUCAO},
    }


EXAMPLE: Final[dict[str, Any]] = {
    "pix": [
        {
            "endToEndId": "E12345678202406201221abcdef123456",
            "txid": "txn01J0Z3W6Q8R2T4V6X8Z0B2D4F6",
            "chave": "2c3f5e9a-7b1d-4a8e-9f6c-1d2e3f4a5b6c",
            "valor": "10.50",
            "horario": "2024-06-20T12:21:00.000Z",
        }
    ]
}


def body(properties: dict[str, Any], example: dict[str, Any], description: str) -> dict[str, Any]:
    """A ``{"pix": [item]}`` request body with these item properties."""
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": description,
                    "properties": {
                        "pix": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["endToEndId"],
                                "properties": properties,
                            },
                        }
                    },
                },
                "example": example,
            }
        },
    }


#: The ``openapi_extra`` of the routes that receive a bank's notifications: received Pix (by
#: ``txid``) and refunds of them (``devolucoes``), accepted or rejected whole.
NOTIFICATION: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": "hmac",
            "in": "query",
            "required": False,
            "description": "The secret registered with the URL (`…/webhooks/<bank>?hmac=<secret>"
            "&ignorar=`, PIXAPI_<BANK>_WEBHOOK_HMAC). Not needed when an ingress verified the "
            "bank's client certificate and says so in PIXAPI_<BANK>_WEBHOOK_MTLS_HEADER.",
            "schema": {"type": "string"},
        },
        {
            "name": "ignorar",
            "in": "query",
            "required": False,
            "description": "Absorbs the `/pix` the bank appends to the registered URL; ignored.",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": body(
        item_properties(),
        EXAMPLE,
        "The Central Bank's callback body (`WebhookPixBody`). A body without `pix` (a "
        "registration probe) is acknowledged and carries no event.",
    ),
}
