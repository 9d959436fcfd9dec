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

from .base import RunRequest, RunStatus
from .script import JobRecord, combine, job_id_marker, prepare, render, run_scheduler, slurm_directives

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


class SlurmRunner:
    """Submit attempts as SLURM batch jobs named after their token; at most ``max_active`` of ours at once."""

    name = "slurm"

    def __init__(self, max_active: int | None = None, python: str | None = None) -> None:
        self.max_active = max_active or 50
        self.python = python or sys.executable

    def start(self, request: RunRequest) -> str:
        return self.start_bundle([request])

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """Run several small requests one after another in one allocation; poll them by their own tokens."""
        script = render(slurm_directives(requests), requests, self.python, "SLURM_JOB_ID")
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
