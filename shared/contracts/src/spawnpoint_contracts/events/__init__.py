"""Every event Spawnpoint publishes, grouped by the aggregate that owns the fact."""
