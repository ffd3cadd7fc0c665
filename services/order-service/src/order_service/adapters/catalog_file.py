"""Loads the operator's catalog file (YAML) into the validated ``Catalog``."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..domain.catalog import Catalog


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalog; a mistake in the file fails the service at start, loudly."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return Catalog.model_validate(data)
