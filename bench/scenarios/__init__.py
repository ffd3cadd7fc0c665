"""The five scenarios of ``make bench``; each is runnable alone (``python -m bench <name>``)."""
