"""Pure rules of payment: the payment, refund and stored-event state machines, fulfilment's decision, the
refund policy and the checkout-session rules. No I/O."""
