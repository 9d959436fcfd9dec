"""Level 1: the Runner contract. A Runner executes runs of a code on a computer system.

Every backend (local process, SLURM, PBS) launches the same wrapper,
``python -m autogenv2.runners.launch``, which records in the run directory
``.autogenv2/<token>.started`` and ``.autogenv2/<token>.exit`` (exit code, times). Completion
therefore never depends on the scheduler remembering the job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from .markers import RunStatus as RunStatus, marker_dir as marker_dir, read_markers as read_markers


class Resources(BaseModel):
    """What one run asks of the machine. Unset fields fall back to the machine profile."""

    model_config = ConfigDict(extra="forbid")

    nodes: int | None = None
    tasks: int | None = None
    cpus_per_task: int | None = None
    memory: str | None = None          # e.g. "4G"
    walltime: str | None = None        # "HH:MM:SS" or "D-HH:MM:SS" or seconds as text
    partition: str | None = None       # queue on PBS
    account: str | None = None
    qos: str | None = None
    extra: list[str] = []              # extra scheduler directive lines, validated by the backend
    setup: list[str] = []              # module/env lines run before the program
    launcher: list[str] = []           # e.g. ["srun"] or ["mpirun", "-np", "4"]


@dataclass
class RunRequest:
    """One attempt to hand to a Runner."""

    directory: Path                  # the element's run directory (the program's cwd)
    argv: list[str]                  # the program and its arguments
    token: str                       # unique attempt id; names marker files and scheduler jobs
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    stdout: str = "stdout.txt"       # file name in ``directory``; appended to by every attempt


class Runner(Protocol):
    """The contract of every backend (see runners/local.py for the smallest one).

    A backend module ``runners/<kind>.py`` defines one class with these members and is registered by
    one line in ``runners.BACKENDS``; nothing else in autogenv2 names it.
    """

    name: str
    """The kind: the module's name and its key in ``BACKENDS`` (``kind = ...`` in a machine profile)."""
    runs_here: bool
    """Runs programs on this machine, so ``run`` checks that each step's program exists first."""
    max_bundle: int
    """Most requests :meth:`start_bundle` takes at once (1: no bundling; profiles may not ask for more)."""
    settings: dict[str, tuple[str, ...]]
    """Profile keys of this backend alone and their allowed values (e.g. PBS ``flavor``; an empty tuple
    allows any single line of text). A profile passes them to the constructor as keyword arguments."""
    max_active: int
    """How many of our attempts may be queued or running at once (throttling)."""

    def start(self, request: RunRequest) -> str:
        """Launch or submit; return the runner id (pid, SLURM job id, PBS job id)."""
        ...

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """Run up to ``max_bundle`` requests with equal resources one after another in one allocation.

        Each request keeps its own token, directory and marker files, so :meth:`poll` reports them one by
        one; the returned id is the allocation's.
        """
        ...

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        """Status of many attempts at once: ``{token: (runner_id, directory)}``.

        Implementations make at most one scheduler query per call, whatever the number.
        """
        ...

    def cancel(self, runner_id: str) -> None:
        """Stop the attempt; a finished one is not an error."""
        ...

    @staticmethod
    def check_resources(resources: Resources) -> None:
        """Refuse (PlanError naming the field) what this backend could not submit; run at profile load."""
        ...


class RunnerClass(Protocol):
    """A backend's class as profiles see it before making a runner: its class attributes and checks."""

    name: str
    runs_here: bool
    max_bundle: int
    settings: dict[str, tuple[str, ...]]

    def check_resources(self, resources: Resources) -> None: ...

    def __call__(self, **options: Any) -> Runner: ...


def walltime_seconds(text: str | None) -> float | None:
    """Parse ``"SS"``, ``"MM:SS"``, ``"HH:MM:SS"`` or ``"D-HH:MM:SS"`` into seconds.

    >>> walltime_seconds("1-02:00:30")
    93630.0
    >>> walltime_seconds("90")
    90.0
    """
    if text is None:
        return None
    days = 0
    body = text.strip()
    if "-" in body:
        day_text, body = body.split("-", 1)
        days = int(day_text)
    parts = [float(p) for p in body.split(":")]
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise ValueError(f"walltime {text!r}: expected SS, MM:SS, HH:MM:SS or D-HH:MM:SS")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return days * 86400 + seconds


def launch_argv(python: str, request: RunRequest) -> list[str]:
    """The wrapper command line for ``request`` (walltime enforced by the wrapper itself)."""
    argv = [python, "-m", "autogenv2.runners.launch", request.token]
    seconds = walltime_seconds(request.resources.walltime)
    if seconds:
        argv += ["--walltime", str(seconds)]
    return argv + ["--", *request.resources.launcher, *request.argv]
