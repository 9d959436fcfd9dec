"""Level 3: a job is an id plus an ordered sequence of Managers sharing one directory.

A later element takes its inputs from the outputs of earlier, finished ones (the chkfile of
the SCF, the optimized wave function, ...): outputs accumulate by name, later ones winning.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import plan as planmod
from .manager import Context, Manager
from .naming import check_name, inside
from .planchange import new_element, reconcile_steps
from .runners import Runner
from .states import State
from .status import JobStatus

MAX_STEPS_PER_PASS = 100
"""Safety net against a Manager that keeps reporting actions without converging."""


class JobRun:
    """One job of a plan bound to its directory and status file."""

    def __init__(self, job: planmod.Job, root: Path) -> None:
        self.job = job
        self.directory = root / check_name(job.id, "job id")
        self.status: JobStatus | None = None
        self.on_disk = False
        """Whether status.json exists (a new job's is written at its first step)."""

    def load(self) -> list[str]:
        """Read status.json and apply plan changes. Returns messages.

        A job without one starts with every element planned, in memory only: its directory and
        status file are made when it first takes a step (:meth:`materialize`), so a pass over a
        new plan writes nothing for the jobs that must wait for a free runner slot.
        """
        if self.directory.is_symlink() or self.directory.exists():
            inside(self.directory.parent, self.directory)
        status = JobStatus.load(self.directory)
        if status is None:
            self.status = JobStatus(job_id=self.job.id, variables=self.job.variables,
                                    elements=[new_element(s) for s in self.job.steps])
            self.on_disk = False
            return []
        self.status, self.on_disk = status, True
        messages, rejudge = reconcile_steps(status, self.job.steps, self.directory)
        if status.variables != self.job.variables:
            status.variables = self.job.variables
            messages.append(f"{self.job.id}: variables now {self.job.variables}")
        if messages:
            self.save(durable=False)
        for name in rejudge:
            manager = self.manager(name)
            rejudged = (State.done, State.needs_more, State.failed)
            if manager.status.state in rejudged and manager.status.attempts:
                messages.append(f"{self.job.id}/{name}: {manager.rejudge()}")
                self.save(durable=False)
        return messages

    def save(self, durable: bool = True) -> None:
        """Write status.json; a pass saves non-durably and syncs once at its end (storage.sync_pending)."""
        assert self.status is not None
        if not self.on_disk:
            self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            inside(self.directory.parent, self.directory)
        self.status.save(self.directory, durable=durable)
        self.on_disk = True

    def waits_for_a_slot(self, name: str, ctx: Context) -> bool:
        """A planned element whose runner is full: its inputs are written when it can start."""
        assert self.status is not None
        element = self.status.element(name)
        if element.state is not State.planned:
            return False
        runner = next(step.runner for step in self.job.steps if step.name == name)
        return not ctx.has_capacity(runner)

    def save_before_submit(self, runners: Callable[[str], Runner]) -> None:
        """The save that precedes a submission: durable when a scheduler outside this host gets it.

        A batch scheduler keeps a job through a power loss of the submit host, so its attempt must
        be on disk for real before it is handed over; local processes die with the host anyway.
        """
        assert self.status is not None
        submitting = {e.attempts[-1].runner for e in self.status.elements
                      if e.state is State.running and e.attempts and e.attempts[-1].phase == "submitting"}
        self.save(durable=any(not runners(name).runs_here for name in submitting))

    def chain(self, name: str) -> list[str]:
        """``name`` and the steps it takes inputs from, upstream first (following ``after``)."""
        steps = {step.name: step for step in self.job.steps}
        names = [name]
        while steps[names[-1]].after is not None:
            names.append(steps[names[-1]].after)  # type: ignore[arg-type]
        return names[::-1]

    def manager(self, name: str) -> Manager:
        """The Manager of element ``name``, with the inputs its upstream elements provide."""
        assert self.status is not None
        inputs: dict[str, Path] = {}
        origins: dict[str, tuple[str, int]] = {}
        steps = {step.name: step for step in self.job.steps}
        for upstream in self.chain(name)[:-1]:
            element = self.status.element(upstream)
            if element.state is State.done:
                inputs.update({k: self.directory / v for k, v in element.outputs.items()})
                origins.update({k: (element.name, len(element.attempts)) for k in element.outputs})
        return Manager(self.status.element(name), self.directory / name, steps[name], inputs, origins)

    def active_attempts(self) -> list[tuple[str, str, str, Path]]:
        """(runner, token, runner_id, directory) of every attempt in a Runner."""
        assert self.status is not None
        found = []
        for element in self.status.elements:
            if element.state is State.running and element.attempts:
                attempt = element.attempts[-1]
                where = self.directory / element.name
                found.append((attempt.runner, attempt.token, attempt.runner_id, where))
        return found

    def ready_to_step(self, name: str) -> bool:
        """True when the element is unfinished and the step it takes inputs from is done."""
        assert self.status is not None
        element = self.status.element(name)
        if element.state.is_final():
            return False
        after = next(step.after for step in self.job.steps if step.name == name)
        return after is None or self.status.element(after).state is State.done

    def advance(self, ctx: Context) -> list[str]:
        """Step every element whose upstream is done until it must wait (siblings run side by side)."""
        assert self.status is not None
        ctx.save = lambda: self.save_before_submit(ctx.runners)
        actions: list[str] = self.update_blocked()
        for element in self.status.elements:
            if not self.ready_to_step(element.name) or self.waits_for_a_slot(element.name, ctx):
                continue
            if not self.on_disk:
                self.save(durable=False)  # the status exists before any step directory does
            manager = self.manager(element.name)
            unsaved = False
            for _ in range(MAX_STEPS_PER_PASS):
                action = manager.advance(ctx)
                if action is None:
                    break
                actions.append(f"{self.job.id}/{element.name}: {action}")
                # ready (inputs written, or an abandoned attempt closed) goes on to start at once, and
                # _start saves before it submits; redoing either after a kill changes nothing
                unsaved = manager.status.state is State.ready
                if not unsaved:
                    self.save(durable=False)
            if unsaved:
                self.save(durable=False)
        return actions + self.update_blocked()

    def update_blocked(self) -> list[str]:
        """Mark elements whose upstream failed (or is blocked) as blocked, and unblock reopened ones.

        Saves the status when anything changed; returns what changed, one line per element.
        """
        assert self.status is not None
        steps = {step.name: step for step in self.job.steps}
        changes = []
        for element in self.status.elements:  # upstream elements come first, so blocks propagate
            step = steps.get(element.name)
            upstream = self.status.element(step.after) if step is not None and step.after else None
            stuck = upstream is not None and upstream.state in (State.failed, State.blocked)
            if stuck and element.state is State.planned and upstream is not None:
                if upstream.state is State.failed:  # name the failed element and its reason
                    cause = f"{upstream.name} failed" + (f" ({upstream.reason})" if upstream.reason else "")
                else:  # blocked further up: the same cause
                    cause = upstream.reason.removeprefix("blocked: ")
                element.block(cause)
                changes.append(f"{self.job.id}/{element.name}: {element.reason}")
            elif not stuck and element.state is State.blocked:
                element.unblock()
                changes.append(f"{self.job.id}/{element.name}: unblocked")
        if changes:
            self.save(durable=False)
        return changes

    def is_finished(self) -> bool:
        """Nothing more can happen: every element is done, failed, or waits on a failed one."""
        assert self.status is not None
        if any(e.state is State.running for e in self.status.elements):
            return False
        return not any(self.ready_to_step(e.name) for e in self.status.elements)
