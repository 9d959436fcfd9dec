"""Shared pieces of the in-process engine tests (tests/test_engine_*.py): toy steps driven by the fake
runner (runners/fake.py), so every transition runs in milliseconds without a process."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from autogenv2.job import JobRun
from autogenv2.manager import Context, Manager
from autogenv2.plan import STEP_KEYS, Job, Plan, Step
from autogenv2.planchange import new_element
from autogenv2.runners.fake import FakeRunner
from autogenv2.states import State
from autogenv2.status import JobStatus

TOY = {"nblocks": 20, "sigma": 0.01, "seconds_per_block": 0.0}


def make_step(name: str, code: str, method: str, runner: str = "fake", after: str | None = None,
              **options: Any) -> Step:
    """A step; the step keys (max_retries, resources, ...) may be given among the options."""
    keys = {k: options.pop(k) for k in list(options) if k in STEP_KEYS}
    return Step(name=name, code=code, method=method, runner=runner, after=after, options=options, **keys)


def toy_step(name: str = "mc", runner: str = "fake", after: str | None = None, **options: Any) -> Step:
    """A toy MC step (codes/toy) whose options default to :data:`TOY`."""
    return make_step(name, "toy", "mc", runner, after, **{**TOY, **options})


def context(fake: FakeRunner, **overrides: Any) -> Context:
    ctx = Context(runners=lambda name: fake, resources=lambda step: step.resources)
    for key, value in overrides.items():
        setattr(ctx, key, value)
    return ctx


def manager(root: Path, step: Step, inputs: dict[str, Path] | None = None) -> Manager:
    """A Manager of a fresh element of ``step`` in ``root/job/<step>``."""
    return Manager(new_element(step), root / "job" / step.name, step, inputs or {})


def advance(mgr: Manager, ctx: Context) -> str | None:
    """One transition of ``mgr`` (``Manager.advance``)."""
    move = mgr.advance
    action: str | None = move(ctx)
    return action


def one_pass(mgr: Manager, ctx: Context, fake: FakeRunner) -> list[str]:
    """What a reconcile pass does to one element: one poll of its attempt in flight, then steps until it
    waits."""
    status = mgr.status
    if status.state is State.running:
        attempt = status.attempts[-1]
        ctx.polled = fake.poll({attempt.token: (attempt.runner_id, mgr.directory)})
        ctx.active = {"fake": fake.live()}
    actions = []
    for _ in range(50):
        action = advance(mgr, ctx)
        if action is None:
            break
        actions.append(action)
    return actions


def drive(mgr: Manager, ctx: Context, fake: FakeRunner, passes: int = 30) -> list[str]:
    """Passes until the element is final (or ``passes`` ran); all actions, in order."""
    actions: list[str] = []
    for _ in range(passes):
        actions += one_pass(mgr, ctx, fake)
        if mgr.status.state.is_final():
            break
    return actions


def toy_plan(root: Path, jobs: dict[str, list[Step]], machines: Path | None = None) -> Plan:
    return Plan(root=root, machines=machines, jobs=[Job(id=i, steps=s) for i, s in jobs.items()]).check()


def passes_until_done(run: JobRun, fake: FakeRunner, passes: int) -> JobStatus:
    """What ``passes`` ensemble passes do to one loaded job: one poll of its attempts in flight, then
    advance it until it waits; stops early once the job is finished. Its status."""
    for _ in range(passes):
        ctx = context(fake)
        attempts = {token: (rid, directory) for _, token, rid, directory in run.active_attempts()}
        ctx.polled = fake.poll(attempts) if attempts else {}
        run.advance(ctx)
        if run.is_finished():
            break
    assert run.status is not None
    return run.status
