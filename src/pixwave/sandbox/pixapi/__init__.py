"""A simulator of a bank's standard API Pix (the Central Bank's): cob, pix, devolução, webhook."""

from pixwave.sandbox.pixapi.config import PixAccountConfig, PixApiSimConfig
from pixwave.sandbox.pixapi.simulator import PIXAPI_ROUTES, PixApiSimulator, PixSimulator

__all__ = [
    "PIXAPI_ROUTES",
    "PixAccountConfig",
    "PixApiSimConfig",
    "PixApiSimulator",
    "PixSimulator",
]
