"""Efí's notifications as PixWave's OpenAPI document shows them.

The webhook routes read the raw body (the signature check works on the bytes as sent), so
FastAPI cannot infer these shapes; they are written here, beside the parser they describe, and
a change to what `webhooks.py` reads should change them too. The standard's part is
``gateways/pixapi/openapi.py``'s.
"""

from __future__ import annotations

from typing import Any, Final

from pixwave.gateways.pixapi.openapi import body, item_properties


def _item_properties() -> dict[str, Any]:
    """The standard's item, plus a send's ``status`` and Efí's ``gnExtras``."""
    properties = item_properties()
    properties["status"] = {"type": "string", "description": "A send's status (with `gnExtras`)."}
    properties["gnExtras"] = {
        "type": "object",
        "description": "Efí's extension: `idEnvio` marks a Pix we sent; `erro.codigo` says why "
        "it failed.",
        "properties": {
            "idEnvio": {"type": "string"},
            "erro": {"type": "object", "properties": {"codigo": {"type": "string"}}},
        },
    }
    return properties


#: The `openapi_extra` of the routes that receive them, as `webhooks.py` reads them: a batch of
#: received Pix (by `txid`), refunds of them (`devolucoes`) and our own sends
#: (`gnExtras.idEnvio`), accepted or rejected whole.
NOTIFICATION: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": "hmac",
            "in": "query",
            "required": False,
            "description": "The secret registered with the URL (`…/webhooks/efi?hmac=<secret>"
            "&ignorar=`), from Efí's published address. Not needed when an ingress verified "
            "Efí's client certificate and says so in `EFI_WEBHOOK_MTLS_HEADER`.",
            "schema": {"type": "string"},
        },
        {
            "name": "ignorar",
            "in": "query",
            "required": False,
            "description": "Efí's marker of a URL registered without mTLS; ignored.",
            "schema": {"type": "string"},
        },
    ],
    "requestBody": body(
        _item_properties(),
        {
            "pix": [
                {
                    "endToEndId": "E09089356202406201221abcdef123456",
                    "txid": "7978c0c97ea847e78e8849634473c1f1",
                    "chave": "2c3f5e9a-7b1d-4a8e-9f6c-1d2e3f4a5b6c",
                    "valor": "10.50",
                    "horario": "2024-06-20T12:21:00.000Z",
                }
            ]
        },
        'A body without `pix` (Efí\'s registration probe, `{"evento": "teste_webhook"}`) is '
        "acknowledged and carries no event.",
    ),
}
