"""Use cases of order-service: each runs in one transaction that also stages its events."""
