"""Pure rules of the customer-facing status: the projection. No I/O."""
