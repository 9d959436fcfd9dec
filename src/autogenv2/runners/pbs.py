"""PBS runner (PBS Pro / OpenPBS, or Torque): ``qsub`` a script that runs the launch wrapper,
one ``qstat -f`` per poll.

Same shape as :mod:`autogenv2.runners.slurm`. PBS Pro keeps finished jobs visible to
``qstat -x`` (job history) with their ``Exit_status``; Torque shows them as state ``C`` while
``keep_completed`` lasts. That one call says everything, so no second command is needed.
A bundle is named after its first token and lists all of them in ``AG2_TOKENS`` (``-v``): OpenPBS
refuses commas in job names. Tested against a live one-node OpenPBS 23.06 server
(tests/test_runner_pbs_live.py); Torque only on recorded ``qstat`` text.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import ClassVar

from ..errors import PlanError
from ..naming import check_name
from .base import Resources, RunRequest, RunStatus, marker_dir
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

FLAVORS = ("pbspro", "torque")

RESERVED = frozenset({"-N", "-o", "-e", "-j", "-S", "-J", "-k", "-v"})
"""Options autogenv2 sets itself (or that would break polling); ``extra`` may not repeat them."""

PHASE = {
    "Q": "queued", "H": "queued", "W": "queued", "T": "queued", "M": "queued",
    "R": "running", "E": "running", "B": "running", "S": "running", "U": "running",
    "F": "finished", "X": "finished", "C": "finished",
}
"""``job_state`` letters; anything else counts as running."""

SPECIAL_EXIT = {
    "pbspro": {-29: "walltime", -27: "oom", -26: "oom", -28: "cputime", -25: "ncpus", -24: "ncpus",
               -20: "node_fail", -1: "exec_failed", -2: "exec_failed", -10: "exec_failed"},
    "torque": {-11: "walltime", -10: "oom", -12: "cputime", -1: "exec_failed", -2: "exec_failed",
               -8: "exec_failed", -9: "exec_failed"},
}
"""Negative ``Exit_status`` values the batch system sets itself (PBS Pro ``JOB_EXEC_KILL_*``,
Torque's ``-10``…``-12`` limits)."""

BENIGN = ("Unknown Job Id", "has finished", "invalid state for job")
"""qstat/qdel complaints about jobs that are gone or already finished."""

_ATTRIBUTE = re.compile(r"^    ([A-Za-z_][\w.]*) = (.*)$")
_TOKENS = re.compile(r"(?:^|,)AG2_TOKENS=([^,]*)")

WALLTIME_KILL = "job killed: walltime"
"""What PBS (OpenPBS and Torque) writes into the job's output when it kills a job at its walltime."""


def check_qos(res: Resources) -> None:
    if res.qos is not None:
        raise PlanError(f"resources.qos {res.qos!r}: PBS has no QOS; use a queue (partition) or extra")


def directives(requests: list[RunRequest], flavor: str) -> list[str]:
    """``#PBS`` lines for PBS Pro (``select=``) or Torque (``nodes=N:ppn=P``)."""
    res, first = bundle_resources(requests), requests[0]
    check_qos(res)
    markers = checked_path("directory", marker_dir(first.directory))
    tokens = [check_name(r.token, "token") for r in requests]
    options = [f"-N {tokens[0]}", "-j oe", f"-o {markers}/{tokens[0]}.pbs.out", "-S /bin/bash"]
    if len(tokens) > 1:  # OpenPBS refuses ',' in a job name and names over ~230 characters
        options.append(f"-v AG2_TOKENS={':'.join(tokens)}")
    options += _select(res, flavor)
    if (total := seconds(res)) is not None:
        options.append(f"-l walltime={hms(total)}")
    for field, flag in (("partition", "-q"), ("account", "-A")):
        if getattr(res, field) is not None:
            options.append(f"{flag} {checked(field, getattr(res, field)).group(0)}")
    return [f"#PBS {option}" for option in options + checked_extra(RESERVED, res.extra)]


def _select(res: Resources, flavor: str) -> list[str]:
    """The node/cpu/memory request: ``select=`` chunks (PBS Pro) or ``nodes=N:ppn=P`` (Torque)."""
    n, mem = counts(res), memory(res)
    nodes = n.get("nodes", 1)
    per_node = math.ceil(n["tasks"] / nodes) if "tasks" in n else 1
    cpus = per_node * n.get("cpus_per_task", 1)
    if flavor == "torque":
        return ([f"-l nodes={nodes}:ppn={cpus}"] if n else []) + \
            ([f"-l mem={mem[0] * nodes}{mem[1].lower()}b"] if mem is not None else [])
    if not n and mem is None:
        return []
    chunk = f"select={nodes}:ncpus={cpus}" + (f":mpiprocs={per_node}" if "tasks" in n else "")
    return [f"-l {chunk}" + (f":mem={mem[0]}{mem[1].lower()}b" if mem is not None else "")]


class PbsRunner:
    """Submit attempts as PBS jobs named after their token; at most ``max_active`` of ours at once."""

    name = "pbs"
    runs_here = False
    max_bundle = 1000
    settings: ClassVar[dict[str, tuple[str, ...]]] = {"flavor": FLAVORS}
    """``flavor``: which qstat/qsub dialect the site speaks (default pbspro)."""

    def __init__(self, max_active: int | None = None, python: str | None = None,
                 flavor: str = "pbspro") -> None:
        if flavor not in FLAVORS:
            raise PlanError(f"PBS flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
        self.max_active = max_active or 50
        self.python = python or sys.executable
        self.flavor = flavor

    def start(self, request: RunRequest) -> str:
        return self.start_bundle([request])

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """Run several small requests one after another in one job; poll them by their own tokens."""
        script = render(directives(requests, self.flavor), requests, self.python, "PBS_JOBID")
        prepare(requests)
        foreground = ["-f"] if self.flavor == "pbspro" else []  # no lingering background qsub
        return run_scheduler(["qsub", *foreground], stdin=script).stdout.strip()

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        if not attempts:
            return {}
        known = {token: runner_id or job_id_marker(Path(directory), token)
                 for token, (runner_id, directory) in attempts.items()}
        jobs, named = self._query(sorted(set(known.values())) if all(known.values()) else [])
        return {token: _from_log(combine(Path(directory), token, _find(jobs, named, token, known[token]),
                                         self._details), Path(directory), token)
                for token, (_, directory) in attempts.items()}

    def cancel(self, runner_id: str) -> None:
        run_scheduler(["qdel", runner_id], benign=BENIGN)

    @staticmethod
    def check_resources(resources: Resources) -> None:
        check_batch_resources(resources, RESERVED)
        check_qos(resources)

    def _query(self, job_ids: list[str]) -> tuple[dict[str, JobRecord], dict[str, list[str]]]:
        """One ``qstat -f`` (``-x`` on PBS Pro for finished jobs) for ``job_ids``, or all jobs if empty."""
        argv = ["qstat", "-f"] + (["-x"] if self.flavor == "pbspro" else []) + job_ids
        jobs: dict[str, JobRecord] = {}
        named: dict[str, list[str]] = {}
        for job_id, attributes in parse_qstat(run_scheduler(argv, benign=BENIGN).stdout).items():
            record = self._record(job_id, attributes)
            jobs[job_id] = jobs[job_id.split(".")[0]] = record
            listed = _TOKENS.search(attributes.get("Variable_List", ""))  # a bundle's tokens
            tokens = listed.group(1).split(":") if listed else attributes.get("Job_Name", "").split(",")
            for token in tokens:
                named.setdefault(token, []).append(job_id)
        return jobs, named

    def _details(self, job: JobRecord) -> JobRecord:
        return job  # qstat -f already said everything it knows

    def _record(self, job_id: str, attributes: dict[str, str]) -> JobRecord:
        state = attributes.get("job_state", "")
        phase = PHASE.get(state, "running")
        if phase == "queued":  # a job held at submission (qsub -h) has no comment
            held = f"held (Hold_Types={attributes.get('Hold_Types', '')})" if state == "H" else ""
            return JobRecord(job_id, state, phase, attributes.get("comment", held))
        if phase == "running":
            return JobRecord(job_id, state, phase)
        status = attributes.get("Exit_status", attributes.get("exit_status", ""))
        code = int(status) if re.fullmatch(r"-?\d+", status.strip()) else None
        reason = self._end_reason(code, attributes)
        exit_code = None if reason == "cancelled" and code == 0 else _exit_code(code)  # OpenPBS: qdel → 0
        return JobRecord(job_id, state, phase, reason, exit_code)

    def _end_reason(self, code: int | None, attributes: dict[str, str]) -> str:
        """Why a finished job ended: special codes, deletion, signals (walltime if it used it all)."""
        if code is None or attributes.get("substate") == "91":  # never ran, or deleted (PBS Pro)
            return "cancelled"
        if code in SPECIAL_EXIT[self.flavor]:
            return SPECIAL_EXIT[self.flavor][code]
        if code > 256:
            used = _seconds(attributes.get("resources_used.walltime"))
            limit = _seconds(attributes.get("Resource_List.walltime"))
            return "walltime" if used is not None and limit is not None and used >= limit else "cancelled"
        return "failed" if code else ""


def parse_qstat(text: str) -> dict[str, dict[str, str]]:
    """``qstat -f`` text → ``{job id: {attribute: value}}``; tab-indented lines continue a value."""
    jobs: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    key = ""
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            current = jobs.setdefault(line.split(":", 1)[1].strip(), {})
        elif current is not None and (match := _ATTRIBUTE.match(line)):
            key = match.group(1)
            current[key] = match.group(2)
        elif current is not None and key and line[:1] == "\t":
            current[key] += line[1:]
    return jobs


def _from_log(status: RunStatus, directory: Path, token: str) -> RunStatus:
    """A job stopped by a signal whose scheduler record is gone (or says nothing) is still known to
    be a walltime kill from the line PBS appends to the job's output file."""
    if status.phase != "finished" or status.reason not in ("terminated", "no exit file"):
        return status
    try:
        text = (marker_dir(directory) / f"{token}.pbs.out").read_text(errors="replace")
    except OSError:
        return status
    if WALLTIME_KILL in text:
        status.reason = "walltime"
    return status


def _exit_code(code: int | None) -> int | None:
    """PBS reports death by signal N as 256+N; negative codes are PBS's own, not the program's."""
    if code is None or code < 0:
        return None
    return -(code - 256) if code > 256 else code


def _seconds(text: str | None) -> int | None:
    if not text or not re.fullmatch(r"\d+(:\d\d){0,2}", text.strip()):
        return None
    total = 0
    for part in text.strip().split(":"):
        total = total * 60 + int(part)
    return total


def _find(jobs: dict[str, JobRecord], named: dict[str, list[str]], token: str,
          job_id: str) -> JobRecord | None:
    """The attempt's job: by recorded (or script-written) id, else the newest job named ``token``."""
    if job_id:
        return jobs.get(job_id) or jobs.get(job_id.split(".")[0])
    ids = named.get(token, [])
    return jobs[max(ids, key=lambda i: (len(i.split(".")[0]), i))] if ids else None
