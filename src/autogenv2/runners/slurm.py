"""SLURM runner: ``sbatch`` a script that runs the launch wrapper, one ``squeue`` per poll.

The wrapper's marker files say when an attempt finished and with what exit code. ``squeue``
(one call per poll, all of this user's jobs, finished ones included while SLURM remembers them)
says queued / running / pending reason and finds a job whose id was never recorded by its name,
which is the token. Only a job that ended without an exit file (killed with the wrapper, node
failure, cancelled before it started) costs one ``scontrol show job`` more.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from ..naming import check_name
from .base import Resources, RunRequest, RunStatus
from .script import (
    JobRecord,
    bundle_resources,
    check_batch_resources,
    checked,
    checked_extra,
    checked_path,
    combine,
    counts,
    hms,
    job_id_marker,
    memory,
    prepare,
    render,
    run_scheduler,
    seconds,
)

RESERVED = frozenset({"-J", "--job-name", "-o", "--output", "-e", "--error", "-D", "--chdir", "--open-mode",
                      "-a", "--array", "-W", "--wait"})
"""Options autogenv2 sets itself (or that would break polling); ``extra`` may not repeat them."""

SQUEUE = ["squeue", "--me", "--noheader", "--states=all", "--format=%i|%T|%r|%j"]
"""All our jobs, finished ones included; the name goes last since only it may contain '|'."""

PHASE = {
    "PENDING": "queued", "CONFIGURING": "queued", "REQUEUED": "queued", "REQUEUE_HOLD": "queued",
    "REQUEUE_FED": "queued", "RESV_DEL_HOLD": "queued", "SPECIAL_EXIT": "queued", "POWER_UP_NODE": "queued",
    "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "running", "STOPPED": "running",
    "SIGNALING": "running", "STAGE_OUT": "running", "RESIZING": "running",
}
"""Job states of a live job; any state in :data:`END_REASON` is finished, anything else running."""

END_REASON = {
    "COMPLETED": "", "FAILED": "failed", "TIMEOUT": "walltime", "DEADLINE": "walltime",
    "OUT_OF_MEMORY": "oom", "NODE_FAIL": "node_fail", "BOOT_FAIL": "node_fail", "CANCELLED": "cancelled",
    "PREEMPTED": "preempted", "REVOKED": "cancelled",
}
"""Why a finished job ended, by its final state."""

BENIGN_CANCEL = ("already completing or completed", "Invalid job id")
"""scancel complaints that mean "nothing left to cancel"."""


def directives(requests: list[RunRequest]) -> list[str]:
    """``#SBATCH`` lines: job name = the token(s), output appended to the first request's stdout."""
    res, first = bundle_resources(requests), requests[0]
    directory = checked_path("directory", first.directory)
    options = [f"--job-name={','.join(check_name(r.token, 'token') for r in requests)}",
               f"--output={directory}/{check_name(first.stdout, 'stdout file')}", "--open-mode=append",
               f"--chdir={directory}"]
    flags = {"nodes": "--nodes", "tasks": "--ntasks", "cpus_per_task": "--cpus-per-task"}
    options += [f"{flags[field]}={value}" for field, value in counts(res).items()]
    if (mem := memory(res)) is not None:
        options.append(f"--mem={mem[0]}{mem[1]}")
    if (total := seconds(res)) is not None:
        options.append(f"--time={total // 86400}-{hms(total % 86400)}")
    for field, flag in (("partition", "--partition"), ("account", "--account"), ("qos", "--qos")):
        if getattr(res, field) is not None:
            options.append(f"{flag}={checked(field, getattr(res, field)).group(0)}")
    return [f"#SBATCH {option}" for option in options + checked_extra(RESERVED, res.extra)]


class SlurmRunner:
    """Submit attempts as SLURM batch jobs named after their token; at most ``max_active`` of ours at once."""

    name = "slurm"
    runs_here = False
    max_bundle = 1000
    settings: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, max_active: int | None = None, python: str | None = None) -> None:
        self.max_active = max_active or 50
        self.python = python or sys.executable

    def start(self, request: RunRequest) -> str:
        return self.start_bundle([request])

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """Run several small requests one after another in one allocation; poll them by their own tokens."""
        script = render(directives(requests), requests, self.python, "SLURM_JOB_ID")
        prepare(requests)
        return run_scheduler(["sbatch", "--parsable"], stdin=script).stdout.strip().split(";")[0]

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        if not attempts:
            return {}
        known = {token: runner_id or job_id_marker(Path(directory), token)
                 for token, (runner_id, directory) in attempts.items()}
        jobs, named = self._query()
        cache: dict[str, JobRecord] = {}

        def details(job: JobRecord) -> JobRecord:
            if job.job_id not in cache:
                cache[job.job_id] = self._details(job)
            return cache[job.job_id]

        return {token: combine(Path(directory), token, _find(jobs, named, token, known[token]), details)
                for token, (_, directory) in attempts.items()}

    def cancel(self, runner_id: str) -> None:
        run_scheduler(["scancel", runner_id], benign=BENIGN_CANCEL)

    @staticmethod
    def check_resources(resources: Resources) -> None:
        check_batch_resources(resources, RESERVED)

    def _query(self) -> tuple[dict[str, JobRecord], dict[str, list[str]]]:
        """One ``squeue``: records by job id, and job ids by token (a bundle's name lists its tokens)."""
        jobs: dict[str, JobRecord] = {}
        named: dict[str, list[str]] = {}
        for line in run_scheduler(SQUEUE).stdout.splitlines():
            parts = line.strip().split("|", 3)
            if len(parts) != 4:
                continue
            job_id, state, reason, name = parts
            jobs[job_id] = self._record(job_id, state, reason)
            for token in name.split(","):
                named.setdefault(token, []).append(job_id)
        return jobs, named

    def _details(self, job: JobRecord) -> JobRecord:
        """``scontrol show job``: final state and exit code of a job that ended without an exit file."""
        done = run_scheduler(["scontrol", "--oneliner", "show", "job", job.job_id], benign=BENIGN_CANCEL)
        fields = dict(word.split("=", 1) for word in done.stdout.split() if "=" in word)
        state = fields.get("JobState", job.state)
        code, _, signal = fields.get("ExitCode", "").partition(":")
        exit_code = int(code) if code.isdigit() else None
        if signal.isdigit() and int(signal):
            exit_code = -int(signal)
        if exit_code == 0 and state != "COMPLETED":
            exit_code = None  # 0:0 of a job that never ran (cancelled while pending)
        return JobRecord(job.job_id, state, "finished", END_REASON.get(state, job.reason), exit_code)

    def _record(self, job_id: str, state: str, reason: str) -> JobRecord:
        if state in END_REASON:
            return JobRecord(job_id, state, "finished", END_REASON[state])
        phase = PHASE.get(state, "running")
        return JobRecord(job_id, state, phase, reason if phase == "queued" and reason != "None" else "")


def _find(jobs: dict[str, JobRecord], named: dict[str, list[str]], token: str,
          job_id: str) -> JobRecord | None:
    """The attempt's job: by recorded (or script-written) id, else the newest job named ``token``."""
    if job_id:
        return jobs.get(job_id)
    ids = named.get(token, [])
    return jobs[max(ids, key=lambda i: (len(i), i))] if ids else None
