"""The gateway families this build knows: the one list that names them (ADR 17).

Everything else iterates over it. A new family is a package under ``gateways/`` (and its
simulator under ``sandbox/``) plus one line here: see "Adding a gateway" in docs/gateways.md.
"""

from __future__ import annotations

from typing import Any, Final

from pixwave.gateways.efi.spec import EFI
from pixwave.gateways.mercadopago.spec import MERCADOPAGO
from pixwave.gateways.pixapi.spec import PIXAPI
from pixwave.gateways.spec import GatewaySpec

#: In the operator's default priority order (the first is tried first at equal health).
SPECS: Final[tuple[GatewaySpec[Any], ...]] = (MERCADOPAGO, EFI, PIXAPI)
