"""Stripe Billing in the stand-in: catalogue, customers, subscriptions, invoices, dunning, test clocks.

The modules are layered so that each only depends on the ones above it in this list: ``models`` and
``periods`` (plain data and calendar arithmetic), ``store`` and ``state`` (where objects live and what
time it is for them), ``lifecycle`` (subscription status changes and their events), ``charging`` and
``invoices`` (money moving), ``dunning`` (what a failed automatic charge leads to), ``subscriptions``
(the API, prorations), ``renewals`` (what happens when a clock passes a due time), and the API
services built on top (``catalog``, ``customers``, ``test_clocks``, ``portal``, ``disputes``,
``refunds``, ``checkout``).
"""
