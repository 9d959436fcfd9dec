"""Fake runner: scripted attempt outcomes, in process, with no process, scheduler or sleep.

It implements the :class:`~.base.Runner` protocol (and ``start_bundle``) so that the Manager, a
job and a whole reconcile pass can be driven through every transition in milliseconds. Each
attempt follows a *script*, a sequence of :class:`Outcome` s: every ``poll`` reports the
attempt's current outcome and moves it one step on (the last one stays). Scripts are given per
run directory (consumed by successive attempts started there) or per token; an attempt without
one follows :attr:`FakeRunner.default`. An outcome may write what the real program would have
written (``write``: e.g. :func:`toy_blocks` for the toy code) and append to the attempt's
stdout, once, when it is first reported::

    fake = FakeRunner()
    fake.script(run_dir, [queued(), running(), finished(0, write=toy_blocks())])
    fake.script(run_dir, [running(), walltime(write=toy_blocks(stop=5))])   # the next attempt

Times are virtual: an attempt starts at its first ``running`` report and a finished one ended
``seconds`` later, so core-hour limits and walltime sizing see the durations the script says.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import RunnerError
from .base import Resources, RunRequest, RunStatus

Write = Callable[[RunRequest], None]
"""Writes the outputs of a run (what the program would have left in ``request.directory``)."""


@dataclass(frozen=True)
class Outcome:
    """What one poll reports about an attempt."""

    phase: str                        # "queued" | "running" | "finished" | "lost"
    exit_code: int | None = None
    reason: str = ""
    seconds: float = 60.0             # finished: wall time from its start to its end
    write: Write | None = None        # called once, when this outcome is first reported
    stdout: str = ""                  # appended to the attempt's stdout file then
    scheduler_state: str = ""


def queued(reason: str = "Priority") -> Outcome:
    return Outcome("queued", reason=reason, scheduler_state="PENDING")


def running(write: Write | None = None) -> Outcome:
    return Outcome("running", write=write, scheduler_state="RUNNING")


def finished(exit_code: int | None = 0, write: Write | None = None, seconds: float = 60.0,
             reason: str = "", stdout: str = "") -> Outcome:
    state = "COMPLETED" if exit_code == 0 else "FAILED"
    return Outcome("finished", exit_code, reason, seconds, write, stdout, state)


def walltime(write: Write | None = None, seconds: float = 3600.0) -> Outcome:
    """Stopped at its walltime (the launch wrapper's SIGTERM)."""
    return Outcome("finished", -15, "walltime", seconds, write, "", "TIMEOUT")


def lost(reason: str = "the fake runner lost it") -> Outcome:
    """The runner has no trace of the attempt and no exit was recorded."""
    return Outcome("lost", reason=reason)


CANCELLED = Outcome("finished", -15, "cancelled", 1.0, scheduler_state="CANCELLED")


@dataclass
class _Live:
    """One attempt the fake runner knows."""

    request: RunRequest
    runner_id: str
    script: tuple[Outcome, ...]
    position: int = 0
    reported: set[int] = field(default_factory=set)
    started_at: float | None = None


class FakeRunner:
    """A Runner whose attempts follow scripts. Records what it was asked, for tests to check."""

    name = "fake"
    runs_here = False
    """Starts no program on this machine (so ``run`` checks no program for it)."""
    max_bundle = 1000
    settings: ClassVar[dict[str, tuple[str, ...]]] = {}
    """No profile keys of its own."""

    @staticmethod
    def check_resources(resources: Resources) -> None:
        """Any resources will do: nothing is rendered into a job script."""

    def __init__(self, max_active: int | None = None, python: str | None = None,
                 default: Sequence[Outcome] = (running(), finished(0))) -> None:
        self.max_active = max_active or 4
        self.python = python
        self.default = tuple(default)
        self.started: list[RunRequest] = []
        """Every request started, in order (bundled ones included)."""
        self.polls: list[list[str]] = []
        """The tokens asked about, one list per ``poll`` call."""
        self.cancelled: list[str] = []
        self.bundles: list[list[str]] = []
        """Tokens of each ``start_bundle`` call."""
        self.refuse: list[str] = []
        """Messages of the next starts to refuse (raised as RunnerError, one per start)."""
        self.down = ""
        """When set, every ``poll`` raises RunnerError with this message (a scheduler that is down)."""
        self.clock: Callable[[], float] = time.time
        self._by_dir: dict[Path, list[tuple[Outcome, ...]]] = {}
        self._by_token: dict[str, tuple[Outcome, ...]] = {}
        self._live: dict[str, _Live] = {}

    # -- programming ------------------------------------------------------------------
    def script(self, directory: Path, *attempts: Sequence[Outcome]) -> None:
        """The scripts of the next attempts started in ``directory``, in order."""
        self._by_dir.setdefault(Path(directory).resolve(), []).extend(tuple(a) for a in attempts)

    def script_token(self, token: str, outcomes: Sequence[Outcome]) -> None:
        """The script of the attempt ``token`` (wins over a directory script)."""
        self._by_token[token] = tuple(outcomes)

    def adopt(self, request: RunRequest, outcomes: Sequence[Outcome], runner_id: str = "") -> str:
        """Know an attempt that was started elsewhere (e.g. before a crash); returns its id."""
        runner_id = runner_id or f"fake-{len(self._live) + 1}"
        self._live[request.token] = _Live(request, runner_id, tuple(outcomes) or self.default)
        return runner_id

    def live(self) -> int:
        """Attempts whose current outcome is queued or running (what a poll now would count as active)."""
        return sum(1 for a in self._live.values() if a.script[a.position].phase in ("queued", "running"))

    # -- the Runner protocol -----------------------------------------------------------
    def start(self, request: RunRequest) -> str:
        if self.refuse:
            raise RunnerError(f"fake runner refused {request.token}: {self.refuse.pop(0)}")
        if request.token in self._live:
            raise RunnerError(f"fake runner: {request.token} was already started")  # never twice
        self.started.append(request)
        queue = self._by_dir.get(Path(request.directory).resolve()) or [()]
        script = self._by_token.get(request.token) or queue.pop(0)
        return self.adopt(request, script or self.default)

    def start_bundle(self, requests: list[RunRequest]) -> str:
        """One allocation for several requests; each is still polled by its own token."""
        ids = [self.start(request) for request in requests]
        self.bundles.append([request.token for request in requests])
        return ids[0] if ids else ""

    def poll(self, attempts: dict[str, tuple[str, Path]]) -> dict[str, RunStatus]:
        if self.down:
            raise RunnerError(f"fake runner: {self.down}")
        self.polls.append(list(attempts))
        return {token: self._report(token) for token in attempts}

    def cancel(self, runner_id: str) -> None:
        self.cancelled.append(runner_id)
        for live in self._live.values():
            if live.runner_id == runner_id and live.script[live.position].phase in ("queued", "running"):
                live.script = (*live.script[:live.position], CANCELLED)

    # -- internals ---------------------------------------------------------------------
    def _report(self, token: str) -> RunStatus:
        live = self._live.get(token)
        if live is None:
            return RunStatus("lost", reason="not known to the fake runner")
        index = live.position
        outcome = live.script[index]
        live.position = min(index + 1, len(live.script) - 1)
        now = self.clock()
        if outcome.phase in ("running", "finished") and live.started_at is None:
            live.started_at = now - (outcome.seconds if outcome.phase == "finished" else 0.0)
        if index not in live.reported:
            live.reported.add(index)
            _perform(live.request, outcome)
        ended = live.started_at + outcome.seconds if outcome.phase == "finished" and live.started_at else None
        return RunStatus(outcome.phase, exit_code=outcome.exit_code, reason=outcome.reason,
                         started_at=live.started_at, ended_at=ended, scheduler_state=outcome.scheduler_state,
                         extra={"runner_id": live.runner_id})


def _perform(request: RunRequest, outcome: Outcome) -> None:
    if outcome.stdout:
        with open(Path(request.directory) / request.stdout, "a", encoding="utf-8") as out:
            out.write(outcome.stdout if outcome.stdout.endswith("\n") else outcome.stdout + "\n")
    if outcome.write is not None:
        outcome.write(request)


def toy_blocks(stop: int | None = None, spikes: dict[int, float] | None = None) -> Write:
    """What the toy code's ``run.py`` leaves behind (codes/toy), computed here without sleeping.

    Continues ``blocks.json`` up to the total in ``params.json`` (or its ``attempt_limit``), or only
    ``stop`` more blocks (a kill). The series follows the toy's recipe — AR(1) noise of ``sigma``
    and ``phi`` around ``mean``, the ``transient``, weights growing when ``tstep`` > ``stable_tstep``
    — with block i's noise from ``numpy.random.default_rng([seed, i])``; ``spikes`` adds Ha to blocks.
    """

    def write(request: RunRequest) -> None:
        directory = Path(request.directory)
        params: dict[str, Any] = json.loads((directory / "params.json").read_text())
        output = directory / str(params["output"])
        series: dict[str, list[float]] = {"energy": [], "x": [], "weight": []}
        if output.exists():
            series = json.loads(output.read_text())
        first = len(series["energy"])
        last = min(int(params["nblocks"]), int(params.get("attempt_limit") or params["nblocks"]))
        last = min(last, first + stop) if stop is not None else last
        sigma, phi = float(params["sigma"]), float(params["phi"])
        noise = [float(np.random.default_rng([params["seed"], i]).normal()) for i in range(first, last + 1)]
        x = series["x"][-1] if series["x"] else sigma * noise[0]
        growth = 0.05 if params["tstep"] > params["stable_tstep"] else 0.0
        for i in range(first, last):
            x = phi * x + math.sqrt(1 - phi**2) * sigma * noise[i - first + 1]
            extra = float(params["transient"]) * math.exp(-i / float(params["transient_blocks"]))
            series["energy"].append(float(params["mean"]) + x + extra + (spikes or {}).get(i, 0.0))
            series["x"].append(x)
            series.setdefault("weight", []).append(1.0 + growth * i)
        temporary = output.with_suffix(".tmp")
        temporary.write_text(json.dumps(series))
        os.replace(temporary, output)

    return write
