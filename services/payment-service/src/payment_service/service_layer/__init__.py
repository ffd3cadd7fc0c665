"""Use cases and handlers of payment-service: opening a checkout, storing webhooks, applying stored events,
one idempotent fulfilment, refunds, reconciliation. All of them work through the unit of work."""
