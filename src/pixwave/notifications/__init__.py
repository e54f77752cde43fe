"""Domain events: the transactional outbox (and, later, its relay to SNS and webhooks)."""
