"""notification-service's Prometheus metrics (served on ``/metrics`` with the shared HTTP ones).

- ``notification_emails_sent_total{kind}``: e-mails the SMTP server accepted (counted once committed).
- ``notification_emails_failed_total{kind,failure}``: attempts that failed, by class: ``transient`` (a 4xx),
  ``connection`` (no SMTP answer), ``permanent`` (a 5xx: dead-lettered), ``exhausted`` (retries used up:
  dead-lettered), ``panel`` (the connect address could not be read), ``no_contact`` (the order is unknown yet).
- ``notification_emails_deferred_total{reason}``: e-mails held back by the per-recipient rate limit.
- ``notification_emails_suppressed_total{kind}``: optional e-mails the customer turned off.
- ``notification_queue_age_seconds``: the age of the oldest e-mail not sent yet (0 when none waits).
- ``notification_queue_depth``: e-mails not sent yet.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SENT = Counter("notification_emails_sent_total", "E-mails the SMTP server accepted", ["kind"])
FAILED = Counter("notification_emails_failed_total", "E-mail attempts that failed, by class", ["kind", "failure"])
DEFERRED = Counter("notification_emails_deferred_total", "E-mails held back", ["reason"])
SUPPRESSED = Counter("notification_emails_suppressed_total", "Optional e-mails the customer turned off", ["kind"])
QUEUE_AGE = Gauge("notification_queue_age_seconds", "Age of the oldest e-mail not sent yet")
QUEUE_DEPTH = Gauge("notification_queue_depth", "E-mails not sent yet")
