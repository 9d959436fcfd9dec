"""What the batch backends (SLURM, PBS) share: the job script, and how its markers meet the scheduler.

Every user value that reaches a script is either checked against a strict pattern (directive
values: anything else is refused with an error naming the field) or quoted with
:func:`shlex.quote` (program arguments, environment values). ``setup`` lines are the one
exception: they are shell code by design (``module load ...``) from the user's own profile or
plan, so they are only refused when they would span several lines.

The script runs every request under the launch wrapper, whose marker files are the truth about
completion; the scheduler is asked only about what the markers cannot say (queued, pending
reason, and why a job ended when the wrapper could not write its exit file).
"""
from __future__ import annotations

import math
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import PlanError, RunnerError
from ..naming import check_name
from .base import Resources, RunRequest, RunStatus, launch_argv, marker_dir, read_markers, walltime_seconds
from .launch import GRACE_SECONDS

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")
_MEMORY = re.compile(r"([1-9][0-9]*)\s*([KMGT]?)B?", re.IGNORECASE)
_VALUE = r"[A-Za-z0-9_.+:@,=/-]+"
_EXTRA = re.compile(rf"(--?[A-Za-z][A-Za-z0-9-]*)(?:[ =]{_VALUE})?")
_PATH = re.compile(r"/[A-Za-z0-9_.+@,=/-]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FIELD_RULES = {
    "partition": (_WORD, "letters, digits and . _ + - (at most 64)"),
    "account": (_WORD, "letters, digits and . _ + - (at most 64)"),
    "qos": (_WORD, "letters, digits and . _ + - (at most 64)"),
    "memory": (_MEMORY, "a whole number with an optional K/M/G/T unit, e.g. 4G"),
}
"""Pattern each text field must match in full, and the hint the error gives."""

WALLTIME_MARGIN = (GRACE_SECONDS + 5.0, 60.0)
"""The wrapper stops the program this much (2 % of the walltime, clipped to this range, in
seconds) before the scheduler would, so the program gets its grace period and the exit file
says "walltime" instead of the scheduler killing the wrapper too."""


def checked(field: str, value: str) -> re.Match[str]:
    """Match ``value`` against the rule of ``field`` or raise a PlanError naming the field."""
    pattern, hint = FIELD_RULES[field]
    match = pattern.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise PlanError(f"resources.{field} {value!r}: only {hint} is allowed")
    return match


def checked_path(what: str, path: Path) -> str:
    """An absolute path safe to put in a directive line (no spaces, quotes, ``%`` or shell syntax)."""
    text = str(Path(path).resolve())
    if not _PATH.fullmatch(text):
        raise PlanError(f"{what} {text!r}: a batch job needs a path of letters, digits and "
                        ". _ + @ , = - / only")
    return text


def checked_extra(reserved: frozenset[str], lines: list[str]) -> list[str]:
    """``extra`` directive options: one option (and value) each, no shell syntax, none of the backend's
    ``reserved`` options (those autogenv2 sets itself or that would break polling)."""
    for line in lines:
        match = _EXTRA.fullmatch(line) if isinstance(line, str) else None
        if match is None:
            raise PlanError(f"resources.extra {line!r}: expected one option such as '--constraint=x' or "
                            "'-l place=scatter' (letters, digits and . _ + : @ , = / - only)")
        if match.group(1) in reserved:
            raise PlanError(f"resources.extra {line!r}: autogenv2 sets {match.group(1)} itself")
    return list(lines)


def checked_setup(lines: list[str]) -> list[str]:
    for line in lines:
        if not isinstance(line, str) or any(c in line for c in "\n\r\0"):
            raise PlanError(f"resources.setup {line!r}: each setup entry must be a single line")
    return list(lines)


def counts(resources: Resources) -> dict[str, int]:
    """nodes / tasks / cpus_per_task that are set, each checked to be a positive integer."""
    found = {}
    for field in ("nodes", "tasks", "cpus_per_task"):
        value = getattr(resources, field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PlanError(f"resources.{field} {value!r}: expected a positive whole number")
            found[field] = value
    return found


def memory(resources: Resources) -> tuple[int, str] | None:
    """(amount, unit letter) with the unit defaulting to M, or None."""
    if resources.memory is None:
        return None
    match = checked("memory", resources.memory)
    return int(match.group(1)), (match.group(2) or "M").upper()


def seconds(resources: Resources) -> int | None:
    """The walltime in whole seconds (rounded up), or None."""
    try:
        value = walltime_seconds(resources.walltime)
    except ValueError as exc:
        raise PlanError(f"resources.walltime: {exc}") from None
    return None if value is None else max(1, math.ceil(value))


def hms(total: int) -> str:
    """``HH:MM:SS`` with hours unbounded (PBS), e.g. ``hms(93630) == '26:00:30'``."""
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def bundle_resources(requests: list[RunRequest]) -> Resources:
    """One allocation for requests run one after another: equal resources, walltimes added."""
    if not requests:
        raise PlanError("a bundle needs at least one request")
    first = requests[0].resources
    for request in requests[1:]:
        if request.resources.model_dump(exclude={"walltime"}) != first.model_dump(exclude={"walltime"}):
            raise PlanError(f"bundle: request {request.token!r} asks for other resources than "
                            f"{requests[0].token!r}; only requests with equal resources can share a job")
    times = [seconds(r.resources) for r in requests]
    total = None if any(t is None for t in times) else sum(t or 0 for t in times)
    return first.model_copy(update={"walltime": None if total is None else str(total)})


def check_batch_resources(res: Resources, reserved: frozenset[str]) -> None:
    """Every check a batch backend's directives make, without rendering (run when a profile is loaded)."""
    counts(res), memory(res), seconds(res), checked_extra(reserved, res.extra), checked_setup(res.setup)
    for field in ("partition", "account", "qos"):
        if getattr(res, field) is not None:
            checked(field, getattr(res, field))


def wrapper_request(request: RunRequest) -> RunRequest:
    """The request as the wrapper sees it: its walltime shortened by :data:`WALLTIME_MARGIN`."""
    total = seconds(request.resources)
    if total is None:
        return request
    low, high = WALLTIME_MARGIN
    inner = max(total - min(high, max(low, 0.02 * total)), total / 2)
    return replace(request, resources=request.resources.model_copy(update={"walltime": f"{inner:.0f}"}))


def render(header: list[str], requests: list[RunRequest], python: str, job_id_var: str) -> str:
    """The whole job script: directives, setup lines, then each request under the wrapper.

    A single request is ``exec``'ed so the wrapper is the job's main process; a bundle runs
    its requests one after another, each in its own directory with its own stdout file.
    """
    lines = ["#!/bin/bash", *header, "# written by autogenv2; the wrapper records outcomes in .autogenv2/",
             *checked_setup(requests[0].resources.setup)]
    for request in requests:
        lines.append(_command(request, python, job_id_var, single=len(requests) == 1))
    return "\n".join(lines) + "\n"


def _command(request: RunRequest, python: str, job_id_var: str, single: bool) -> str:
    token = check_name(request.token, "token")
    stdout = check_name(request.stdout, "stdout file")
    for key in request.env:
        if not _ENV_KEY.fullmatch(key):
            raise PlanError(f"env {key!r}: a variable name has letters, digits and _ only")
    env = [f"{key}={value}" for key, value in request.env.items()]
    argv = (["env", *env] if env else []) + launch_argv(python, wrapper_request(request))
    run = " ".join(shlex.quote(word) for word in argv) + f" >> {shlex.quote(stdout)} 2>&1"
    where = shlex.quote(str(Path(request.directory).resolve()))
    return (f'cd {where} && printf "%s\\n" "${job_id_var}" > .autogenv2/{token}.jobid && '
            f'{"exec " if single else ""}{run}')


def prepare(requests: list[RunRequest]) -> None:
    """Create each run directory's marker directory before submission (the job may start at once)."""
    for request in requests:
        marker_dir(request.directory).mkdir(mode=0o755, parents=True, exist_ok=True)


def run_scheduler(argv: list[str], *, stdin: str | None = None,
                  benign: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run a scheduler command; a non-zero return is a RunnerError(stderr) unless its stderr is benign."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerError(f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.strip()]
        if not errors or not all(any(b in line for b in benign) for line in errors):
            raise RunnerError(f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip()}")
    return done


LOST = "the scheduler has no job for this token and no exit file was written"


@dataclass
class JobRecord:
    """What the scheduler says of one job, already mapped through the backend's tables."""

    job_id: str
    state: str                     # raw scheduler word: PENDING, TIMEOUT, Q, F...
    phase: str                     # "queued" | "running" | "finished"
    reason: str = ""               # pending reason while queued; cause ("walltime", ...) once finished
    exit_code: int | None = None   # known only from some schedulers' records


def job_id_marker(directory: Path, token: str) -> str:
    """The job id the script recorded when it started, or ''."""
    path = marker_dir(directory) / f"{token}.jobid"
    try:
        return path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


def combine(directory: Path, token: str, job: JobRecord | None,
            details: Callable[[JobRecord], JobRecord]) -> RunStatus:
    """One attempt's status from its marker files and its scheduler record (``details`` for the few
    jobs that ended without an exit file)."""
    markers = read_markers(directory, token)
    if job is None:
        if markers is not None and markers.phase == "finished":
            return markers
        return RunStatus("lost", reason=LOST)
    extra = {"runner_id": job.job_id}
    if markers is None or markers.phase != "finished":
        if job.phase != "finished":
            started = markers.started_at if markers else None
            return RunStatus(job.phase, reason=job.reason if job.phase == "queued" else "",
                             started_at=started, scheduler_state=job.state, extra=extra)
        markers = read_markers(directory, token)  # it may have finished between the two looks
    if markers is not None and markers.phase == "finished":
        if _signalled(markers):  # only the scheduler knows by whom
            if job.phase != "finished":
                return RunStatus("running", started_at=markers.started_at, scheduler_state=job.state,
                                 extra=extra)
            if job.reason not in ("", "failed"):
                markers.reason = job.reason
        markers.scheduler_state, markers.extra = job.state, extra
        return markers
    job = details(job)
    return RunStatus("finished", exit_code=job.exit_code, reason=job.reason or "no exit file",
                     started_at=markers.started_at if markers else None, scheduler_state=job.state,
                     extra=extra)


def _signalled(markers: RunStatus) -> bool:
    """The wrapper was told to stop, or the program died of a signal it did not send (the
    scheduler signals every process of a job, so the program may die before the wrapper notices)."""
    return markers.reason == "terminated" or (markers.reason == "" and (markers.exit_code or 0) < 0)
