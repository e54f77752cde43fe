"""Operator webhooks: PixWave's events, signed the Standard Webhooks way, to URLs operators
register (see docs/webhooks.md)."""
