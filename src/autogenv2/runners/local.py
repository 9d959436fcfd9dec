"""Local runner: detached processes in their own session on this machine.

A started attempt survives the ``autogenv2 run`` that started it; a later ``run`` learns its
fate from the marker files (see :mod:`autogenv2.runners.launch`). The walltime in the
resources is enforced by the wrapper, which makes a local run behave like a batch job.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from ..errors import PlanError, RunnerError
from ..storage import read_json
from .base import Resources, RunRequest, RunStatus, launch_argv, read_markers, walltime_seconds


class LocalRunner:
    """Run attempts as local background processes, at most ``max_active`` at once."""

    name = "local"
    runs_here = True
    max_bundle = 1
    settings: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, max_active: int | None = None, python: str | None = None) -> None:
        self.max_active = max_active or max(1, os.cpu_count() or 1)
        self.python = python or sys.executable

    def start(self, request: RunRequest) -> str:
        directory = Path(request.directory)
        (directory / ".autogenv2").mkdir(mode=0o755, parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(request.env)
        argv = launch_argv(self.python, request)
        argv.insert(3, "--detach")
        with open(directory / request.stdout, "ab") as out:
            launched = subprocess.run(argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=60, check=False)
        started = directory / ".autogenv2" / f"{request.token}.started"
        if launched.returncode != 0 or not started.exists():
            raise RunnerError(f"{directory}: the launch wrapper did not start (exit {launched.returncode}); "
                              f"see {request.stdout}")
        return str(read_json(started).get("pid", ""))

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """Local processes are not bundled (``max_bundle`` is 1): one request, started as by :meth:`start`."""
        if len(requests) != 1:
            raise RunnerError(f"the local runner starts one request at a time, not {len(requests)}")
        return self.start(requests[0])

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        return {token: self._poll_one(token, runner_id, directory)
                for token, (runner_id, directory) in attempts.items()}

    def _poll_one(self, token: str, runner_id: str, directory: Path) -> RunStatus:
        status = read_markers(directory, token)
        if status is not None and status.phase == "finished":
            return status
        pid = str((status.extra.get("pid") if status else "") or runner_id)
        if pid and _alive(int(pid), token):
            status = status or RunStatus("queued")
            status.extra["runner_id"] = pid
            return status
        status = read_markers(directory, token)  # it may have finished between the two looks
        if status is not None and status.phase == "finished":
            return status
        return RunStatus("lost", reason="the process ended without writing its exit file (killed?)")

    def cancel(self, runner_id: str) -> None:
        try:
            os.killpg(int(runner_id), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def check_resources(resources: Resources) -> None:
        """Only the walltime matters here (the wrapper enforces it); scheduler fields are ignored."""
        try:
            walltime_seconds(resources.walltime)
        except ValueError as exc:
            raise PlanError(f"resources.walltime: {exc}") from None


def _alive(pid: int, token: str) -> bool:
    """True if ``pid`` runs our wrapper for ``token`` (guards against pid reuse and zombies)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            if handle.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return token.encode() in handle.read()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
