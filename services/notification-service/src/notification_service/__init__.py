"""notification-service: tells customers, by e-mail, every moment of their order and rental that matters."""
