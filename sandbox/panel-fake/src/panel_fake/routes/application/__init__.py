"""``/api/application``: the admin API the provisioner uses."""

from __future__ import annotations

from panel_fake.router import Route
from panel_fake.routes.application import locations, nests, nodes, servers, users

# Registration order of routes/api-application.php: users, nodes, locations, servers, nests.
ROUTES: list[Route] = [
    *users.ROUTES,
    *nodes.ROUTES,
    *locations.ROUTES,
    *servers.ROUTES,
    *nests.ROUTES,
]
