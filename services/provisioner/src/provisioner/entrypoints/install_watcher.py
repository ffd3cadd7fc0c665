"""Background job: runs the install watcher's rounds (``service_layer/install_watch.py``).

Each round checks every due installation concurrently (the panel client's rate gate spaces the calls).
A round that found due work runs again at once (more may be due); otherwise the next one starts
``poll_seconds`` after this one did. A failing round (database briefly away) is logged by ``periodic``
and the job goes on; the leases make a half-done round harmless.
"""

from __future__ import annotations

from spawnpoint_kit.periodic import BackgroundJob, periodic

from ..service_layer.install_watch import InstallWatcher


def install_watch_job(watcher: InstallWatcher, *, poll_seconds: float) -> BackgroundJob:
    return periodic(watcher.watch_round, every=poll_seconds, name="install-watcher")
