"""mail-fake: a real SMTP server for development that keeps every message it accepts."""
