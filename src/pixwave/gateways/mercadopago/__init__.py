"""Mercado Pago: Pix cash-in over the Payments API, refunds, Money Out pay-outs, webhooks."""

from pixwave.gateways.mercadopago.connector import MercadoPagoConnector

__all__ = ["MercadoPagoConnector"]
