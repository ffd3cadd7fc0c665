"""What the deployment checks share: the workspace's packages and console scripts, a Dockerfile read the way
the builder reads it, and a console script run in-process up to the point where it would start serving."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "deploy" / "schemas"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Member:
    name: str
    path: Path
    dependencies: tuple[str, ...]
    scripts: dict[str, str]


def workspace_members() -> dict[str, Member]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Member] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            if not (folder / "pyproject.toml").is_file():
                continue
            project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
            deps = tuple(_normalise(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) for d in project["dependencies"])
            members[_normalise(project["name"])] = Member(
                project["name"], folder, deps, dict(project.get("scripts", {}))
            )
    return members


def installed_members(package: str) -> set[str]:
    """The workspace packages ``uv sync --package <package>`` installs: it and its workspace dependencies."""
    members = workspace_members()
    seen: set[str] = set()
    todo = [_normalise(package)]
    while todo:
        name = todo.pop()
        if name in seen or name not in members:
            continue
        seen.add(name)
        todo.extend(members[name].dependencies)
    return seen


def console_scripts(package: str) -> dict[str, str]:
    """Console script -> ``module:function`` of every workspace package in ``package``'s install."""
    members = workspace_members()
    scripts: dict[str, str] = {}
    for name in installed_members(package):
        scripts.update(members[name].scripts)
    return scripts


@dataclass
class Stage:
    name: str
    base: str
    args: dict[str, str | None] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str | None = None
    healthcheck: str | None = None
    runs: list[str] = field(default_factory=list)
    workdir: str | None = None


def _exec_or_shell(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        parsed = json.loads(value)
        assert isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)
        return list(parsed)
    return ["/bin/sh", "-c", value]


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    logical = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not logical and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.strip().partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def dockerfile_stages(text: str | None = None) -> dict[str, Stage]:
    """Every stage with what it inherits from the stage it starts from (ENTRYPOINT, CMD, USER, HEALTHCHECK).
    As the builder does, an ENTRYPOINT set in a stage clears the CMD it inherited."""
    text = DOCKERFILE.read_text() if text is None else text
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for index, (keyword, rest) in enumerate(dockerfile_instructions(text)):
        if keyword == "FROM":
            parts = rest.split()
            base = parts[0]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"#{index}"
            parent = stages.get(base)
            current = Stage(name=name, base=base)
            if parent is not None:
                current.entrypoint, current.cmd = parent.entrypoint, parent.cmd
                current.user, current.healthcheck = parent.user, parent.healthcheck
                current.workdir = parent.workdir
                current.runs = list(parent.runs)
            stages[name] = current
            continue
        assert current is not None, f"{keyword} before FROM"
        if keyword == "ARG":
            key, _, default = rest.partition("=")
            current.args[key] = default or None
        elif keyword == "ENTRYPOINT":
            current.entrypoint, current.cmd = _exec_or_shell(rest), None
        elif keyword == "CMD":
            current.cmd = _exec_or_shell(rest)
        elif keyword == "USER":
            current.user = rest
        elif keyword == "HEALTHCHECK":
            current.healthcheck = rest
        elif keyword == "RUN":
            current.runs.append(rest)
        elif keyword == "WORKDIR":
            current.workdir = rest
    return stages


def final_stage(stages: dict[str, Stage], target: str | None) -> Stage:
    return stages[target] if target else list(stages.values())[-1]


def effective_argv(
    stage: Stage, entrypoint: str | Sequence[str] | None, command: str | Sequence[str] | None
) -> list[str]:
    """The argv a container runs: compose's ``entrypoint`` replaces the image's and drops its CMD; compose's
    ``command`` replaces the CMD."""

    def as_list(value: str | Sequence[str]) -> list[str]:
        return shlex.split(value) if isinstance(value, str) else list(value)

    if entrypoint is not None:
        return as_list(entrypoint) + (as_list(command) if command is not None else [])
    head = stage.entrypoint or []
    tail = as_list(command) if command is not None else (stage.cmd or [])
    return head + tail


@dataclass
class Started:
    runs: list[dict[str, Any]] = field(default_factory=list)


def start_in_process(monkeypatch: pytest.MonkeyPatch, target: str, argv: Sequence[str]) -> Started:
    """Run the console script's function with ``argv`` until it calls ``uvicorn.run`` (recorded, not run):
    proves the script accepts exactly these arguments and would start a server."""
    module_name, _, function = target.partition(":")
    started = Started()

    def fake_run(app: Any, **kwargs: Any) -> None:
        started.runs.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(sys, "argv", list(argv))
    monkeypatch.delenv("SPAWNPOINT_MIGRATE_ON_START", raising=False)
    main = getattr(importlib.import_module(module_name), function)
    code: object = None
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None), f"{' '.join(argv)}: exited {code}"
    return started


def load_schema(name: str) -> dict[str, Any]:
    schema = json.loads((SCHEMAS / name).read_text())
    assert isinstance(schema, dict)
    return schema
