"""Pure rules of provisioning: the state machine and how panel failures are classified. No I/O."""
