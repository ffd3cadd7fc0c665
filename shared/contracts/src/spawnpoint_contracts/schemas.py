"""JSON Schema generation for every event version: ``python -m spawnpoint_contracts.schemas <dir>``.

The generated files are committed under ``shared/contracts/schemas/``; a test regenerates them and
fails when they differ, so a change to a wire model is always a visible, reviewed change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .registry import ALL_EVENTS


def schema_files() -> dict[str, str]:
    """File name -> pretty JSON Schema text, one per event version (``order.paid.v1.json``)."""
    files: dict[str, str] = {}
    for cls in ALL_EVENTS:
        schema = cls.model_json_schema(mode="validation")
        schema["$id"] = f"urn:spawnpoint:event:{cls.routing_key}"
        files[f"{cls.routing_key}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in schema_files().items():
        (directory / name).write_text(text)


if __name__ == "__main__":
    write(Path(sys.argv[1] if len(sys.argv) > 1 else "shared/contracts/schemas"))
