"""Messaging written once for every service: topology, the outbox relay, the inbox, consumers, DLQ tools."""
