"""Pure rules of payment: the payment state machine. No I/O."""
