"""A stateful simulator of Mercado Pago's Payments API for Pix (reference §1 and §6).

The official ``mercadopago`` SDK pointed at it just works: ``POST /v1/payments`` answers a
pending payment whose ``qr_code`` is a valid static BR Code (key, amount, and the txid
``mpqrinter{id}`` that real MP codes carry); ``/_sandbox/pay`` pays it as a payer's bank would;
refunds, cancellation and expiry (on the simulated clock) follow MP's statuses; notifications
are signed exactly as MP signs them. Pay-outs (``/v1/transaction-intents``) follow MP's Money Out
request; its response shape and statuses are not public, so the simulator's (``pending`` →
``approved`` | ``rejected``, ``end_to_end_id``) are an assumption shared with PixWave's connector.
"""

from pixwave.sandbox.mercadopago.config import MercadoPagoSimConfig
from pixwave.sandbox.mercadopago.simulator import MercadoPagoSimulator

__all__ = ["MercadoPagoSimConfig", "MercadoPagoSimulator"]
