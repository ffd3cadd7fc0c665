"""The image's install reproduced without Docker (issue 15, item 1): the build context the Dockerfile's ignore file
leaves, the Dockerfile's own commands (``uv lock`` with no lock file present, as in a fresh clone, then ``uv sync
--locked --no-dev --package <service>``), and each installed service's ``migrate`` run from outside the tree
against a throwaway database: the migrations are found from the image's layout, and the versions installed are
the pinned ones of the development environment."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from spawnpoint_kit.db import drop_database
from tests.system.deploy_support import DOCKERFILE, ROOT

pytestmark = pytest.mark.component

SERVICES = {
    "order-service": "ORDER_DB_URL",
    "payment-service": "PAYMENT_DB_URL",
    "provisioner": "PROVISIONER_DB_URL",
    "status-service": "STATUS_DB_URL",
    "notification-service": "NOTIFICATION_DB_URL",
}
WITHOUT_DATABASE = {"storefront": "storefront", "mail-fake": "sandbox/mail-fake"}
"""Programs with no migrations: their image's install only has to be pinned and carry the console script."""


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".bootstrap" / "bin" / "uv")
    assert Path(found).exists(), "no uv: make install"
    return found


def build_context(target: Path) -> None:
    """Copy the repository as the Dockerfile's ignore file filters it (patterns of the forms it uses)."""
    patterns = [
        p.strip()
        for p in DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def ignored(relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        for pattern in patterns:
            if pattern.startswith("**/") and fnmatch.fnmatch(name, pattern[3:]):
                return True
            if fnmatch.fnmatch(relative, pattern):
                return True
        return False

    def ignore(folder: str, names: list[str]) -> set[str]:
        base = Path(folder).relative_to(ROOT).as_posix()
        return {n for n in names if ignored(n if base == "." else f"{base}/{n}")}

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = tmp_path_factory.mktemp("image") / "app"
    build_context(app)
    (app / "uv.lock").unlink(missing_ok=True)  # a fresh clone has none: the build resolves it from the pins
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv(), "lock", "-q"], cwd=app, env=env, check=True)
    return app


def install(image_root: Path, service: str) -> Path:
    venv = image_root.parent / f"venv-{service}"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv(), "sync", "-q", "--locked", "--no-dev", "--package", service, "--python", sys.executable],
        cwd=image_root,
        env=env,
        check=True,
    )
    return venv


def freeze(python: str) -> set[str]:
    done = subprocess.run([uv(), "pip", "freeze", "--python", python], capture_output=True, text=True, check=True)
    return {line for line in done.stdout.splitlines() if "==" in line}


@pytest.fixture(scope="module")
def development() -> set[str]:
    return freeze(sys.executable)


@pytest.mark.parametrize("service", SERVICES)
def test_the_installed_service_is_pinned_and_its_migrations_are_where_it_looks(
    image_root: Path, service: str, development: set[str]
) -> None:
    venv = install(image_root, service)
    installed = freeze(str(venv / "bin" / "python"))
    assert installed and installed <= development, sorted(installed - development)
    # The editable install puts <member>/src on sys.path (a .pth file): cli.py's parents[3] is the member's folder.
    paths = {
        Path(line.strip())
        for pth in (venv / "lib").glob("python3.*/site-packages/*.pth")
        for line in pth.read_text().splitlines()
        if line.strip() and not line.startswith(("import ", "#"))
    }
    src = image_root / "services" / service / "src"
    assert src in paths, f"{service} is not installed from {src}: {sorted(map(str, paths))}"
    cli = src / service.replace("-", "_") / "entrypoints" / "cli.py"
    assert 'parents[3] / "alembic.ini"' in cli.read_text()
    assert (cli.parents[3] / "alembic.ini").is_file()
    assert sorted(p.name for p in (cli.parents[3] / "migrations" / "versions").glob("*.py")) == sorted(
        p.name for p in (ROOT / "services" / service / "migrations" / "versions").glob("*.py")
    )


@pytest.mark.parametrize("program", WITHOUT_DATABASE)
def test_the_installed_program_without_a_database_is_pinned_and_has_its_script(
    image_root: Path, program: str, development: set[str]
) -> None:
    venv = install(image_root, program)
    installed = freeze(str(venv / "bin" / "python"))
    assert installed and installed <= development, sorted(installed - development)
    assert (venv / "bin" / program).is_file(), f"no console script {program} in its install"
    # Templates and static files are package data read from the member's src (the editable install).
    src = image_root / WITHOUT_DATABASE[program] / "src"
    paths = {
        Path(line.strip())
        for pth in (venv / "lib").glob("python3.*/site-packages/*.pth")
        for line in pth.read_text().splitlines()
        if line.strip() and not line.startswith(("import ", "#"))
    }
    assert src in paths, f"{program} is not installed from {src}"
    if program == "storefront":
        assert (src / "storefront" / "templates" / "base.html").is_file()
        assert (src / "storefront" / "static" / "app.js").is_file()


def test_the_installed_service_migrates_a_database(image_root: Path, tmp_path: Path) -> None:
    """One service all the way (each migrate takes seconds): a throwaway database created and migrated to head
    by the image-layout install, run from outside the tree."""
    venv = install(image_root, "order-service")
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_test_image_orders_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DB_URL")} | {"ORDER_DB_URL": url}
    try:
        done = subprocess.run(
            [str(venv / "bin" / "order-service"), "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "latest migration" in done.stdout
    finally:
        asyncio.run(drop_database(url))
