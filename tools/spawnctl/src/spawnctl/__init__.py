"""``spawnctl``: the operator's command line for every Spawnpoint service (see ``cli.py``)."""
