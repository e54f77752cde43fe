"""The double-entry ledger: the only code that writes entries, balances and holds."""
