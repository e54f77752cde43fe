"""Balances, statements, internal transfers and operator adjustments."""
