"""API keys: who is calling, and what the key may do.

The panel checks, in this order, that the bearer token is a known key (401), that the owner
of an application-API key is a root admin (403), and then per request the key's ACL bit for
the resource (403 "This action is unauthorized."). A *client* key of a root admin passes
every ACL check on the application API; an application key is refused on the client API.
"""

from __future__ import annotations

from dataclasses import dataclass

from panel_fake.config import Flavor
from panel_fake.store import ApiKey, PanelState, User

READ = 1
WRITE = 2

# Pelican keys its permission map by singular resource names.
PELICAN_NAMES = {
    "servers": "server",
    "users": "user",
    "nests": "nest",
    "eggs": "egg",
    "locations": "location",
    "nodes": "node",
    "allocations": "allocation",
    "database_hosts": "database_host",
    "server_databases": "server_database",
}


@dataclass(frozen=True)
class Caller:
    """The authenticated key and its owner."""

    key: ApiKey
    user: User

    @property
    def is_client_key(self) -> bool:
        return self.key.key_type == "account"

    def can(self, resource: str, permission: int) -> bool:
        """``ApplicationApiRequest::authorize``: client keys of admins always pass."""
        if self.is_client_key:
            return True
        return bool(self.key.permissions.get(resource, 0) & permission)

    def can_include(self, resource: str) -> bool:
        """``BaseTransformer::authorize`` for includes (read access to the related resource)."""
        if self.is_client_key:
            return self.user.root_admin
        return bool(self.key.permissions.get(resource, 0) & READ)


def bearer_token(header: str | None) -> str | None:
    """Laravel's ``Request::bearerToken``."""
    if not header:
        return None
    position = header.rfind("Bearer ")
    if position < 0:
        return None
    token = header[position + 7 :]
    if "," in token:
        token = token.split(",", 1)[0]
    return token or None


def authenticate(state: PanelState, header: str | None) -> Caller | None:
    """Find the key for an ``Authorization`` header; ``None`` means 401."""
    token = bearer_token(header)
    if token is None:
        return None
    key = state.api_keys.get(token)
    if key is None:
        return None
    user = state.users.get(key.user_id)
    if user is None:
        return None
    return Caller(key=key, user=user)


def permissions_view(key: ApiKey, flavor: Flavor) -> dict[str, int]:
    """The key's permissions in the flavour's vocabulary (``r_servers`` or ``server``)."""
    if flavor == "pelican":
        return {PELICAN_NAMES.get(name, name): bits for name, bits in key.permissions.items()}
    return {f"r_{name}": bits for name, bits in key.permissions.items()}
