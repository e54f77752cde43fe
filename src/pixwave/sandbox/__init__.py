"""Runnable simulators of the gateways' APIs, stateful and faithful, with fault injection."""
