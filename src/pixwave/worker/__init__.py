"""Background jobs: the broker, job registration, after-commit enqueueing, the scheduler."""
