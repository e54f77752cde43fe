"""Pix gateways: the connector protocol, the error tree, and one sub-package per provider."""
