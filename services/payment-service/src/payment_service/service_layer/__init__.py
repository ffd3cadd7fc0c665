"""Use cases of payment-service: opening a checkout, recording webhooks, one idempotent fulfilment."""
