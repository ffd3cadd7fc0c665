"""Pure rules of ordering: the catalog and the order's state machine. No I/O here."""
