"""HTTP routes: the Stripe API (``/v1``) and the test-control API (``/_fake``)."""
