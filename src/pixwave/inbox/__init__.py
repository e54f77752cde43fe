"""Webhooks from gateways: verified, stored once by provider event id, handled by a job."""
