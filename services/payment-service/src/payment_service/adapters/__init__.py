"""adapters: Stripe, order-service, the webhook signature, the tables and their repositories."""
