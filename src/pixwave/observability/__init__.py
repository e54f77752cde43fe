"""Logs (ECS JSON), metrics and request ids."""
