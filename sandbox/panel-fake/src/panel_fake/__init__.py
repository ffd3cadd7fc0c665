"""Stand-in for the Pterodactyl (and Pelican) panel API, served over real HTTP.

``create_app(PanelConfig(...))`` builds the ASGI app; ``python -m panel_fake`` runs it.
"""

from __future__ import annotations

from panel_fake.app import create_app
from panel_fake.config import PanelConfig

__all__ = ["PanelConfig", "create_app"]
