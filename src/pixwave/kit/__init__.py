"""Cross-cutting helpers: money, identifiers, pagination, idempotency, locks."""
